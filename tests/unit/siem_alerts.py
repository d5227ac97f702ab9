"""Real alerts for the SIEM content tests: made by the detector, encoded as the service does.

One of each rule (a beacon, a long connection), so every field either rule emits is covered.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import orjson

from beaconwatch.alerting.alert import RULE_LONG_CONNECTION, Alert
from beaconwatch.alerting.ecs import encode_alert
from beaconwatch.config import Config
from beaconwatch.core.detector import Detector
from tests.unit.flowgen import T0_MS, WALL_MS, beacon_rows, make_flows
from tests.unit.test_long_connections import C2, run, sessions


@functools.cache
def emitted_alerts() -> tuple[Alert, Alert]:
    rows = beacon_rows("10.0.15.183", "198.51.100.11", period_s=80, count=40, jitter=0.1,
                       port=8443, start_ms=T0_MS, size=1200, seed=4)  # fmt: skip
    det = Detector(Config(), wall_clock_ms=lambda: WALL_MS)
    beacon = det.process(make_flows(rows)).alerts[0]
    long_connection = next(
        a
        for a in run(sessions(*C2, starts_h=[1, 9, 17, 25], hours=3))
        if a.rule == RULE_LONG_CONNECTION
    )
    # As the Kafka adapter sets it.
    return dataclasses.replace(beacon, partition=0), dataclasses.replace(
        long_connection, partition=3
    )


def emitted_documents() -> list[dict[str, Any]]:
    """The alerts as the bytes the service publishes, parsed."""
    return [orjson.loads(encode_alert(a)) for a in emitted_alerts()]


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted path -> leaf value (lists are leaves: ECS arrays map like their elements)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out
