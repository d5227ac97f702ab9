"""The service's logging: one format for every process, aiokafka's retries kept readable."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str) -> None:
    from beaconwatch.runtime.client_log import throttle_client_log

    logging.basicConfig(
        level=getattr(logging, level),
        format=LOG_FORMAT,
    )
    # aiokafka logs every coordinator hiccup at INFO; keep our own messages readable. Its
    # warnings and errors repeat every retry in an outage: one line per kind, then counts.
    # DEBUG lines also show each request, a SASL PLAIN password among them: never below WARNING.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, getattr(logging, level)))
    throttle_client_log()
