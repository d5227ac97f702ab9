"""The README's example alert is what the service emits: built here, compared byte for byte.

Run with UPDATE_README=1 to rewrite it after changing the alert's fields.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

from beaconwatch.alerting.alert import Alert
from beaconwatch.alerting.ecs import to_ecs
from beaconwatch.config import Config
from beaconwatch.core.detector import Detector
from tests.unit.flowgen import T0_MS, WALL_MS, beacon_rows, make_flows

README = Path(__file__).parents[2] / "README.md"
BLOCK = re.compile(
    r"(<!-- example-alert:[^\n]*-->\n```json\n)(.*?)(\n```\n<!-- /example-alert -->)", re.S
)


def readme_alert() -> Alert:
    rows = beacon_rows("10.0.15.183", "198.51.100.11", period_s=80, count=40, jitter=0.1,
                       port=8443, start_ms=T0_MS, size=1200, seed=4)  # fmt: skip
    det = Detector(Config(), wall_clock_ms=lambda: WALL_MS)
    alerts = det.process(make_flows(rows)).alerts
    return dataclasses.replace(alerts[0], partition=0)  # as the Kafka adapter sets it


def example_alert() -> str:
    return json.dumps(to_ecs(readme_alert()), indent=2)


def test_the_readme_example_alert_is_what_the_service_emits() -> None:
    text = README.read_text(encoding="utf-8")
    match = BLOCK.search(text)
    assert match is not None, "README.md lost its example-alert block"
    want = example_alert()
    if os.environ.get("UPDATE_README") == "1":
        README.write_text(text[: match.start(2)] + want + text[match.end(2) :], encoding="utf-8")
        return
    assert match.group(2) == want, "README.md's example alert drifted: run with UPDATE_README=1"
