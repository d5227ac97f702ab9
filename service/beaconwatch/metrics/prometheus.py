"""The service's Prometheus metrics, as one typed bundle bound to an injected registry.

The core only keeps plain counters (`DetectorStats`); `publish_stats` turns their deltas into
Prometheus increments once per batch, because an increment costs about a microsecond and a
batch holds thousands of records.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter

from beaconwatch.alerting.rules import ALLOWLIST, SEVERITY_LEVELS
from beaconwatch.core.channels import PAIR_REPORTED, PREFIX_REPORTED, SINGLE_DESTINATION
from beaconwatch.core.scope import IgnoreReason
from beaconwatch.domain.stats import DetectorStats

# Batches take from well under a millisecond (a few records) to seconds (100k records).
_BATCH_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class _StatsSnapshot:
    """What was already published, so the next publish only adds the difference."""

    flows_total: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    ignored_by_reason: Counter[str] = field(default_factory=Counter)
    merged_by_kind: Counter[str] = field(default_factory=Counter)
    alerts_suppressed_by_reason: Counter[str] = field(default_factory=Counter)
    evicted_idle_total: int = 0
    evicted_capacity_total: int = 0
    evicted_revoked_total: int = 0
    flows_ahead_total: int = 0
    evicted_established_total: int = 0
    alerts_by_severity: Counter[str] = field(default_factory=Counter)
    tracked: bool = False  # has this stats object ever held pairs (the detector's)


@dataclass(frozen=True, slots=True)
class ServiceMetrics:
    registry: CollectorRegistry
    flows_consumed: PromCounter
    flows_accepted: PromCounter
    records_rejected: PromCounter  # {reason}
    flows_ignored: PromCounter  # {reason}
    flows_merged: PromCounter  # {kind}
    alerts_suppressed: PromCounter  # {reason}
    dead_letter_records: PromCounter
    alerts: PromCounter  # {severity}
    pairs_evicted: PromCounter  # {cause}
    tracked_pairs: Gauge
    consumer_lag_records: Gauge
    event_time_lag_seconds: Gauge
    partitions_assigned: Gauge
    batch_duration_seconds: Histogram
    checkpoints: PromCounter  # {result}: written | failed
    checkpoint_bytes: PromCounter
    checkpoint_restores: PromCounter  # {result}: restored | none | incomplete | corrupt | ...
    records_replayed: PromCounter
    checkpoint_age_seconds: Gauge
    internal_records_consumed: PromCounter
    hosts_split: PromCounter
    flows_ahead: PromCounter
    established_evicted: PromCounter
    repartition_flows: PromCounter
    repartition_records: PromCounter
    repartition_lag_records: Gauge
    repartition_partitions_assigned: Gauge
    repartition_batch_duration_seconds: Histogram
    repartition_held_flows: Gauge
    alignment_forced: PromCounter
    # What was already published, per stats object (each stage counts in its own).
    _published: dict[int, _StatsSnapshot] = field(default_factory=dict)

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ServiceMetrics:
        r = registry
        metrics = cls(
            registry=r,
            flows_consumed=PromCounter(
                "beaconwatch_flows_consumed", "Records consumed from the input topics", registry=r
            ),
            flows_accepted=PromCounter(
                "beaconwatch_flows_accepted", "Flows accepted into detector state", registry=r
            ),
            records_rejected=PromCounter(
                "beaconwatch_records_rejected",
                "Input records rejected, by reason",
                ["reason"],
                registry=r,
            ),
            flows_ignored=PromCounter(
                "beaconwatch_flows_ignored",
                "Valid flows outside the detector's scope, by reason (external_only, "
                "inbound_initiated, internal_only, special_address, allowed_ntp, ntp_shaped)",
                ["reason"],
                registry=r,
            ),
            flows_merged=PromCounter(
                "beaconwatch_flows_merged",
                "Flow records folded into a connection already counted, by kind "
                "(duplicate, continuation)",
                ["kind"],
                registry=r,
            ),
            alerts_suppressed=PromCounter(
                "beaconwatch_alerts_suppressed",
                "Alerts withheld by policy, by reason (allowlist)",
                ["reason"],
                registry=r,
            ),
            dead_letter_records=PromCounter(
                "beaconwatch_dead_letter_records",
                "Records written to the dead-letter topic",
                registry=r,
            ),
            alerts=PromCounter(
                "beaconwatch_alerts",
                "Beaconing alerts emitted, by severity",
                ["severity"],
                registry=r,
            ),
            pairs_evicted=PromCounter(
                "beaconwatch_pairs_evicted",
                "Tracked pairs dropped, by cause (idle|capacity|revoked)",
                ["cause"],
                registry=r,
            ),
            tracked_pairs=Gauge(
                "beaconwatch_tracked_pairs", "Pairs currently held in state", registry=r
            ),
            consumer_lag_records=Gauge(
                "beaconwatch_consumer_lag_records",
                "Sum over assigned partitions of highwater minus position",
                registry=r,
            ),
            event_time_lag_seconds=Gauge(
                "beaconwatch_event_time_lag_seconds",
                "Wall clock minus the event-time watermark",
                registry=r,
            ),
            partitions_assigned=Gauge(
                "beaconwatch_partitions_assigned",
                "Input partitions assigned to this instance",
                registry=r,
            ),
            batch_duration_seconds=Histogram(
                "beaconwatch_batch_duration_seconds",
                "Time to process one polled batch (decode, detect, send, commit)",
                buckets=_BATCH_BUCKETS_S,
                registry=r,
            ),
            checkpoints=PromCounter(
                "beaconwatch_checkpoints",
                "Partition state checkpoints written to the state topic, by result",
                ["result"],
                registry=r,
            ),
            checkpoint_bytes=PromCounter(
                "beaconwatch_checkpoint_bytes", "Bytes of checkpoints written", registry=r
            ),
            checkpoint_restores=PromCounter(
                "beaconwatch_checkpoint_restores",
                "Partitions assigned, by what their checkpoint gave (restored, none, "
                "incomplete, corrupt, incompatible, unreadable)",
                ["result"],
                registry=r,
            ),
            records_replayed=PromCounter(
                "beaconwatch_records_replayed",
                "Records between a restored checkpoint and the committed offset, processed "
                "again without publishing their (already published) alerts and dead letters",
                registry=r,
            ),
            checkpoint_age_seconds=Gauge(
                "beaconwatch_checkpoint_age_seconds",
                "Seconds since the last complete checkpoint of all assigned partitions",
                registry=r,
            ),
            internal_records_consumed=PromCounter(
                "beaconwatch_internal_records_consumed",
                "Records consumed from the internal topic (each holds many flows)",
                registry=r,
            ),
            hosts_split=PromCounter(
                "beaconwatch_hosts_split",
                "Internal hosts whose flows arrived on another input partition than before: "
                "their pairs' state is split (input not keyed by host)",
                registry=r,
            ),
            established_evicted=PromCounter(
                "beaconwatch_established_pairs_evicted",
                "Pairs with two connections or more evicted because max_pairs was reached (one-off "
                "pairs go first: non-zero means the table is full of established pairs)",
                registry=r,
            ),
            flows_ahead=PromCounter(
                "beaconwatch_flows_ahead",
                "Flows ahead of the wall clock by more than state.clock_tolerance_s (their "
                "exporter's clock is fast): kept, but they do not move event time",
                registry=r,
            ),
            repartition_flows=PromCounter(
                "beaconwatch_repartition_flows",
                "Flows written to the internal topic, keyed by internal host",
                registry=r,
            ),
            repartition_records=PromCounter(
                "beaconwatch_repartition_records",
                "Records written to the internal topic (each holds many flows)",
                registry=r,
            ),
            repartition_lag_records=Gauge(
                "beaconwatch_repartition_lag_records",
                "Repartition stage: sum over assigned input partitions of highwater minus position",
                registry=r,
            ),
            repartition_partitions_assigned=Gauge(
                "beaconwatch_repartition_partitions_assigned",
                "Input partitions assigned to this instance's repartition stage",
                registry=r,
            ),
            repartition_batch_duration_seconds=Histogram(
                "beaconwatch_repartition_batch_duration_seconds",
                "Time to repartition one polled batch (decode, scope, group, send)",
                buckets=_BATCH_BUCKETS_S,
                registry=r,
            ),
            repartition_held_flows=Gauge(
                "beaconwatch_repartition_held_flows",
                "Flows held back until every lagging input partition reaches their event time",
                registry=r,
            ),
            alignment_forced=PromCounter(
                "beaconwatch_repartition_alignment_forced",
                "Times the held flows exceeded their bound and were released unaligned",
                registry=r,
            ),
        )
        # Pre-create the label values that always exist, so dashboards see zeros, not gaps.
        for cause in ("idle", "capacity", "revoked"):
            metrics.pairs_evicted.labels(cause=cause)
        for severity in SEVERITY_LEVELS:
            metrics.alerts.labels(severity=severity)
        for kind in ("duplicate", "continuation"):
            metrics.flows_merged.labels(kind=kind)
        # A series born at 1 has no 0 before it: rate() and increase() would miss that first
        # suppressed alert (the dashboard's panel stayed empty), so these start at 0 too.
        for reason in (v for k, v in vars(IgnoreReason).items() if k.isupper()):
            metrics.flows_ignored.labels(reason=reason)
        for reason in (ALLOWLIST, SINGLE_DESTINATION, PAIR_REPORTED, PREFIX_REPORTED):
            metrics.alerts_suppressed.labels(reason=reason)
        for result in ("written", "failed"):
            metrics.checkpoints.labels(result=result)
        for result in ("restored", "none", "incomplete", "corrupt", "incompatible", "unreadable"):
            metrics.checkpoint_restores.labels(result=result)
        return metrics

    def publish_stats(self, stats: DetectorStats) -> None:
        """Add what ``stats`` counted since the previous call; set the gauges.

        Call once per batch. Each stats object only grows; each is published apart (a process
        running both stages has one per stage).
        """
        seen = self._published.setdefault(id(stats), _StatsSnapshot())
        _inc(self.flows_accepted, stats.flows_total - seen.flows_total)
        seen.flows_total = stats.flows_total
        _inc_by_label(self.records_rejected, stats.rejected_by_reason, seen.rejected_by_reason)
        _inc_by_label(self.alerts, stats.alerts_by_severity, seen.alerts_by_severity)
        _inc_by_label(self.flows_ignored, stats.ignored_by_reason, seen.ignored_by_reason)
        _inc_by_label(self.flows_merged, stats.merged_by_kind, seen.merged_by_kind)
        _inc_by_label(
            self.alerts_suppressed,
            stats.alerts_suppressed_by_reason,
            seen.alerts_suppressed_by_reason,
        )
        for cause, total, attr in (
            ("idle", stats.evicted_idle_total, "evicted_idle_total"),
            ("capacity", stats.evicted_capacity_total, "evicted_capacity_total"),
            ("revoked", stats.evicted_revoked_total, "evicted_revoked_total"),
        ):
            _inc(self.pairs_evicted.labels(cause=cause), total - getattr(seen, attr))
            setattr(seen, attr, total)
        _inc(self.flows_ahead, stats.flows_ahead_total - seen.flows_ahead_total)
        _inc(
            self.established_evicted,
            stats.evicted_established_total - seen.evicted_established_total,
        )
        seen.evicted_established_total = stats.evicted_established_total
        seen.flows_ahead_total = stats.flows_ahead_total
        if stats.tracked_pairs or seen.tracked:
            seen.tracked = True
            self.tracked_pairs.set(stats.tracked_pairs)

    def set_event_time_lag(self, wall_now_ms: int, watermark_ms: int) -> None:
        """Wall clock minus watermark; left unset until a flow has been seen."""
        if watermark_ms > 0:
            self.event_time_lag_seconds.set((wall_now_ms - watermark_ms) / 1000.0)


def _inc(counter: PromCounter, delta: int) -> None:
    if delta > 0:
        counter.inc(delta)


def _inc_by_label(counter: PromCounter, totals: Counter[str], published: Counter[str]) -> None:
    """Add each label value's growth since the last publish to a one-label counter."""
    for label, total in totals.items():
        _inc(counter.labels(label), total - published[label])
        published[label] = total
