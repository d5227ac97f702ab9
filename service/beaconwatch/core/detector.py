"""The detector: flows in, alerts out, on event time. Pure and synchronous.

It owns one `PartitionState` per input partition (pair table, watermark, epoch, idle sweep),
created when the partition's first batch arrives and dropped with the partition; runs the
ingest kernel over each batch, evicts idle pairs, and turns the kernel's alert rows into
`Alert` objects. What partitions share is read-only (parameters, null tables, rules) but for
the prevalence sketch, the sum of every partition's pairs, and the `PairBudget` of rows.
Alert rules (severity bands, deterministic ids, the reason sentence) live in
`beaconwatch.alerting.rules`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from beaconwatch.alerting.alert import Alert
from beaconwatch.alerting.policy import policy_from
from beaconwatch.alerting.rules import AlertRules
from beaconwatch.config import Config, with_overrides
from beaconwatch.core.channels import ChannelGate, domain_text, prefix_flows
from beaconwatch.core.host_owners import host_hash
from beaconwatch.core.pair_scores import PairScore, pair_scores
from beaconwatch.core.partition_state import PartitionKey, PartitionState
from beaconwatch.core.scope import FlowScope
from beaconwatch.core.watermark import Observation
from beaconwatch.domain.addresses import halves_to_ip
from beaconwatch.domain.alert_rows import AlertRows, new_alert_rows, take
from beaconwatch.domain.clock import EventClock
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.domain.rejections import Rejection, RejectReason
from beaconwatch.domain.stats import AheadExample, DetectorStats
from beaconwatch.scoring.window_score import (
    Stat,
    null_tables,
    sampled_scoring_params,
    scoring_params,
)
from beaconwatch.state import ingest as k
from beaconwatch.state import ingest_steps as steps
from beaconwatch.state.kernel_counters import PREFIX_PASS_COUNTERS, new_counters
from beaconwatch.state.kernel_params import Limits, limits_from
from beaconwatch.state.levels import LEVEL_BITS, NAME_LEVEL, PORT_PROTO_MASK, PREFIX_LEVEL
from beaconwatch.state.pair_table import MIN_CAPACITY, REBASE_AFTER_MS, PairBudget, PairTable
from beaconwatch.state.prevalence import Prevalence
from beaconwatch.state.snapshot import decode_table, encode_table

# Idle pairs are swept at most every 1/96 of the window (15 min for 24 h) of event time: each
# sweep is one pass over all rows, and a pair outliving the window by minutes costs nothing.
IDLE_SWEEPS_PER_WINDOW = 96
MIN_IDLE_SWEEP_MS = 60_000
MIN_STARVED_CAPACITY = 64
_NO_HOSTS = np.empty(0, dtype=np.uint64)
_NEVER_MS = np.iinfo(np.int64).min // 2  # a watermark before any flow: nothing is late


@dataclass(frozen=True, slots=True)
class DetectorResult:
    alerts: list[Alert]
    rejections: list[Rejection]
    flows_accepted: int
    rejected_flows: FlowBatch  # the flows behind `rejections`, in the same order
    source_hosts: np.ndarray  # `host_hash` of each internal host, unique (when reported)


class Detector:
    def __init__(
        self,
        config: Config,
        *,
        clock: EventClock | None = None,
        stats: DetectorStats | None = None,
        wall_clock_ms: Callable[[], int] | None = None,
        report_source_hosts: bool = False,
    ) -> None:
        """``report_source_hosts``: return each batch's internal hosts (`host_hash`, unique)
        in `DetectorResult.source_hosts` for the service's split-state check; about 0.1 us
        per flow, so `scan` and the evaluation, which have no partitions, skip it."""
        state, scoring = config.state, config.scoring
        self._report_source_hosts = report_source_hosts
        # The wall clock is used for one thing only: rejecting flows that claim to start in the
        # future (garbage timestamps). Windows and alert times never depend on it.
        self._wall_clock_ms = wall_clock_ms if wall_clock_ms is not None else _system_ms
        self._max_future_ms = int(state.max_future_s * 1000)
        # The newest watermark of any partition (each partition's own is in its state).
        self.clock = clock if clock is not None else EventClock()
        self.stats = stats if stats is not None else DetectorStats()
        self._history_events = state.history_events
        self.prevalence = Prevalence(state.max_pairs)
        self.budget = PairBudget(state.max_pairs)
        self._partitions: dict[PartitionKey, PartitionState] = {}
        self.rules = AlertRules(config.alerting, config.allowlist)
        self.scope = FlowScope(config.network)
        self._window_ms = int(state.window_s * 1000)
        self._long_window_ms = int(state.long_window_s * 1000)
        # A pair of one connection is dropped after the window, a quarter more with rule
        # sparse-beacon on: a 24 h sleep with jitter comes back after up to 26-30 h.
        sparse = config.alerting.sparse_min_interval_s > 0
        self._single_idle_ms = self._window_ms + (self._window_ms // 4 if sparse else 0)
        # With the rule on, a pair of two connections a long sleep apart waits for its third
        # over the long window (`PairTable.evict_idle`); with it off, no pair outlives the window.
        self._sparse_keep_ms = self._long_window_ms if sparse else self._window_ms
        self._sparse_gap_ms = int(config.alerting.sparse_min_interval_s * 1000)
        self._lateness_ms = int(state.allowed_lateness_s * 1000)
        self._tolerance_ms = int(state.clock_tolerance_s * 1000)
        # Row 0 for unsampled pairs, row 1 for pairs seen through packet sampling.
        params = scoring_params(scoring, state.history_events)
        self._score_params = np.stack([params, sampled_scoring_params(params)])
        self._policy = policy_from(config)
        # Poisson-null quantiles behind the confidence, shipped (or built once per process):
        # [0] for every connection, [1] for every second one (`score_window_paired`), each
        # with the fit statistic's, the interval CV's and the gap floor's (`NullTable`).
        self._null_tables = null_tables(state.history_events)
        self._limits = limits_from(config)
        self._prefix_channels = state.prefix_channels
        self._name_channels = state.name_channels
        self._channels = ChannelGate(
            self._window_ms,
            int(config.alerting.cooldown_s * 1000),
            int(scoring.rescore_interval_s * 1000),
        )
        self._sweep_every_ms = max(MIN_IDLE_SWEEP_MS, self._window_ms // IDLE_SWEEPS_PER_WINDOW)

    # -- partitions -----------------------------------------------------------------------

    def partition(self, key: PartitionKey = 0) -> PartitionState:
        """The state of one input partition, created empty on first use."""
        found = self._partitions.get(key)
        if found is None:
            # A new partition takes what is left of the budget, up to MIN_CAPACITY rows, and
            # no fewer than MIN_STARVED_CAPACITY even when other partitions took it all.
            left = min(MIN_CAPACITY, self.budget.available)
            capacity = min(self.budget.max_pairs, max(MIN_STARVED_CAPACITY, left))
            table = PairTable(capacity, self._history_events, self.prevalence, self.budget)
            if self._prefix_channels:
                table.enable_channels()
            if self._name_channels:
                table.enable_names()
            found = self._partitions[key] = PartitionState(
                table, self._lateness_ms, self._tolerance_ms
            )
        return found

    @property
    def partitions(self) -> dict[PartitionKey, PartitionState]:
        return self._partitions

    @property
    def table(self) -> PairTable:
        """The pair table of the default partition (0): files, tests, the evaluation."""
        return self.partition(0).table

    @property
    def tracked_pairs(self) -> int:
        return sum(p.table.tracked_pairs for p in self._partitions.values())

    def drop_partitions(self, keys: Iterable[PartitionKey]) -> int:
        """Forget the state of partitions (revoked); returns the number of pairs dropped."""
        dropped = 0
        for key in keys:
            state = self._partitions.pop(key, None)
            if state is not None:
                dropped += state.table.release()
        self.stats.evicted_revoked_total += dropped
        self._publish_gauges()
        return dropped

    def snapshot_partition(self, key: PartitionKey, **fields: Any) -> bytes:
        """The partition's whole state as bytes (`state.snapshot`), with ``fields`` (the
        caller's: input offset, ...) in its header."""
        state = self.partition(key)
        return encode_table(
            state.table, state.notes.entries(), watermark_ms=state.watermark_ms,
            last_sweep_ms=state.last_sweep_ms, **fields,
        )  # fmt: skip

    def restore_partition(self, key: PartitionKey, data: bytes | memoryview) -> dict[str, Any]:
        """Replace the partition's state with a snapshot's; returns the caller's fields.

        Raises `SnapshotError` (and keeps the current state) when it cannot be restored.
        """
        restored = decode_table(
            data, history_events=self._history_events, prevalence=self.prevalence,
            budget=self.budget, min_capacity=min(MIN_CAPACITY, self.budget.max_pairs),
        )  # fmt: skip
        if self._prefix_channels:
            restored.table.enable_channels()
        if self._name_channels:
            restored.table.enable_names()
        old = self._partitions.pop(key, None)
        if old is not None:
            old.table.release()
        fields = dict(restored.fields)
        state = PartitionState(restored.table, self._lateness_ms, self._tolerance_ms)
        state.notes.load(restored.notes)
        watermark_ms = fields.pop("watermark_ms", None)
        if watermark_ms is not None:
            state.watermark.start_at(int(watermark_ms))
            self.clock.advance_to(int(watermark_ms))
        state.last_sweep_ms = fields.pop("last_sweep_ms", None)
        self._partitions[key] = state
        self._publish_gauges()
        return fields

    def _publish_gauges(self) -> None:
        self.stats.tracked_pairs = self.tracked_pairs
        watermarks = [
            w for p in self._partitions.values() if (w := p.watermark.newest_ms) is not None
        ]
        # The laggiest partition's newest flow: the event-time lag gauge shows the worst.
        self.stats.watermark_ms = min(watermarks) if watermarks else self.clock.now_ms()

    def _first_watermark(self, start_ms: np.ndarray) -> int:
        """The earliest start within one window of the batch median.

        Not the minimum: one garbage timestamp decades in the past must not drag the
        watermark (and the ring epoch) back with it.
        """
        median_ms = int(np.median(start_ms))
        return int(start_ms[start_ms >= median_ms - self._window_ms].min())

    # -- flows ----------------------------------------------------------------------------

    def process(self, flows: FlowBatch, partition: PartitionKey = 0) -> DetectorResult:
        """Ingest one batch of flows from one input partition, in order."""
        # Name annotations (Zeek ssl/http records) are no connections: learnt, then dropped;
        # they name the partition's later flows of their pair (`state.name_notes`).
        notes = flows.annotation.any()
        known = self._partitions.get(partition)
        if notes or (known is not None and len(known.notes)):
            flows = self.partition(partition).notes.split(flows)
        scoped = self.scope.apply(flows)
        self.stats.ignored_by_reason.update(scoped.ignored)
        flows = scoped.flows
        n = len(flows)
        if n == 0:
            return DetectorResult([], [], 0, FlowBatch.empty(0), _NO_HOSTS)
        state = self.partition(partition)
        table = state.table
        wall_ms = self._wall_clock_ms()
        max_start_ms = wall_ms + self._max_future_ms
        in_range = flows.start_ms <= max_start_ms
        if state.watermark_ms is None and in_range.any():
            first_ms = self._first_watermark(flows.start_ms[in_range])
            table.set_epoch(first_ms - self._long_window_ms - self._lateness_ms)
            state.last_sweep_ms = first_ms
            state.watermark.start_at(first_ms)
            self.clock.advance_to(first_ms)
        # Lateness is judged per partition (a consumer catching up on a backlog reads one
        # partition ahead of another), against the watermark before the batch, on when each
        # flow could have been exported: its end.
        watermark_ms = state.watermark_ms
        export_ms = np.maximum(flows.start_ms, flows.end_ms)
        timely = in_range
        if watermark_ms is not None:
            timely = in_range & (export_ms >= watermark_ms - self._lateness_ms)
        timely_ms = export_ms[timely]
        seen = state.watermark.observe(timely_ms, wall_ms)
        self._count_ahead(flows, timely, seen, wall_ms)
        batch_start_ms = int(flows.start_ms[timely].min()) if timely_ms.size else None
        self._follow_event_time(state, watermark_ms, batch_start_ms, seen.watermark_ms)
        named = table.name_channels is not None and bool(flows.name_hash.any())
        limits = self._limits._replace(
            watermark_ms=watermark_ms if watermark_ms is not None else _NEVER_MS,
            max_start_ms=max_start_ms,
        )
        status = np.empty(n, dtype=np.uint8)
        counters = new_counters()
        feed = np.zeros(n, dtype=np.uint8)
        raised = self._ingest(table, flows, status, feed, counters, limits, level=0)
        fed = np.flatnonzero(feed)
        if fed.size:
            # The prefix pass: the flows of promoted channels (`state.channel_index`),
            # destinations masked; no long connections (their exact pairs report those).
            # Its status and per-flow counters repeat the first's.
            more = new_counters()
            raised += self._ingest(
                table, prefix_flows(flows.take(fed)), np.empty(fed.size, dtype=np.uint8), feed,
                more, limits, PREFIX_LEVEL,
            )  # fmt: skip
            for name in PREFIX_PASS_COUNTERS:
                counters[name] += more[name]
        if named:
            raised += self._name_pass(table, flows, status, limits, counters)
        rejections, rejected_flows = self._rejections(flows, status, watermark_ms or 0)
        alerts = []
        kept, dropped = self._channels.decide(table, raised)
        for reason in dropped:
            self.stats.alerts_suppressed_by_reason[reason] += 1
        for alert in kept:
            suppressed_by = self.rules.suppressed_by(alert)
            if suppressed_by is None:
                alerts.append(alert)
            else:
                self.stats.alerts_suppressed_by_reason[suppressed_by] += 1
        s = self.stats
        counted = counters[0]
        s.merged_by_kind["duplicate"] += int(counted["duplicates"])
        s.merged_by_kind["continuation"] += int(counted["continuations"])
        s.flows_total += int(counted["accepted"])
        s.evicted_capacity_total += int(counted["evicted_capacity"])
        s.evicted_established_total += int(counted["evicted_established"])
        s.pairs_scored_total += int(counted["scored"])
        for alert in alerts:
            s.alerts_by_severity[alert.severity] += 1
        if state.watermark_ms is not None:
            self._sweep_idle(state, state.watermark_ms)
        self._publish_gauges()
        accepted = int(counted["accepted"])
        hosts = (
            np.unique(host_hash(flows.src_hi, flows.src_lo))
            if self._report_source_hosts
            else _NO_HOSTS
        )
        return DetectorResult(alerts, rejections, accepted, rejected_flows, hosts)

    def _name_pass(
        self, table: PairTable, flows: FlowBatch, status: np.ndarray, limits: Limits,
        counters: np.ndarray,
    ) -> list[tuple[Alert, int]]:  # fmt: skip
        """The name pass: the accepted named flows of promoted name channels
        (`state.name_channels`), keyed (source, name hash, port) at NAME_LEVEL."""
        assert table.name_channels is not None
        named = np.flatnonzero((flows.name_hash != 0) & (status == steps.ACCEPTED))
        if named.size == 0:
            return []
        table.names.add(flows.names)
        f = flows.take(named)
        feed = table.name_channels.route(
            f.start_ms, f.src_hi, f.src_lo, f.dst_hi, f.dst_lo, f.dst_port, f.proto, f.name_hash
        )
        fed = np.flatnonzero(feed)
        if fed.size == 0:
            return []
        f = f.take(fed)
        f = dataclasses.replace(f, dst_hi=f.name_hash, dst_lo=np.zeros(fed.size, np.uint64))
        more = new_counters()
        raised = self._ingest(
            table, f, np.empty(fed.size, dtype=np.uint8), np.zeros(fed.size, dtype=np.uint8),
            more, limits, NAME_LEVEL,
        )  # fmt: skip
        # Its per-flow counters repeat the exact pass's, as the prefix pass's do.
        for name in PREFIX_PASS_COUNTERS:
            counters[name] += more[name]
        return raised

    def _ingest(
        self, table: PairTable, flows: FlowBatch, status: np.ndarray, feed: np.ndarray,
        counters: np.ndarray, limits: Limits, level: int,
    ) -> list[tuple[Alert, int]]:  # fmt: skip
        """One pass of the ingest kernel over ``flows`` at ``level`` (`state.levels`); the
        alerts it raised, with their rows. The exact pass marks in ``feed`` the flows of
        promoted prefix channels."""
        n = len(flows)
        # Every flow of the pass could be a new row: grow now if the budget allows. Per pass,
        # not for all three at once: reserving a batch's worth thrice doubled a table that a
        # batch's worth fits (111k rows at the end of the detector benchmark, 262k allocated).
        table.reserve(n)
        # No long connections in the prefix pass: their exact pairs report those.
        limits = limits._replace(
            level=level,
            long_connection_ms=0 if level else limits.long_connection_ms,
            evict_batch=table.evict_batch,
        )
        # A flow can make its pair alert three times: a long connection, a sparse beacon (its
        # third connection) and a beacon (when min_events_slow is 3).
        alerts = new_alert_rows(3 * n, Stat.SIZE)
        k.ingest(
            table.columns(), self.prevalence.sketch, self.prevalence.nonzero,
            flows.start_ms, flows.end_ms, flows.src_hi, flows.src_lo, flows.dst_hi,
            flows.dst_lo, flows.src_port, flows.dst_port, flows.proto, flows.bytes,
            flows.sampling_rate, flows.initiator,
            limits, self._score_params, self._null_tables, self._policy,
            status, feed, counters, alerts,
        )  # fmt: skip
        raised = _with_pairs(take(alerts, int(counters[0]["alerts"])), table)
        return [(self.rules.make_alert(raised, i), int(row)) for i, row in enumerate(raised.row)]

    def _rejections(
        self, flows: FlowBatch, status: np.ndarray, watermark_ms: int
    ) -> tuple[list[Rejection], FlowBatch]:
        rejected = np.flatnonzero(status != steps.ACCEPTED)
        if rejected.size == 0:
            return [], FlowBatch.empty(0)
        out = []
        for i in rejected:
            start_ms = int(flows.start_ms[i])
            if status[i] == steps.TOO_LATE:
                reason = RejectReason.TOO_LATE
                ended_ms = max(start_ms, int(flows.end_ms[i]))
                detail = (
                    f"flow ended {(watermark_ms - ended_ms) / 1000:.0f} s before the "
                    f"partition's event time (allowed lateness {self._lateness_ms // 1000} s)"
                )
            elif status[i] == steps.BEYOND_RING:
                reason = RejectReason.TOO_FAR_FUTURE
                detail = (
                    f"flow start {(start_ms - watermark_ms) / 86_400_000:.0f} days after the "
                    "partition's event time: beyond what its state can hold"
                )
            else:
                reason = RejectReason.TOO_FAR_FUTURE
                detail = f"flow start {start_ms} ms is beyond the wall clock + max_future_s"
            self.stats.rejected_by_reason[reason] += 1
            out.append(Rejection(int(flows.record_index[i]), reason, detail))
        return out, flows.take(rejected)

    def _follow_event_time(
        self, state: PartitionState, before_ms: int | None, batch_start_ms: int | None,
        after_ms: int | None,
    ) -> None:  # fmt: skip
        """Before the batch: drop the pairs idle for longer than the window when even its
        earliest flow comes after such a gap (last month's file, then today's), as the idle
        sweep would have had the time gone by, so a pair seen in both is a new pair, not an
        old alert's silent continuation; and re-base the ring times (u32 ms after the
        partition's epoch, 49.7 days) from the new event time, long before they wrap."""
        if after_ms is None:
            return
        self.clock.advance_to(after_ms)
        table = state.table
        if (
            before_ms is not None
            and batch_start_ms is not None
            and batch_start_ms - before_ms > self._window_ms
        ):
            self._evict_idle(state, batch_start_ms)
        if after_ms - table.epoch_ms > REBASE_AFTER_MS:
            table.rebase(after_ms - self._long_window_ms - self._lateness_ms)

    def _count_ahead(
        self, flows: FlowBatch, timely: np.ndarray, seen: Observation, wall_ms: int
    ) -> None:
        """Flows ahead of the wall clock by more than the tolerance: their exporter's clock is
        fast. Kept and counted, with one example for the operator's warning."""
        count = int(seen.ahead.sum())
        if not count:
            return
        self.stats.flows_ahead_total += count
        i = int(np.flatnonzero(timely)[np.flatnonzero(seen.ahead)[-1]])
        export_ms = max(int(flows.start_ms[i]), int(flows.end_ms[i]))
        self.stats.ahead_example = AheadExample(
            src_ip=halves_to_ip(int(flows.src_hi[i]), int(flows.src_lo[i])),
            dst_ip=halves_to_ip(int(flows.dst_hi[i]), int(flows.dst_lo[i])),
            dst_port=int(flows.dst_port[i]),
            ahead_s=(export_ms - wall_ms) / 1000,
        )

    def _sweep_idle(self, state: PartitionState, now_ms: int) -> None:
        last = state.last_sweep_ms
        if last is not None and now_ms - last < self._sweep_every_ms:
            return
        self._evict_idle(state, now_ms)

    def _evict_idle(self, state: PartitionState, now_ms: int) -> None:
        """Drop the partition's pairs idle at ``now_ms`` (`PairTable.evict_idle`)."""
        state.last_sweep_ms = now_ms
        self.stats.evicted_idle_total += state.table.evict_idle(
            now_ms - self._window_ms,
            now_ms - self._sparse_keep_ms,
            now_ms - self._single_idle_ms,
            self._sparse_gap_ms,
        )

    def score_all_pairs(self) -> list[PairScore]:
        """Every tracked pair of every partition scored on its current window (for
        evaluations; costs O(pairs))."""
        scores: list[PairScore] = []
        for state in self._partitions.values():
            t = state.table
            out = new_alert_rows(t.tracked_pairs, Stat.SIZE)
            n = k.score_rows(
                t.columns(), self.prevalence.sketch, self.prevalence.nonzero,
                self._window_ms, self._long_window_ms, self._score_params, self._null_tables,
                self._policy, out,
            )  # fmt: skip
            scored = take(out, n)
            # Pairs, not prefix or name channels.
            exact = (t.port_proto[scored.row] & LEVEL_BITS) == 0
            scores.extend(pair_scores(t, scored, np.flatnonzero(exact)))
        return scores


def _with_pairs(alerts: AlertRows, table: PairTable) -> AlertRows:
    """The alerts with their pairs' columns, read from the table after the kernel call (a row
    may hold another pair by then: `core.channels` checks its alerts' keys)."""
    rows = alerts.row
    keys = table.keys[rows]
    pp = table.port_proto[rows]
    named = (pp & np.uint32(NAME_LEVEL)) != 0
    domains = [domain_text(table, int(h)) if is_name else "" for h, is_name in
               zip(keys[:, 2].tolist(), named.tolist(), strict=True)]  # fmt: skip
    return alerts._replace(
        src_hi=keys[:, 0], src_lo=keys[:, 1], dst_hi=keys[:, 2], dst_lo=keys[:, 3],
        dst_port_proto=pp & np.uint32(PORT_PROTO_MASK),
        prefix=((pp & np.uint32(PREFIX_LEVEL)) != 0).astype(np.uint8),
        dst_domain=np.array(domains, dtype=np.str_),
        sampling=table.sampling[rows], direction_inferred=table.direction_inferred[rows],
    )  # fmt: skip


def _system_ms() -> int:
    return time.time_ns() // 1_000_000


def warm_up(config: Config) -> None:
    """Load (or, on a fresh install, compile) the ingest kernel and all it calls, now.

    numba compiles a kernel and its callees on the first call: 30-60 s on a fresh install. A
    service warms up before it reads records, so none wait behind the compiler and a demo or
    an accelerated replay does not fall behind its wall clock.
    """
    start_ms = 1_700_000_000_000
    small = with_overrides(config, state={"max_pairs": 16})
    detector = Detector(small, wall_clock_ms=lambda: start_ms + 1)
    one_flow = FlowBatch.from_columns(
        start_ms=[start_ms], src_hi=[0], src_lo=[0xFFFF_0A00_0001], dst_hi=[0],
        dst_lo=[0xFFFF_CB00_7101], src_port=[50_000], dst_port=[443], proto=[6], bytes=[100],
    )  # fmt: skip
    detector.process(one_flow)
    # The idle sweep (evicts nothing here: every cutoff is before the flow).
    detector.table.evict_idle(start_ms - 1, start_ms - 1, start_ms - 1, 0)
    # The prefix channels' member look-ups (IPv4 and IPv6), run at a prefix alert.
    for net in ((0, 0xFFFF_CB00_7100), (0x2001_0DB8 << 32, 0)):
        detector._channels.members(detector.table, (0, 0xFFFF_0A00_0001), net, 443 << 8 | 6,
                                   start_ms)  # fmt: skip
    # The name channels: their promotion index and name pass (two IPs of one name), and the
    # look-up of a source's name rows, run at a pair or prefix alert.
    if detector.table.name_channels is not None:
        named = FlowBatch.from_columns(
            start_ms=[start_ms, start_ms + 1], src_hi=[0, 0], src_lo=[0xFFFF_0A00_0001] * 2,
            dst_hi=[0, 0], dst_lo=[0xFFFF_CB00_7101, 0xFFFF_C633_6401], src_port=[50_001] * 2,
            dst_port=[443, 443], proto=[6, 6], bytes=[100, 100], name_hash=[1, 1],
            names={1: "warm-up.invalid"},
        )  # fmt: skip
        detector.process(named)
        detector._channels.name_rows(detector.table, (0, 0xFFFF_0A00_0001), 443 << 8 | 6, 0)
