"""Value types every layer shares: flow batches, addresses, networks, event time, counters.

The bottom of the house: it imports nothing else of beaconwatch (a contract in pyproject.toml,
checked by `make lint`)."""
