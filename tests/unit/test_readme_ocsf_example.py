"""The README's example OCSF finding is what the service emits with alerting.format = "ocsf":
the README's example alert as a finding, compared byte for byte and valid against the schema.

Run with UPDATE_README=1 to rewrite it after changing the mapping.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import orjson

from beaconwatch.alerting.formats import alert_encoder
from beaconwatch.alerting.ocsf import OCSF_VERSION
from beaconwatch.config import Config, with_overrides
from tests.unit.ocsf_schema import ocsf_errors
from tests.unit.test_readme_example import readme_alert

README = Path(__file__).parents[2] / "README.md"
BLOCK = re.compile(
    r"(<!-- example-ocsf-finding:[^\n]*-->\n```json\n)(.*?)(\n```\n<!-- /example-ocsf-finding -->)",
    re.S,
)


def example_finding() -> dict[str, object]:
    encode = alert_encoder(with_overrides(Config(), alerting={"format": "ocsf"}))
    doc: dict[str, object] = orjson.loads(encode(readme_alert()))
    return doc


def test_the_readme_example_finding_is_what_the_service_emits() -> None:
    text = README.read_text(encoding="utf-8")
    match = BLOCK.search(text)
    assert match is not None, "README.md lost its example-ocsf-finding block"
    doc = example_finding()
    assert ocsf_errors(doc, OCSF_VERSION) == []
    want = json.dumps(doc, indent=2)
    if os.environ.get("UPDATE_README") == "1":
        README.write_text(text[: match.start(2)] + want + text[match.end(2) :], encoding="utf-8")
        return
    assert match.group(2) == want, "README.md's example finding drifted: run with UPDATE_README=1"
