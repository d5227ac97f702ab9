"""The pair table: hash index integrity, ring buffers, eviction, memory per pair."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from beaconwatch.config import Config, with_overrides
from beaconwatch.core.detector import Detector
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.state.hash_index import EMPTY, find_slot, key_hash
from beaconwatch.state.pair_table import PairTable
from beaconwatch.state.prevalence import Prevalence
from beaconwatch.state.size_codec import decode_size
from tests.unit.flowgen import T0_MS, WALL_MS, make_flows


def detector(alerting: dict[str, object] | None = None, **state: object) -> Detector:
    # The table's mechanics, one row per pair: prefix channels (a second row per destination
    # prefix) are tested in test_channels.py.
    config = with_overrides(
        Config(), state={"prefix_channels": False, **state}, alerting=alerting or {}
    )
    return Detector(config, wall_clock_ms=lambda: WALL_MS)


def lookup(table: PairTable, src: str, dst: str, port: int, proto: int = 6) -> int:
    s, d = ip_to_halves(src), ip_to_halves(dst)
    pp = np.uint32(port << 8 | proto)
    args = (np.uint64(s[0]), np.uint64(s[1]), np.uint64(d[0]), np.uint64(d[1]), pp)
    slot = find_slot(table.index, table.keys, table.port_proto, np.uint64(key_hash(*args)), *args)
    return int(table.index[slot])


def assert_index_consistent(table: PairTable) -> None:
    rows = table.index[table.index != EMPTY]
    assert sorted(rows.tolist()) == sorted(np.flatnonzero(table.used).tolist())
    assert table.tracked_pairs == int(table.used.sum())
    for row in rows:
        k = table.keys[row]
        pp = table.port_proto[row]
        h = np.uint64(key_hash(k[0], k[1], k[2], k[3], pp))
        slot = find_slot(table.index, table.keys, table.port_proto, h, k[0], k[1], k[2], k[3], pp)
        assert table.index[slot] == row


def test_each_pair_gets_one_row_with_its_own_counts() -> None:
    det = detector()
    rows = []
    for i in range(300):
        for j in range(i % 5 + 1):
            rows.append(
                (T0_MS + i * 10 + j, f"10.0.{i // 256}.{i % 256}", "192.0.2.1", 443, 6, 100)
            )
    det.process(make_flows(rows))
    assert det.table.tracked_pairs == 300
    for i in (0, 1, 4, 299):
        row = lookup(det.table, f"10.0.{i // 256}.{i % 256}", "192.0.2.1", 443)
        assert row != EMPTY
        assert det.table.count[row] == i % 5 + 1
    assert lookup(det.table, "10.9.9.9", "192.0.2.1", 443) == EMPTY
    # Port and protocol are part of the key.
    det.process(make_flows([(T0_MS + 5000, "10.0.0.0", "192.0.2.1", 80, 6, 1),
                            (T0_MS + 5001, "10.0.0.0", "192.0.2.1", 443, 17, 1)]))  # fmt: skip
    assert det.table.tracked_pairs == 302
    assert_index_consistent(det.table)


def test_ring_keeps_the_last_history_events_and_ipv6_keys() -> None:
    det = detector(history_events=8)
    rows = [(T0_MS + i * 1000, "fd00::1", "2001:db8:ffff::2", 8443, 6, i) for i in range(20)]
    det.process(make_flows(rows))
    row = lookup(det.table, "fd00::1", "2001:db8:ffff::2", 8443)
    assert det.table.count[row] == 20
    kept = np.sort(det.table.ring_t[row].astype(np.int64) + det.table.epoch_ms)
    assert kept.tolist() == [T0_MS + i * 1000 for i in range(12, 20)]
    sizes = [decode_size(code) for code in det.table.ring_b[row]]
    assert sorted(sizes) == list(range(12, 20))
    assert det.table.first_seen_ms[row] == T0_MS
    assert det.table.last_seen_ms[row] == T0_MS + 19_000


def test_capacity_evicts_least_recently_seen_pairs() -> None:
    det = detector(max_pairs=64)
    rows = [(T0_MS + i * 1000, f"10.1.0.{i}", "192.0.2.9", 443, 6, 1) for i in range(200)]
    det.process(make_flows(rows))
    assert det.table.tracked_pairs <= 64
    assert det.stats.evicted_capacity_total == 200 - det.table.tracked_pairs
    assert lookup(det.table, "10.1.0.199", "192.0.2.9", 443) != EMPTY  # newest kept
    assert lookup(det.table, "10.1.0.0", "192.0.2.9", 443) == EMPTY  # oldest gone
    assert_index_consistent(det.table)


def test_idle_pairs_are_evicted_after_the_window_and_a_quarter() -> None:
    # A quarter more than the window (rule sparse-beacon's grace for a jittered 24 h sleep).
    det = detector(window_s=3600)
    det.process(make_flows([(T0_MS, "10.0.0.1", "192.0.2.1", 443, 6, 1)]))
    det.process(make_flows([(T0_MS + 1_800_000, "10.0.0.2", "192.0.2.1", 443, 6, 1)]))
    assert det.table.tracked_pairs == 2
    det.process(make_flows([(T0_MS + 4_400_000, "10.0.0.3", "192.0.2.1", 443, 6, 1)]))
    assert det.stats.evicted_idle_total == 0
    det.process(make_flows([(T0_MS + 4_600_000, "10.0.0.3", "192.0.2.1", 443, 6, 1)]))
    assert det.stats.evicted_idle_total == 1
    assert lookup(det.table, "10.0.0.1", "192.0.2.1", 443) == EMPTY
    assert lookup(det.table, "10.0.0.2", "192.0.2.1", 443) != EMPTY
    assert_index_consistent(det.table)


def _daily_candidates(sparse_min_interval_s: float) -> Detector:
    """Window 1 h, long window 3 h; at +40 min: pair .1's second connection 40 min after its
    first, pair .4's second 1 min after its first, pair .2's first."""
    det = detector({"sparse_min_interval_s": sparse_min_interval_s},
                   window_s=3600, long_window_s=3 * 3600)  # fmt: skip
    det.process(make_flows([(T0_MS, "10.0.0.1", "192.0.2.1", 443, 6, 1),
                            (T0_MS + 2_340_000, "10.0.0.4", "192.0.2.1", 443, 6, 1),
                            (T0_MS + 2_400_000, "10.0.0.1", "192.0.2.1", 443, 6, 1),
                            (T0_MS + 2_400_000, "10.0.0.4", "192.0.2.1", 443, 6, 1),
                            (T0_MS + 2_400_000, "10.0.0.2", "192.0.2.1", 443, 6, 1)]))  # fmt: skip
    # 76 min later: every pair has been idle for longer than the window and its quarter.
    det.process(make_flows([(T0_MS + 7_000_000, "10.0.0.3", "192.0.2.1", 443, 6, 1)]))
    return det


def test_two_connections_a_long_sleep_apart_stay_for_the_long_window() -> None:
    # A daily beacon is silent for longer than the window between check-ins: a pair of two
    # connections a sparse-beacon sleep apart must outlive the window for its third.
    det = _daily_candidates(sparse_min_interval_s=2400)
    assert lookup(det.table, "10.0.0.2", "192.0.2.1", 443) == EMPTY  # one connection: gone
    assert lookup(det.table, "10.0.0.4", "192.0.2.1", 443) == EMPTY  # two, 1 min apart: gone
    assert lookup(det.table, "10.0.0.1", "192.0.2.1", 443) != EMPTY  # two, 40 min apart: kept
    det.process(make_flows([(T0_MS + 7_100_000, "10.0.0.1", "192.0.2.1", 443, 6, 1)]))
    row = lookup(det.table, "10.0.0.1", "192.0.2.1", 443)
    assert det.table.count[row] == 3  # the same pair, not a new one
    # Three connections: the rule has judged it; it goes after the window like any pair.
    det.process(make_flows([(T0_MS + 10_800_000, "10.0.0.3", "192.0.2.1", 443, 6, 1)]))
    assert lookup(det.table, "10.0.0.1", "192.0.2.1", 443) == EMPTY
    assert_index_consistent(det.table)


def test_without_rule_sparse_beacon_no_pair_outlives_the_window() -> None:
    det = _daily_candidates(sparse_min_interval_s=0)
    for src in ("10.0.0.1", "10.0.0.2", "10.0.0.4"):
        assert lookup(det.table, src, "192.0.2.1", 443) == EMPTY
    assert det.stats.evicted_idle_total == 3
    assert_index_consistent(det.table)


def test_random_churn_keeps_index_consistent() -> None:
    rng = np.random.default_rng(7)
    det = detector(max_pairs=128, window_s=600)
    t = T0_MS
    for step in range(40):
        rows = []
        for _ in range(int(rng.integers(1, 200))):
            t += int(rng.integers(0, 3000))
            rows.append((t, f"10.0.0.{rng.integers(0, 40)}", f"192.0.2.{rng.integers(0, 12)}",
                         int(rng.integers(1, 4)), 6, 10))  # fmt: skip
        det.process(make_flows(rows), partition=step % 3)
        if step % 7 == 6:
            det.drop_partitions([int(rng.integers(0, 3))])
        for state in det.partitions.values():
            assert_index_consistent(state.table)
        assert_prevalence_is_the_sum_of_the_partitions(det)


def assert_prevalence_is_the_sum_of_the_partitions(det: Detector) -> None:
    """The process's sketch is exactly what its partitions' tracked pairs add up to."""
    merged = Prevalence(det.budget.max_pairs)
    for state in det.partitions.values():
        state.table.count_into(merged)
    np.testing.assert_array_equal(merged.sketch, det.prevalence.sketch)
    assert merged.nonzero[0] == det.prevalence.nonzero[0]


def test_drop_partitions_forgets_only_their_pairs() -> None:
    det = detector()
    det.process(make_flows([(T0_MS, "10.0.0.1", "192.0.2.1", 443, 6, 1)]), partition=0)
    det.process(make_flows([(T0_MS + 1, "10.0.0.2", "192.0.2.1", 443, 6, 1)]), partition=1)
    assert lookup(det.partitions[1].table, "10.0.0.2", "192.0.2.1", 443) != EMPTY
    assert det.drop_partitions([1]) == 1
    assert 1 not in det.partitions
    assert lookup(det.table, "10.0.0.1", "192.0.2.1", 443) != EMPTY
    assert det.stats.evicted_revoked_total == 1
    assert det.tracked_pairs == det.stats.tracked_pairs == 1
    assert_prevalence_is_the_sum_of_the_partitions(det)


def test_tables_grow_within_the_process_budget_and_give_rows_back() -> None:
    det = detector(max_pairs=5000)
    for p in range(3):
        rows = [(T0_MS + i, f"10.{p}.{i // 256}.{i % 256}", "192.0.2.1", 443, 6, 1)
                for i in range(2500)]  # fmt: skip
        det.process(make_flows(rows), partition=p)
        assert_index_consistent(det.partitions[p].table)
    capacities = [det.partitions[p].table.capacity for p in range(3)]
    # The first partition grew to 4096 rows; the second got what was left; the third none but
    # the starved minimum, and evicts its own least recent pairs.
    assert capacities == [4096, 5000 - 4096, 64]
    assert det.budget.granted == sum(capacities)
    assert [det.partitions[p].table.tracked_pairs for p in range(3)] == [2500, 904, 64]
    assert det.stats.evicted_capacity_total == (2500 - 904) + (2500 - 64)
    det.drop_partitions([0])
    assert det.budget.granted == 5000 - 4096 + 64
    rows = [(T0_MS + 5000 + i, f"10.2.{i // 256}.{i % 256}", "192.0.2.2", 443, 6, 1)
            for i in range(2000)]  # fmt: skip
    det.process(make_flows(rows), partition=2)
    assert det.partitions[2].table.tracked_pairs == 64 + 2000  # grew into the rows given back
    assert_index_consistent(det.partitions[2].table)
    assert_prevalence_is_the_sum_of_the_partitions(det)


def test_a_table_grows_only_when_a_pass_s_flows_may_not_fit() -> None:
    # Prefix and name channels on (the defaults): each ingest pass reserves rows for its own
    # flows. Reserving for all passes at once doubled a table its batches fit.
    det = detector(prefix_channels=True, name_channels=True)
    assert det.table.capacity == 1024

    def batch(first: int, pairs: int) -> None:
        # One destination per /24, so no prefix channel is promoted: one pass per batch.
        rows = [(T0_MS + first + i, "10.0.0.1", f"198.{(first + i) // 256}.{(first + i) % 256}.1",
                 443, 6, 1) for i in range(pairs)]  # fmt: skip
        det.process(make_flows(rows))

    batch(0, 600)
    batch(600, 400)  # 1,000 pairs: fits 1,024 rows
    assert (det.table.capacity, det.table.tracked_pairs) == (1024, 1000)
    batch(1000, 100)
    assert (det.table.capacity, det.table.tracked_pairs) == (2048, 1100)
    assert det.stats.evicted_capacity_total == 0
    assert_index_consistent(det.table)


def test_rebase_keeps_windows_intact_across_a_month_of_event_time() -> None:
    det = detector(window_s=3600)
    day_ms = 86_400_000
    for day in range(40):
        start = T0_MS + day * day_ms
        det.process(make_flows([(start + i * 60_000, "10.0.0.1", "192.0.2.1", 443, 6, 1)
                                for i in range(3)]))  # fmt: skip
    row = lookup(det.table, "10.0.0.1", "192.0.2.1", 443)
    newest = int(det.table.ring_t[row].max()) + det.table.epoch_ms
    assert newest == T0_MS + 39 * day_ms + 120_000


def test_memory_per_pair_is_within_budget() -> None:
    table = PairTable(100_000, history_events=32, prevalence=Prevalence(100_000))
    assert table.bytes_per_pair <= 400


def test_find_takes_pairs_whose_key_hash_has_the_top_bit_set() -> None:
    # About half of all pairs: `scan --output-format table` crashed on them (OverflowError).
    det = Detector(Config(), wall_clock_ms=lambda: WALL_MS)
    sources = [f"10.0.0.{i}" for i in range(1, 9)]
    det.process(make_flows([(T0_MS + i, src, "203.0.113.9", 443, 6, 1)
                            for i, src in enumerate(sources)]))  # fmt: skip
    top_bit = 0
    for src in sources:
        s, d = ip_to_halves(src), ip_to_halves("203.0.113.9")
        args = (np.uint64(s[0]), np.uint64(s[1]), np.uint64(d[0]), np.uint64(d[1]))
        top_bit += int(key_hash(*args, np.uint32(443 << 8 | 6))) >> 63
        assert det.table.find(s, d, 443 << 8 | 6) == lookup(det.table, src, "203.0.113.9", 443)
        assert det.table.find(s, d, 443 << 8 | 6) >= 0
    assert 0 < top_bit < len(sources)


def test_warm_up_loads_the_idle_sweep() -> None:
    # A service warms up before reading: its first sweep must not wait for numba. In a fresh
    # process: in this one, other tests have run the sweep already.
    code = (
        "from beaconwatch.config import Config\n"
        "from beaconwatch.core.detector import warm_up\n"
        "from beaconwatch.state import pair_table\n"
        "warm_up(Config())\n"
        "assert pair_table._evict_idle.signatures, 'idle sweep not loaded by warm_up'\n"
    )
    # With the JIT on in that process, whatever this one runs under (`make test-nojit`).
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
