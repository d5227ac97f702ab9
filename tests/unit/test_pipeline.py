"""The pipeline's record-level bookkeeping: tombstones, rejection order and counts."""

from __future__ import annotations

from pathlib import Path

from beaconwatch.config import Config, with_overrides
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
    # Both good flows are valid: tracked, or counted as out of scope (e.g. internal only).
    assert outcome.flows_accepted + sum(pipeline.stats.ignored_by_reason.values()) == 2
    assert pipeline.stats.rejected_by_reason == {"tombstone": 2, "invalid_json": 1}


def test_each_topic_is_decoded_with_its_format_and_keeps_its_own_state() -> None:
    fixtures = FIXTURE.parent.parent
    goflow2 = (fixtures / "goflow2" / "flows.jsonl").read_bytes().splitlines()[:6]
    pmacct = (fixtures / "pmacct" / "same_flows.jsonl").read_bytes().splitlines()[:6]
    config = with_overrides(Config(), kafka={"topic_formats": {"pm": "pmacct-json"}})
    pipeline = Pipeline(config, wall_clock_ms=lambda: WALL_MS)
    from_goflow2 = pipeline.process_records(goflow2, partition=0, topic="flows")
    from_pmacct = pipeline.process_records(pmacct, partition=0, topic="pm")
    assert not from_goflow2.rejections and not from_pmacct.rejections
    assert pipeline.decoder_for("pm").name == "pmacct-json"
    assert pipeline.decoder_for("flows").name == "goflow2-json"
    # Partition 0 of two topics: two inputs, two sets of state.
    partitions = pipeline.detector.partitions
    assert set(partitions) == {("flows", 0), ("pm", 0)}
    assert partitions["flows", 0].table is not partitions["pm", 0].table
    pm_pairs = partitions["pm", 0].table.tracked_pairs
    assert pm_pairs > 0
    assert pipeline.drop_topic_partitions([("pm", 0)]) == pm_pairs
    assert set(partitions) == {("flows", 0)}


def test_late_flows_of_a_many_flow_record_are_dead_lettered_alone_once_per_record() -> None:
    from beaconwatch.decode.flow_columns import FlowColumnsDecoder, encode_flows
    from tests.unit.flowgen import T0_MS, make_flows

    pipeline = Pipeline(Config(), decoder=FlowColumnsDecoder(), wall_clock_ms=lambda: WALL_MS)
    hour_ms = 3_600_000
    now = make_flows([(T0_MS + hour_ms, "10.0.0.1", "203.0.113.1", 443, 6, 1)])
    assert not pipeline.process_records([encode_flows(now)]).rejections
    # Record 0: two flows an hour late among fresh ones; record 1: fresh only; record 2:
    # one late flow.
    mixed = make_flows([
        (T0_MS + hour_ms + 1000, "10.0.0.2", "203.0.113.1", 443, 6, 1),
        (T0_MS, "10.0.0.3", "203.0.113.1", 443, 6, 11),
        (T0_MS + 5, "10.0.0.4", "203.0.113.1", 443, 6, 12),
    ])  # fmt: skip
    fresh = make_flows([(T0_MS + hour_ms + 2000, "10.0.0.5", "203.0.113.1", 443, 6, 1)])
    late = make_flows([(T0_MS + 9, "10.0.0.6", "203.0.113.1", 443, 6, 13)])
    records = [encode_flows(mixed), encode_flows(fresh), encode_flows(late)]
    outcome = pipeline.process_records(records)
    assert [(r.record_index, r.reason) for r in outcome.rejections] == [
        (0, "too_late"), (2, "too_late")
    ]  # fmt: skip
    assert outcome.rejections[0].detail.startswith("2 flows of the record")
    decoded = FlowColumnsDecoder().decode([r.value for r in outcome.rejections])  # type: ignore[misc]
    assert decoded.flows.bytes.tolist() == [11, 12, 13]  # the late flows, nothing else
    assert pipeline.stats.rejected_by_reason == {"too_late": 3}
