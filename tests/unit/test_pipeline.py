"""The pipeline's record-level bookkeeping: tombstones, rejection order and counts."""

from __future__ import annotations

from pathlib import Path

from beaconwatch.config import Config
from beaconwatch.core.pipeline import Pipeline
from tests.unit.flowgen import WALL_MS

FIXTURE = Path(__file__).parent.parent / "fixtures" / "goflow2" / "flows.jsonl"


def test_tombstones_and_bad_records_are_rejected_in_input_order_and_counted() -> None:
    good = FIXTURE.read_bytes().splitlines()[0]
    pipeline = Pipeline(Config(), wall_clock_ms=lambda: WALL_MS)
    outcome = pipeline.process_records([good, None, b"{not json", good, None])
    assert [(r.record_index, r.reason) for r in outcome.rejections] == [
        (1, "tombstone"),
        (2, "invalid_json"),
        (4, "tombstone"),
    ]
    assert outcome.flows_accepted == 2
    assert pipeline.stats.rejected_by_reason == {"tombstone": 2, "invalid_json": 1}
