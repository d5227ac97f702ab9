"""The hard cases of real traffic, each replayed through the detector over many seeds.

Each case is one behaviour seen on real captures that the synthetic office did not have
(issue "Real traffic"): check-ins made of bursts, slow beacons in their first days, C2 held in
long sessions, inbound scanners and brute-forcers under one-direction export, an exporter
whose clock is fast. A case plants its implant (or its benign look-alike) among Poisson
browsing of a few hosts and reports how many runs alerted on it; C2 cases should, benign ones
should not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from beaconwatch.alerting.alert import RULE_LONG_CONNECTION, Alert
from beaconwatch.config import Config
from beaconwatch.core.detector import Detector
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.domain.names import name_hash
from beaconwatch.scoring.periodicity import Shape
from beaconwatch.simulate.batch import to_batch
from beaconwatch.simulate.browsing import poisson_browsing
from beaconwatch.simulate.implant import sleeps_s
from beaconwatch.simulate.model import SimFlow

T0_MS = 1_709_510_400_000  # Monday 2024-03-04 00:00 UTC
HOUR_MS = 3_600_000
RUNS = 20
IMPLANT, PEER = "10.0.0.66", "203.0.113.66"
SYMMETRIC = Shape.SYMMETRIC  # the cases' implants sleep S(1 +/- j) (`simulate.implant`)
SLOW_TASKING_SHARE = 0.1  # slow beacons' check-ins that fetch tasking (bigger)
C2_NAME = "cdn-c2.example.net"  # the SNI of the named rotation cases' C2
POLLED_NAME = "updates.vendor.example"  # the SNI of the service the fleet polls
EDGE_PREFIX = "23."  # the CDN's edges: 23.x.y.z, IPs of many /24s


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    malicious: bool  # an implant (should alert) or a benign look-alike (should not)
    runs: int
    alerted: int  # runs with an alert on the planted pair (of the case's rule, if any)
    rejected_too_late: int  # good flows rejected as too late, over all runs
    what: str
    # Alerts on any pair but the planted C2 one, and the host-days replayed (`traffic_cases`).
    false_alerts: int | None = None
    host_days: float | None = None

    @property
    def share(self) -> float:
        return self.alerted / self.runs


def _tcp(start: int, end: int, src: str, dst: str, sport: int, dport: int, nbytes: int
         ) -> SimFlow:  # fmt: skip
    """A TCP record as these cases' exporter sends it: no packet count, no flags."""
    return SimFlow(start, end, src, dst, sport, dport, "TCP", nbytes, 1)


def _browsing(rng: np.random.Generator, hours: float, hosts: int = 6) -> list[SimFlow]:
    return poisson_browsing(rng, T0_MS, hours, hosts)


@dataclass(frozen=True, slots=True)
class _Replayed:
    detector: Detector
    alerts: list[Alert]

    def hit(self, rule: str | None = None) -> bool:
        """Whether the planted pair (IMPLANT -> PEER) alerted (under ``rule``, if given)."""
        return any(
            (a.src_ip, a.dst_ip) == (IMPLANT, PEER) and (rule is None or a.rule == rule)
            for a in self.alerts
        )


def _replay(
    config: Config, rows: list[SimFlow], true_ms: Callable[[int], int | None] | None = None,
    names: Callable[[SimFlow], str] | None = None,
) -> _Replayed:  # fmt: skip
    """``rows`` in batches of 200 by arrival (their order); the wall clock reads the newest
    true time of the batch plus a second (``true_ms``: a row's true time from its start, when
    it is not the start). ``names``: each row's destination name ("" none), as an ECS record
    with ``tls.client.server_name`` carries it."""
    now = [0]
    det = Detector(config, wall_clock_ms=lambda: now[0])
    alerts: list[Alert] = []
    for i in range(0, len(rows), 200):
        batch = rows[i : i + 200]
        true = [(true_ms(r[0]) if true_ms else None) or r[0] for r in batch]
        now[0] = max(true) + 1_000
        flows = to_batch(batch)
        if names is not None:
            flows = _named(flows, [names(r) for r in batch])
        alerts += det.process(flows).alerts
    return _Replayed(det, alerts)


def _named(flows: FlowBatch, names: list[str]) -> FlowBatch:
    hashes = np.array([name_hash(n) if n else 0 for n in names], dtype=np.uint64)
    texts = {name_hash(n): n for n in set(names) if n}
    return dataclasses.replace(flows, name_hash=hashes, names=texts)


def _sni(row: SimFlow) -> str:
    """The named cases' names: the CDN's edges serve the case's one name (the C2's, or the
    polled service's for the fleet's hosts); every other destination has a name of its own
    (browsing: one name per site IP)."""
    if row.dst_ip.startswith(EDGE_PREFIX):
        return POLLED_NAME if row.src_ip.startswith("10.0.2.") else C2_NAME
    return f"site-{row.dst_ip.replace('.', '-')}.example"


def _bursts(rng: np.random.Generator, period_s: float, hours: float, kind: str) -> list[SimFlow]:
    rows: list[SimFlow] = []
    t = T0_MS + rng.uniform(0, period_s * 1000)
    n = 0
    while t < T0_MS + hours * HOUR_MS:
        if kind == "syn":  # Windows retransmissions of an unanswered SYN, one 5-tuple
            offsets = (0, 3, 9, 21)[: int(rng.integers(2, 5))]
            ports = [50_000 + n] * len(offsets)
        else:  # a connection pool opening 2-3 at once
            offsets = tuple(rng.uniform(0, 0.4, int(rng.integers(2, 4))))
            ports = [40_000 + 3 * n + k for k in range(len(offsets))]
        for off, port in zip(offsets, ports, strict=True):
            start = int(t + off * 1000)
            rows.append(_tcp(start, start, IMPLANT, PEER, port, 443, 66 if kind == "syn" else 900))
        t += sleeps_s(SYMMETRIC, period_s * 1000, 0.1, rng.random())
        n += 1
    return rows


def _slow(rng: np.random.Generator, period_h: float, hours: float) -> list[SimFlow]:
    """Check-ins every ``period_h`` (10 % jitter) as an HTTPS implant makes them: a TLS
    connection of a near-constant 1.5-3 kB (this implant's own size, plus up to 64 bytes of
    padding), 1 in 10 bigger by the tasking it fetches (4-100 kB)."""
    rows: list[SimFlow] = []
    t = T0_MS + rng.uniform(0, period_h * HOUR_MS)
    check_in_b = int(rng.integers(1_500, 3_000))
    n = 0
    while t < T0_MS + hours * HOUR_MS:
        nbytes = check_in_b + int(rng.integers(0, 64))
        if rng.random() < SLOW_TASKING_SHARE:
            nbytes += int(rng.uniform(4_000, 100_000))
        rows.append(_tcp(int(t), int(t) + 400, IMPLANT, PEER, 50_000 + n, 443, nbytes))
        t += sleeps_s(SYMMETRIC, period_h * HOUR_MS, 0.1, rng.random())
        n += 1
    return rows


def _sessions(rng: np.random.Generator, per_day: int, hours: float, days: int) -> list[SimFlow]:
    """Sessions of ``hours`` each, ``per_day`` a day, in 30-min active-timeout pieces."""
    rows: list[SimFlow] = []
    for n in range(per_day * days):
        start = T0_MS + int((n * 24 / per_day + rng.uniform(0, 2)) * HOUR_MS)
        end = start + int(hours * rng.uniform(0.8, 1.2) * HOUR_MS)
        for piece in range(start, end, 1_800_000):
            rows.append(_tcp(piece, min(piece + 1_800_000, end), IMPLANT, PEER, 50_000 + n, 4444,
                             3_000))  # fmt: skip
    return rows


def _inbound(rng: np.random.Generator, hours: float) -> list[SimFlow]:
    """A brute-forcer hitting internal :23 every 10 s from a fixed port, and the telnet
    server's replies (one-direction export: each direction its own record)."""
    rows: list[SimFlow] = []
    t = T0_MS + rng.uniform(0, 10_000)
    while t < T0_MS + hours * HOUR_MS:
        start = int(t)
        rows.append(_tcp(start, start + 200, PEER, IMPLANT, 10647, 23, 120))
        rows.append(_tcp(start + 5, start + 200, IMPLANT, PEER, 23, 10647, 80))
        t += 10_000 * rng.uniform(0.98, 1.02)
    return rows


def _scanner_pings(rng: np.random.Generator, hours: float) -> list[SimFlow]:
    """A research scanner's TCP probes of internal :443 every 88 min (and the replies)."""
    rows: list[SimFlow] = []
    t = T0_MS + rng.uniform(0, 88 * 60_000)
    while t < T0_MS + hours * HOUR_MS:
        start = int(t)
        port = int(rng.integers(32768, 61000))
        rows.append(_tcp(start, start, PEER, IMPLANT, port, 443, 60))
        rows.append(_tcp(start + 3, start + 3, IMPLANT, PEER, 443, port, 60))
        t += 88 * 60_000
    return rows


def _p2p(rng: np.random.Generator, peers: int, hours: float) -> list[SimFlow]:
    """A BitTorrent client reconnecting to ``peers`` peers on 6881-6889 every 120 s."""
    rows: list[SimFlow] = []
    for p in range(peers):
        t = T0_MS + rng.uniform(0, 120_000)
        n = 0
        while t < T0_MS + hours * HOUR_MS:
            rows.append(_tcp(int(t), int(t) + 200, IMPLANT, f"198.18.{p // 200}.{p % 200 + 1}",
                         45_000 + n % 15_000, 6881 + p % 9, 68))  # fmt: skip
            t += 120_000 * rng.uniform(0.95, 1.05)
            n += 1
    return rows


def _rotating(
    rng: np.random.Generator, period_s: float, hours: float, ips: int, src: str = IMPLANT,
    jitter: float = 0.1, check_ins: int | None = None,
) -> list[SimFlow]:  # fmt: skip
    """A beacon whose destination changes each check-in among ``ips`` IPs of 203.0.113.0/24
    (a CDN edge, or a DNS round-robin of a few); 254 = any IP of the /24. At most
    ``check_ins`` check-ins, if given."""
    rows: list[SimFlow] = []
    pool = rng.choice(np.arange(1, 255), size=ips, replace=False)
    t = T0_MS + rng.uniform(0, period_s * 1000)
    n = 0
    while t < T0_MS + hours * HOUR_MS and (check_ins is None or n < check_ins):
        dst = f"203.0.113.{int(rng.choice(pool))}"
        rows.append(_tcp(int(t), int(t) + 300, src, dst, 40_000 + n % 20_000, 443,
                         1_200 + int(rng.integers(0, 60))))  # fmt: skip
        t += sleeps_s(SYMMETRIC, period_s * 1000, jitter, rng.random())
        n += 1
    return rows


def _edges(
    rng: np.random.Generator, period_s: float, hours: float, src: str = IMPLANT,
    jitter: float = 0.1,
) -> list[SimFlow]:  # fmt: skip
    """A beacon reaching a CDN edge in another /24 each check-in (23.x.y.z of 200 edges)."""
    pool = [f"23.{a}.{b}.{c}" for a, b, c in rng.integers([0, 0, 1], [256, 256, 255], (200, 3))]
    rows = _rotating(rng, period_s, hours, 254, src=src, jitter=jitter)
    return [r._replace(dst_ip=pool[int(rng.integers(len(pool)))]) for r in rows]


def _fleet_poll(rng: np.random.Generator, hosts: int, hours: float) -> list[SimFlow]:
    """An update/telemetry service behind a CDN that ``hosts`` hosts poll every 15 min."""
    rows: list[SimFlow] = []
    for h in range(hosts):
        rows += _rotating(rng, 900, hours, 254, src=f"10.0.2.{h}", jitter=0.05)
    return rows


def evaluate_hard_cases(config: Config, runs: int = RUNS) -> list[CaseResult]:
    results = []

    def case(name: str, malicious: bool, what: str,
             make: Callable[[np.random.Generator], list[SimFlow]], hours: float,
             rule: str | None = None, peer_prefix: str | None = None,
             src_prefix: str = IMPLANT, named: bool = False) -> None:  # fmt: skip
        alerted = 0
        for seed in range(runs):
            rng = np.random.default_rng(seed)
            rows = sorted(make(rng) + _browsing(rng, hours))
            replayed = _replay(config, rows, names=_sni if named else None)
            if named:  # any alert of the case's sources: the name's, or a pair's or prefix's
                alerted += any(a.src_ip.startswith(src_prefix) for a in replayed.alerts)
            elif peer_prefix is None:
                alerted += replayed.hit(rule)
            else:
                alerted += any(
                    a.src_ip.startswith(src_prefix) and a.dst_ip.startswith(peer_prefix)
                    for a in replayed.alerts
                )
        results.append(CaseResult(name, malicious, runs, alerted, 0, what))

    for period in (80, 300):
        case(f"burst check-ins: SYN retries every {period} s", True,
             "2-4 unanswered SYNs at +0/+3/+9/+21 s per check-in, 6 h",
             partial(_bursts, period_s=period, hours=6, kind="syn"), 6)  # fmt: skip
    case("burst check-ins: 2-3 parallel connections every 120 s", True,
         "a connection pool opening 2-3 connections per check-in, 6 h",
         lambda rng: _bursts(rng, 120, 6, "pool"), 6)  # fmt: skip
    for period_h, hours in ((4, 24), (8, 48), (12, 72), (24, 72)):
        case(f"slow beacon: {period_h} h sleep within {hours} h", True,
             f"10 % jitter, {int(hours / period_h)} check-ins of a near-constant 1.5-3 kB, "
             "1 in 10 bigger by its tasking",
             partial(_slow, period_h=period_h, hours=hours), hours)  # fmt: skip
    case("long sessions: reverse shell, 3 sessions of 3 h a day", True,
         "30-min active-timeout pieces, 2 days", lambda rng: _sessions(rng, 3, 3, 2), 48,
         RULE_LONG_CONNECTION)  # fmt: skip
    case(
        "long session: one of 3 h a day (benign look-alike)",
        False,
        "a download or meeting a day, 2 days",
        lambda rng: _sessions(rng, 1, 3, 2),
        48,
    )
    case("inbound brute-forcer on :23 every 10 s, both directions exported", False,
         "fixed source port 10647; must not become the internal host's beacon",
         lambda rng: _inbound(rng, 4), 4)  # fmt: skip
    case("inbound scanner probing :443 every 88 min, both directions exported", False,
         "research scanner; must not become the internal host's beacon",
         lambda rng: _scanner_pings(rng, 48), 48)  # fmt: skip
    case("P2P: a torrent client keeping 30 peers on 6881-6889, every 120 s", False,
         "fan-out: one alert per peer would be 30 (counted: any peer alerted)",
         lambda rng: _p2p(rng, 30, 3), 3, peer_prefix="198.18.")  # fmt: skip
    # Rotating destinations (issue 14): scored as (source, /24, port) prefix channels.
    case("CDN rotation: a new IP of one /24 each check-in, 5 min sleep", True,
         "20 % jitter, 6 h (72 check-ins), no IP seen twice in a row",
         lambda rng: _rotating(rng, 300, 6, 254, jitter=0.2), 6,
         peer_prefix="203.0.113.")  # fmt: skip
    case("CDN rotation: a new IP of one /24 each check-in, 1 h sleep", True,
         "10 % jitter, 12 h (12 check-ins)", lambda rng: _rotating(rng, 3600, 12, 254), 12,
         peer_prefix="203.0.113.")  # fmt: skip
    case("CDN rotation: a new IP of one /24 each check-in, 8 check-ins only", True,
         "10 min sleep, 10 % jitter: min_events, as few as the detector scores",
         lambda rng: _rotating(rng, 600, 2, 254, check_ins=8), 2,
         peer_prefix="203.0.113.")  # fmt: skip
    case("DNS round-robin: 4 IPs of one /24, 60 s sleep", True,
         "10 % jitter, 3 h; each IP gets a random quarter of the check-ins",
         lambda rng: _rotating(rng, 60, 3, 4), 3, peer_prefix="203.0.113.")  # fmt: skip
    case("CDN-fronted update service polled by 12 of 18 hosts every 15 min", False,
         "rotating IPs of one /24, 12 h; prefix prevalence must down-rank it",
         lambda rng: _fleet_poll(rng, 12, 12), 12, peer_prefix="203.0.113.",
         src_prefix="10.0.2.")  # fmt: skip
    # Rotating across /24s with one name (issue 14 step 5): the (source, name, port) channel.
    case("CDN rotation across /24s, one SNI: a new edge each check-in, 5 min sleep", True,
         "20 % jitter, 6 h; 200 edges in as many /24s, names in the records (ECS SNI)",
         lambda rng: _edges(rng, 300, 6, jitter=0.2), 6, named=True)  # fmt: skip
    case("CDN rotation across /24s, one SNI: a new edge each check-in, 1 h sleep", True,
         "10 % jitter, 12 h (12 check-ins); names in the records",
         lambda rng: _edges(rng, 3600, 12), 12, named=True)  # fmt: skip
    case("SNI polled by 12 of 18 hosts every 15 min across CDN edges of many /24s", False,
         "one name, rotating edges, 12 h; name prevalence must down-rank it",
         lambda rng: [r for h in range(12) for r in _edges(rng, 900, 12, f"10.0.2.{h}", 0.05)],
         12, src_prefix="10.0.2.", named=True)  # fmt: skip
    results.append(_fast_exporter(config, runs))
    return results


def _fast_exporter(config: Config, runs: int) -> CaseResult:
    """Beacons among browsing while 1 % of the flows come from an exporter 15 min fast."""
    alerted = late = 0
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        rows = sorted(_slow(rng, 60 / 3600, 3) + _browsing(rng, 3, hosts=20))
        fast = rng.random(len(rows)) < 0.01
        fast &= np.array([r[2] != IMPLANT for r in rows])
        skew = 15 * 60_000
        shifted = [
            r._replace(start_ms=r.start_ms + skew, end_ms=r.end_ms + skew) if f else r
            for r, f in zip(rows, fast, strict=True)
        ]
        true = {(r[0] + skew if f else r[0]): r[0] for r, f in zip(rows, fast, strict=True)}
        replayed = _replay(config, shifted, true.get)
        alerted += replayed.hit()
        late += replayed.detector.stats.rejected_by_reason.get("too_late", 0)
    return CaseResult("exporter clock 15 min fast on 1 % of the flows", True, runs, alerted, late,
                      "a 60 s beacon among 20 browsing hosts, 3 h, replayed live")  # fmt: skip
