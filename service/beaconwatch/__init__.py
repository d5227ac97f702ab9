"""beaconwatch: streaming detection of C2 beaconing in flow telemetry on Kafka."""

__version__ = "0.1.0"
