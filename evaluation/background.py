"""Benign background traffic of an office network, vectorised across hosts.

Each generator appends flows for all hosts at once to a `FlowColumns`. What each one models:

- browsing: the one browsing model (`beaconwatch.simulate.browsing.BROWSING`), sessions of a
  Poisson process that is busy in working hours and quiet at night;
- background DNS to the internal resolvers (Poisson, mean gap 5 min);
- fleet polling: most hosts contact the same update server every 300 s and the same telemetry
  server every 900 s, with +/- 2 % sleep jitter (a benign beacon with high prevalence);
- NTP: a ramp 64 -> 1024 s then steady 1024 s polls, half to a configured well-known server,
  half to four pool servers;
- long sessions (VPN, websockets) that the exporter cuts at its 1800 s active timeout: the same
  5-tuple, records exactly 1800 s apart, each starting where the previous one ended;
- single devices with genuinely periodic cloud check-ins (labelled benign_periodic).

Exporter artefacts (duplicates from two exporters, unidirectional reverse records) are added
afterwards by `exporter_artefacts` over the flows of the hosts behind such exporters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from beaconwatch.domain.dtypes import I64, U32
from beaconwatch.simulate.browsing import BROWSING
from evaluation.truth import FlowColumns, Kind

TCP, UDP = 6, 17
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def ipv4(a: int, b: int, c: int, d: int) -> int:
    return (a << 24) | (b << 16) | (c << 8) | d


HOST_BASE = ipv4(10, 1, 0, 0)
IOT_BASE = ipv4(10, 2, 0, 0)
RESOLVERS = np.array([ipv4(10, 0, 0, 53), ipv4(10, 0, 0, 54)], dtype=np.uint32)
UPDATE_SERVER = ipv4(52, 96, 12, 40)
TELEMETRY_SERVER = ipv4(20, 42, 65, 92)
CONFIGURED_NTP = ipv4(216, 239, 35, 4)  # Google's time service: in the default ntp_servers
IOT_CLOUD = np.array([ipv4(54, 93, 1, 17), ipv4(34, 117, 8, 3), ipv4(18, 195, 40, 9)], np.uint32)
IOT_PERIODS_S = (3600, 3600, 1800)
# First octets of ordinary public destinations (clouds, CDNs); none is private or reserved.
_PUBLIC_FIRST_OCTETS = np.array([13, 23, 31, 34, 35, 44, 52, 54, 64, 104, 140, 142, 151, 157])
_POOL_FIRST_OCTETS = np.array([37, 45, 85, 95, 185, 193, 212])


def hosts_ips(n: int) -> U32:
    return (HOST_BASE + 1 + np.arange(n)).astype(np.uint32)


def public_ips(rng: np.random.Generator, n: int, first_octets: npt.NDArray[np.int64]) -> U32:
    """``n`` distinct public addresses with the given first octets."""
    out: set[int] = set()
    while len(out) < n:
        first = rng.choice(first_octets, n)
        rest = rng.integers(1, 1 << 24, n)
        out.update(((first.astype(np.int64) << 24) | rest).tolist())
    return np.array(sorted(out)[:n], dtype=np.uint32)


def ephemeral(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    return rng.integers(32768, 61000, n)


def _busy(t_ms: I64) -> npt.NDArray[np.bool_]:
    """Working hours: 08:00-18:00 UTC, Monday to Friday (the epoch day 0 was a Thursday)."""
    hour = (t_ms % DAY_MS) // HOUR_MS
    weekday = (t_ms // DAY_MS + 3) % 7  # 0 = Monday
    return (hour >= 8) & (hour < 18) & (weekday < 5)


def _grouped_offsets(gaps: npt.NDArray[np.float64], counts: I64) -> npt.NDArray[np.float64]:
    """Per group, the running sum of ``gaps`` restarted at 0 at each group's first element."""
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    gaps = gaps.copy()
    gaps[first] = 0.0
    cs = np.cumsum(gaps)
    return cs - np.repeat(cs[first], counts)


@dataclass(frozen=True, slots=True)
class Layout:
    hosts: U32
    start_ms: int
    end_ms: int
    web: U32  # benign destination pool, in popularity order
    pool_ntp: U32
    long_session_servers: U32


def browsing(rng: np.random.Generator, lay: Layout, out: FlowColumns) -> None:
    span_s = (lay.end_ms - lay.start_ms) / 1000
    busy_gap_s, quiet_gap_s = 720.0, 3 * 3600.0
    n_hosts = lay.hosts.shape[0]
    n_cand = rng.poisson(span_s / busy_gap_s, n_hosts)
    host_of = np.repeat(np.arange(n_hosts), n_cand)
    t = lay.start_ms + (rng.random(host_of.shape[0]) * span_s * 1000).astype(np.int64)
    keep = _busy(t) | (rng.random(t.shape[0]) < busy_gap_s / quiet_gap_s)
    host_of, t = host_of[keep], t[keep]
    n_sess = t.shape[0]
    m = BROWSING
    n_sites = np.asarray(rng.integers(1, m.max_sites + 1, n_sess), dtype=np.int64)
    popularity = 1.0 / np.arange(1, lay.web.shape[0] + 1)
    sites = rng.choice(lay.web.shape[0], (n_sess, m.max_sites), p=popularity / popularity.sum())
    n_conn = np.asarray(rng.geometric(1 / m.connections_mean, n_sess), dtype=np.int64)
    sess = np.repeat(np.arange(n_sess), n_conn)
    offsets_s = _grouped_offsets(rng.exponential(m.connection_gap_mean_s, sess.shape[0]), n_conn)
    col = (rng.random(sess.shape[0]) * n_sites[sess]).astype(np.int64)
    dst = lay.web[sites[sess, col]]
    start = t[sess] + 50 + (offsets_s * 1000).astype(np.int64)
    size = np.minimum(
        (rng.pareto(m.size_pareto_alpha, sess.shape[0]) + 1) * m.size_scale_bytes,
        m.size_cap_bytes,
    ).astype(np.int64)
    port = np.where(rng.random(sess.shape[0]) < m.https_share, 443, 80)
    n = sess.shape[0]
    out.add(
        start,
        start + rng.integers(*m.duration_ms, n) + size // 20000,
        lay.hosts[host_of[sess]],
        dst,
        ephemeral(rng, n),
        port,
        TCP,
        size,
        Kind.BENIGN,
        "browsing",
    )
    # One lookup per site of the session, just before the session starts.
    q_sess = np.repeat(np.arange(n_sess), n_sites)
    q_host = host_of[q_sess]
    q_start = t[q_sess] + rng.integers(0, 40, q_sess.shape[0])
    k = q_sess.shape[0]
    out.add(
        q_start,
        q_start + rng.integers(*m.dns_duration_ms, k),
        lay.hosts[q_host],
        RESOLVERS[q_host % 2],
        ephemeral(rng, k),
        53,
        UDP,
        rng.integers(*m.dns_bytes, k),
        Kind.BENIGN,
        "dns",
    )


def background_dns(rng: np.random.Generator, lay: Layout, out: FlowColumns) -> None:
    span_ms = lay.end_ms - lay.start_ms
    counts = rng.poisson(span_ms / 300_000, lay.hosts.shape[0])
    host_of = np.repeat(np.arange(lay.hosts.shape[0]), counts)
    n = host_of.shape[0]
    start = lay.start_ms + (rng.random(n) * span_ms).astype(np.int64)
    out.add(
        start,
        start + rng.integers(1, 30, n),
        lay.hosts[host_of],
        RESOLVERS[host_of % 2],
        ephemeral(rng, n),
        53,
        UDP,
        rng.integers(60, 120, n),
        Kind.BENIGN,
        "dns",
    )


def _sleep_loop_ms(
    rng: np.random.Generator, n_hosts: int, span_ms: int, period_s: float, jitter: float
) -> tuple[I64, I64]:
    """(host index, time offset) of n_hosts agents sleeping ``period_s`` +/- ``jitter``."""
    n = int(span_ms / 1000 / (period_s * (1 - jitter))) + 2
    sleep = period_s * (1 + jitter * (2 * rng.random((n_hosts, n)) - 1))
    sleep += rng.exponential(0.05, (n_hosts, n))
    t_s = rng.uniform(0, period_s, (n_hosts, 1)) + np.cumsum(sleep, axis=1) - sleep[:, :1]
    t_ms = (t_s * 1000).astype(np.int64)
    host, k = np.nonzero(t_ms < span_ms)
    return host, t_ms[host, k]


def fleet_polling(rng: np.random.Generator, lay: Layout, out: FlowColumns) -> None:
    span_ms = lay.end_ms - lay.start_ms
    for server, period_s, share, size in (
        (UPDATE_SERVER, 300.0, 0.9, 1450),
        (TELEMETRY_SERVER, 900.0, 0.8, 3900),
    ):
        members = np.flatnonzero(rng.random(lay.hosts.shape[0]) < share)
        host, t = _sleep_loop_ms(rng, members.shape[0], span_ms, period_s, 0.02)
        n = t.shape[0]
        start = lay.start_ms + t
        out.add(
            start,
            start + rng.integers(100, 900, n),
            lay.hosts[members[host]],
            server,
            ephemeral(rng, n),
            443,
            TCP,
            size + rng.integers(-30, 30, n),
            Kind.BENIGN,
            "fleet_polling",
        )


def ntp(rng: np.random.Generator, lay: Layout, out: FlowColumns) -> None:
    """ntpd/chrony-like polling: 64 s doubling to 1024 s once the clock is stable."""
    span_s = (lay.end_ms - lay.start_ms) / 1000
    ramp = np.repeat([64.0, 128.0, 256.0, 512.0], 4)
    n_steady = int(span_s / 1024) + 2
    intervals = np.concatenate((ramp, np.full(n_steady, 1024.0)))
    n_hosts = lay.hosts.shape[0]
    configured = np.asarray(rng.random(n_hosts) < 0.5, dtype=np.bool_)
    fixed_port = np.asarray(
        rng.random(n_hosts) < 0.5, dtype=np.bool_
    )  # ntpd keeps source port 123; chrony does not
    for h in range(n_hosts):
        servers = (
            np.array([CONFIGURED_NTP], dtype=np.uint32)
            if configured[h]
            else rng.choice(lay.pool_ntp, 4, replace=False)
        )
        for server in servers:
            gaps = intervals + rng.uniform(0, 2.0, intervals.shape[0])
            t_s = rng.uniform(0, 64) + np.concatenate(([0.0], np.cumsum(gaps[:-1])))
            t_s = t_s[t_s < span_s]
            n = t_s.shape[0]
            start = lay.start_ms + (t_s * 1000).astype(np.int64)
            sport = 123 if fixed_port[h] else ephemeral(rng, n)
            out.add(
                start,
                start + rng.integers(5, 60, n),
                lay.hosts[h],
                server,
                sport,
                123,
                UDP,
                76,
                Kind.BENIGN,
                "ntp",
            )


def long_sessions(
    rng: np.random.Generator, lay: Layout, out: FlowColumns, timeout_s: int = 1800
) -> None:
    """Long-lived sessions cut by the exporter's active timeout into back-to-back records."""
    day_ms = DAY_MS
    n_days = max(1, (lay.end_ms - lay.start_ms) // day_ms)
    for h in np.flatnonzero(rng.random(lay.hosts.shape[0]) < 0.25):
        for day in range(int(n_days)):
            s = lay.start_ms + day * day_ms + int(rng.integers(0, day_ms // 2))
            duration_ms = int(rng.uniform(2, 14) * HOUR_MS)
            starts = s + np.arange(0, duration_ms, timeout_s * 1000, dtype=np.int64)
            starts = starts[starts < lay.end_ms]
            ends = np.minimum(starts + timeout_s * 1000, s + duration_ms)
            n = starts.shape[0]
            size = (rng.pareto(1.5, n) + 1) * 2e5
            out.add(
                starts,
                ends,
                lay.hosts[h],
                rng.choice(lay.long_session_servers),
                int(ephemeral(rng, 1)[0]),
                443,
                TCP,
                size,
                Kind.BENIGN,
                "active_timeout_split",
            )


def iot_devices(rng: np.random.Generator, lay: Layout, out: FlowColumns) -> int:
    """Single devices polling their vendor cloud on a clock: truly periodic, truly benign."""
    span_ms = lay.end_ms - lay.start_ms
    for i, period_s in enumerate(IOT_PERIODS_S):
        k = np.arange(span_ms // (period_s * 1000) + 1)
        t = lay.start_ms + int(rng.integers(0, period_s * 1000)) + k * period_s * 1000
        t = t + rng.integers(0, 500, k.shape[0])  # scheduler wake-up latency
        t = t[t < lay.end_ms]
        n = t.shape[0]
        out.add(
            t,
            t + rng.integers(200, 400, n),
            IOT_BASE + 1 + i,
            IOT_CLOUD[i],
            ephemeral(rng, n),
            443,
            TCP,
            620 + rng.integers(-4, 5, n),
            Kind.BENIGN_PERIODIC,
            "iot_periodic",
        )
    return len(IOT_PERIODS_S)


def exporter_artefacts(
    rng: np.random.Generator,
    cols: dict[str, npt.NDArray[Any]],
    duplicated_hosts: U32,
    reverse_hosts: U32,
    out: FlowColumns,
) -> None:
    """Second-exporter duplicates and v5/v9-style reverse-direction records of some hosts.

    ``cols`` are the already generated flows (from `FlowColumns.concat`); the artefacts are
    appended to ``out`` with the labels of the flows they copy (reverse records of benign flows
    are benign pairs of their own: external -> internal).
    """
    src = cols["src"]
    dup = np.flatnonzero(np.isin(src, duplicated_hosts))
    if dup.size:
        d = rng.integers(0, 40, dup.size)
        for kind in np.unique(cols["kind"][dup]):
            sel = cols["kind"][dup] == kind
            i = dup[sel]
            out.add(
                cols["start_ms"][i] + d[sel],
                cols["end_ms"][i] + d[sel],
                src[i],
                cols["dst"][i],
                cols["src_port"][i],
                cols["dst_port"][i],
                cols["proto"][i],
                cols["nbytes"][i],
                Kind(int(kind)),
                "exporter_duplicate",
                cols["beacon"][i],
            )
    rev = np.flatnonzero(np.isin(src, reverse_hosts) & (cols["beacon"] < 0))
    if rev.size:
        d = rng.integers(1, 30, rev.size)
        # Replies as they look: an NTP reply is as long as its request, other UDP replies
        # (DNS) a few times the query, TCP downloads heavy-tailed.
        forward = cols["nbytes"][rev].astype(np.float64)
        udp = cols["proto"][rev] == UDP
        ntp_reply = udp & (cols["dst_port"][rev] == 123)
        download = np.minimum((rng.pareto(1.2, rev.size) + 1) * 1500, 5e8)
        size = np.where(
            ntp_reply, forward, np.where(udp, forward * rng.uniform(1, 4, rev.size), download)
        )
        start = cols["start_ms"][rev] + d
        out.add(
            start,
            np.maximum(cols["end_ms"][rev], start),
            cols["dst"][rev],
            src[rev],
            cols["dst_port"][rev],
            cols["src_port"][rev],
            cols["proto"][rev],
            size,
            Kind.BENIGN,
            "reverse_record",
        )
