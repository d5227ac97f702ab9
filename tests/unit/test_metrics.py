"""ServiceMetrics: bound to the injected registry, publishes DetectorStats deltas exactly once."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from beaconwatch.domain.stats import DetectorStats
from beaconwatch.metrics.prometheus import ServiceMetrics


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_each_bundle_uses_its_own_registry() -> None:
    a, b = CollectorRegistry(), CollectorRegistry()
    ma, _ = ServiceMetrics.create(a), ServiceMetrics.create(b)  # no duplicate-name error
    ma.flows_consumed.inc(3)
    assert _value(a, "beaconwatch_flows_consumed_total") == 3
    assert _value(b, "beaconwatch_flows_consumed_total") == 0


def test_publish_stats_adds_only_the_deltas() -> None:
    registry = CollectorRegistry()
    metrics = ServiceMetrics.create(registry)
    stats = DetectorStats()
    stats.flows_total = 10
    stats.rejected_by_reason["invalid_json"] += 2
    stats.alerts_by_severity["high"] += 1
    stats.evicted_idle_total = 4
    stats.tracked_pairs = 7
    metrics.publish_stats(stats)
    metrics.publish_stats(stats)  # nothing new: nothing added
    assert _value(registry, "beaconwatch_flows_accepted_total") == 10
    assert _value(registry, "beaconwatch_records_rejected_total", reason="invalid_json") == 2
    assert _value(registry, "beaconwatch_alerts_total", severity="high") == 1
    assert _value(registry, "beaconwatch_pairs_evicted_total", cause="idle") == 4
    assert _value(registry, "beaconwatch_tracked_pairs") == 7

    stats.flows_total = 15
    stats.rejected_by_reason["invalid_json"] += 1
    stats.rejected_by_reason["too_late"] += 5
    stats.evicted_revoked_total = 2
    stats.evicted_capacity_total = 1
    stats.tracked_pairs = 3
    metrics.publish_stats(stats)
    assert _value(registry, "beaconwatch_flows_accepted_total") == 15
    assert _value(registry, "beaconwatch_records_rejected_total", reason="invalid_json") == 3
    assert _value(registry, "beaconwatch_records_rejected_total", reason="too_late") == 5
    assert _value(registry, "beaconwatch_pairs_evicted_total", cause="revoked") == 2
    assert _value(registry, "beaconwatch_pairs_evicted_total", cause="capacity") == 1
    assert _value(registry, "beaconwatch_pairs_evicted_total", cause="idle") == 4
    assert _value(registry, "beaconwatch_tracked_pairs") == 3


def test_fixed_label_values_exist_before_any_event() -> None:
    registry = CollectorRegistry()
    ServiceMetrics.create(registry)
    for cause in ("idle", "capacity", "revoked"):
        assert _value(registry, "beaconwatch_pairs_evicted_total", cause=cause) == 0
    for severity in ("low", "medium", "high", "critical"):
        assert _value(registry, "beaconwatch_alerts_total", severity=severity) == 0


def test_event_time_lag_is_wall_minus_watermark_and_unset_before_data() -> None:
    registry = CollectorRegistry()
    metrics = ServiceMetrics.create(registry)
    metrics.set_event_time_lag(wall_now_ms=100_000, watermark_ms=0)
    assert _value(registry, "beaconwatch_event_time_lag_seconds") == 0
    metrics.set_event_time_lag(wall_now_ms=100_000, watermark_ms=40_000)
    assert _value(registry, "beaconwatch_event_time_lag_seconds") == 60.0


def test_batch_histogram_and_gauges_are_exposed() -> None:
    registry = CollectorRegistry()
    metrics = ServiceMetrics.create(registry)
    metrics.batch_duration_seconds.observe(0.003)
    metrics.consumer_lag_records.set(42)
    metrics.partitions_assigned.set(3)
    assert _value(registry, "beaconwatch_batch_duration_seconds_count") == 1
    assert _value(registry, "beaconwatch_batch_duration_seconds_bucket", le="0.005") == 1
    assert _value(registry, "beaconwatch_batch_duration_seconds_bucket", le="0.0025") == 0
    assert _value(registry, "beaconwatch_consumer_lag_records") == 42
    assert _value(registry, "beaconwatch_partitions_assigned") == 3


def test_ignore_and_suppression_reasons_start_at_zero() -> None:
    """Series that exist before their first increment, so rate() and increase() count it."""
    registry = CollectorRegistry()
    ServiceMetrics.create(registry)
    for reason in ("external_only", "inbound_initiated", "internal_only", "special_address",
                   "allowed_ntp", "ntp_shaped"):  # fmt: skip
        assert _value(registry, "beaconwatch_flows_ignored_total", reason=reason) == 0
    assert _value(registry, "beaconwatch_alerts_suppressed_total", reason="allowlist") == 0
