"""End-to-end tests: a pcap -> a real exporter (softflowd) -> a real collector (goflow2, nfacctd)
-> Kafka -> beaconwatch."""
