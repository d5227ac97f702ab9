"""More hard cases of real traffic (issue "Real traffic", step 9): benign look-alikes that are
periodic for good reasons, packet-sampled export, and an inbound SYN scan under one-direction
export. They run like `hard_cases` (planted among Poisson browsing, replayed per seed with the
given configuration) but their flows carry what these cases turn on: packet and byte counts,
the sampling rate, and the initiator the decoders take from TCP flags (`decode.initiator`).

Besides the runs that alerted on the planted pair, each case counts every alert of its runs
(any pair) against the host-days replayed, for the false-alert rate of the benign cases.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from beaconwatch.alerting.alert import Alert
from beaconwatch.config import Config
from beaconwatch.core.detector import Detector
from beaconwatch.decode.common.initiator import TCP_ACK, TCP_SYN
from beaconwatch.scoring.periodicity import Shape
from beaconwatch.simulate.batch import to_batch
from beaconwatch.simulate.browsing import poisson_browsing
from beaconwatch.simulate.implant import sleeps_s
from beaconwatch.simulate.model import SimFlow
from evaluation.hard_cases import HOUR_MS, IMPLANT, PEER, T0_MS, CaseResult

TCP, UDP = "TCP", "UDP"
TCP_PSH_ACK = 0x18
TCP_FIN_ACK = 0x11


def _tcp(start: int, src: str, dst: str, sport: int, dport: int, nbytes: int, packets: int,
         duration_ms: int = 300) -> SimFlow:  # fmt: skip
    """A complete TCP connection in one record (as softflowd exports it: flags 0x1b)."""
    flags = TCP_SYN | TCP_ACK | TCP_PSH_ACK | TCP_FIN_ACK
    return SimFlow(start, start + duration_ms, src, dst, sport, dport, TCP, nbytes, packets, flags)


def browsing(rng: np.random.Generator, hours: float, hosts: int = 6) -> list[SimFlow]:
    """The hard cases' Poisson browsing (`simulate.browsing.poisson_browsing`), each connection
    a complete one as softflowd exports it: packets and flags."""
    flags = TCP_SYN | TCP_ACK | TCP_PSH_ACK | TCP_FIN_ACK
    return [
        f._replace(packets=2 + f.bytes // 1200, tcp_flags=flags)
        for f in poisson_browsing(rng, T0_MS, hours, hosts, size_first=True)
    ]


def mail_polling(
    rng: np.random.Generator, hosts: int, period_s: float, hours: float
) -> list[SimFlow]:
    """``hosts`` mail clients (the implant's host among them) each polling one IMAPS/POP3S
    server every ``period_s``: a new TLS connection, a login, a short exchange."""
    out: list[SimFlow] = []
    for h in range(hosts):
        src = IMPLANT if h == 0 else f"10.0.2.{h}"
        port = 993 if h % 3 else 995
        t = T0_MS + rng.uniform(0, period_s * 1000)
        while t < T0_MS + hours * HOUR_MS:
            nbytes = int(rng.normal(6_500, 400))
            out.append(_tcp(int(t), src, PEER, int(rng.integers(32768, 61000)), port, nbytes, 18,
                            int(rng.uniform(150, 600))))  # fmt: skip
            t += period_s * 1000 * rng.uniform(0.99, 1.01)
    return out


def video_segments(rng: np.random.Generator, videos: int, hours: float) -> list[SimFlow]:
    """HLS/DASH playback: ``videos`` videos at random times, each 5-60 min long, fetching one
    segment every 2-10 s (the segment length of that video) from one CDN edge, each segment
    its own connection; sizes follow the adaptive bitrate."""
    out: list[SimFlow] = []
    for _ in range(videos):
        seg_s = float(rng.choice([2.0, 4.0, 6.0, 10.0]))
        t = T0_MS + rng.uniform(0, hours * HOUR_MS * 0.8)
        stop = t + rng.uniform(5, 60) * 60_000
        bitrate_bps = rng.choice([1.5e6, 3e6, 6e6])
        while t < min(stop, T0_MS + hours * HOUR_MS):
            nbytes = int(bitrate_bps / 8 * seg_s * rng.uniform(0.7, 1.3))
            out.append(_tcp(int(t), IMPLANT, PEER, int(rng.integers(32768, 61000)), 443, nbytes,
                            nbytes // 1400 + 4, int(rng.uniform(80, 900))))  # fmt: skip
            t += seg_s * 1000 * rng.uniform(0.95, 1.05)  # download time moves the next request
    return out


def dns_retries(rng: np.random.Generator, hours: float, same_socket: bool) -> list[SimFlow]:
    """A host whose resolver does not answer: lookups as applications need them (Poisson,
    mean 40 s), each tried 1-3 times 5 s apart (glibc: 5 s timeout, 2 attempts, and the
    application's own retry). ``same_socket`` (glibc's default): the tries of a lookup leave
    from one source port, so the exporter folds them into one flow; else (systemd-resolved,
    ``single-request-reopen``) each try is a flow of its own."""
    out: list[SimFlow] = []
    t = T0_MS + rng.exponential(40_000)
    while t < T0_MS + hours * HOUR_MS:
        tries = int(rng.integers(1, 4))
        port = int(rng.integers(32768, 61000))
        size = int(rng.integers(60, 90))
        if same_socket:
            out.append(SimFlow(int(t), int(t) + 5_000 * (tries - 1), IMPLANT, PEER, port, 53, UDP,
                            size * tries, tries))  # fmt: skip
        for k in range(0 if same_socket else tries):
            start = int(t) + 5_000 * k
            out.append(SimFlow(start, start, IMPLANT, PEER, int(rng.integers(32768, 61000)), 53,
                            UDP, size, 1))  # fmt: skip
        t += rng.exponential(40_000)
    return out


def beacon(rng: np.random.Generator, period_s: float, hours: float, packets: int = 12
           ) -> list[SimFlow]:  # fmt: skip
    """An HTTPS beacon: a connection of ``packets`` packets every ``period_s`` +/- 10 % (12: a
    TLS handshake and an empty answer; more when tasks or output are carried)."""
    out: list[SimFlow] = []
    t = T0_MS + rng.uniform(0, period_s * 1000)
    while t < T0_MS + hours * HOUR_MS:
        nbytes = 1_400 + int(rng.integers(0, 60)) + (packets - 12) * 1_000
        out.append(_tcp(int(t), IMPLANT, PEER, int(rng.integers(32768, 61000)), 443, nbytes,
                        packets))  # fmt: skip
        t += sleeps_s(Shape.SYMMETRIC, period_s * 1000, 0.1, rng.random())
    return out


def packet_sampled(rng: np.random.Generator, flows: list[SimFlow], rate: int) -> list[SimFlow]:
    """What a 1:``rate`` packet-sampling exporter reports: each packet kept with probability
    1/rate; a flow none of whose packets was kept is not exported at all; the record holds
    the kept packets' counts (sampling_rate says by how much to scale them) and flags (a
    connection's first packet is its SYN, the rest carry ACK)."""
    out: list[SimFlow] = []
    for f in flows:
        kept = rng.random(f.packets) < 1 / rate
        n = int(kept.sum())
        if not n:
            continue
        flags = 0
        if f.proto == TCP:
            flags = (TCP_SYN if kept[0] else 0) | (TCP_PSH_ACK if kept[1:].any() else 0)
        size = max(1, f.bytes // f.packets)
        out.append(f._replace(bytes=size * n, packets=n, tcp_flags=flags, sampling_rate=rate))
    return out


def syn_scan(rng: np.random.Generator, hours: float, period_s: float, flags: int) -> list[SimFlow]:
    """A scanner re-probing two internal hosts (the implant's one of them) on a high port
    every ``period_s`` from one fixed source port (masscan ``--source-port``), seen by an
    exporter of one direction only (inbound): one SYN per probe, nothing back. Two hosts, so
    that prevalence (many internal hosts "contacting" one address) cannot be what holds it
    down. ``flags`` 0: an exporter that does not send TCP flags."""
    out: list[SimFlow] = []
    for dst in (IMPLANT, "10.0.3.1"):
        t = T0_MS + rng.uniform(0, period_s * 1000)
        while t < T0_MS + hours * HOUR_MS:
            out.append(SimFlow(int(t), int(t), PEER, dst, 40_000, 50_050, TCP, 44, 1, flags))
            t += period_s * 1000 * rng.uniform(0.98, 1.02)
    return out


def replay(config: Config, flows: list[SimFlow]) -> list[Alert]:
    """``flows`` in start order, in batches of 200; the wall clock a second past each batch."""
    now = [0]
    det = Detector(config, wall_clock_ms=lambda: now[0])
    alerts: list[Alert] = []
    flows = sorted(flows, key=lambda f: (f.start_ms, f.src_ip, f.src_port))
    for i in range(0, len(flows), 200):
        batch = flows[i : i + 200]
        now[0] = max(f.start_ms for f in batch) + 1_000
        alerts += det.process(to_batch(batch)).alerts
    return alerts


Make = Callable[[np.random.Generator], list[SimFlow]]


def run_case(config: Config, runs: int, name: str, malicious: bool, what: str, make: Make,
             hours: float, sample_rate: int = 1) -> CaseResult:  # fmt: skip
    """Replay ``make``'s flows among browsing once per seed. A run counts as alerted when an
    alert goes to the planted destination (PEER, from any host); every alert of the run,
    any pair (for C2 cases: any but the planted one's), is counted against the run's host-days
    (internal hosts x hours)."""
    alerted = alerts_total = 0
    host_days = 0.0
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        flows = make(rng) + browsing(rng, hours)
        hosts = {f.src_ip for f in flows if f.src_ip.startswith("10.")}
        hosts |= {f.dst_ip for f in flows if f.dst_ip.startswith("10.")}
        host_days += len(hosts) * hours / 24
        if sample_rate > 1:
            flows = packet_sampled(rng, flows, sample_rate)
        alerts = replay(config, flows)
        alerted += any(a.dst_ip == PEER for a in alerts)
        # An alert is a new series; its updates (period or score changed) are not counted.
        new = [a for a in alerts if a.lifecycle == "new"]
        alerts_total += sum(not malicious or a.dst_ip != PEER for a in new)
    return CaseResult(name, malicious, runs, alerted, 0, what, alerts_total, host_days)


def evaluate_traffic_cases(config: Config, runs: int) -> list[CaseResult]:
    def case(name: str, malicious: bool, what: str, make: Make, hours: float,
             sample_rate: int = 1) -> CaseResult:  # fmt: skip
        return run_case(config, runs, name, malicious, what, make, hours, sample_rate)

    return [
        case("mail polling: 20 hosts' IMAP/POP clients, one server, every 5 min", False,
             "new TLS connection per poll, 8 h; prevalence should hold it down",
             lambda rng: mail_polling(rng, 20, 300, 8), 8),
        case("video segments: HLS/DASH, one every 2-10 s for 5-60 min", False,
             "3 videos in 8 h, each segment its own connection to one CDN edge",
             lambda rng: video_segments(rng, 3, 8), 8),
        case("DNS retries, tries on one socket (glibc): one flow per lookup", False,
             "Poisson lookups (mean 40 s) to a silent resolver, 1-3 tries 5 s apart, 8 h",
             lambda rng: dns_retries(rng, 8, same_socket=True), 8),
        case("DNS retries, a fresh source port per try: one flow per try", False,
             "the same lookups, each try its own UDP/53 flow (systemd-resolved)",
             lambda rng: dns_retries(rng, 8, same_socket=False), 8),
        case("inbound SYN scan of :50050 every 5 min, one-direction export, TCP flags", False,
             "fixed source port 40000, 2 internal hosts, 8 h; SYN flags: initiator known",
             lambda rng: syn_scan(rng, 8, 300, TCP_SYN), 8),
        case("inbound SYN scan of :50050 every 5 min, one-direction export, no flags", False,
             "the same scan from an exporter without TCP flags: high ports say nothing",
             lambda rng: syn_scan(rng, 8, 300, 0), 8),
        case("packet sampling 1:100: HTTPS beacon every 60 s", True,
             "12 packets per check-in: ~11 % of check-ins exported at all, 24 h",
             lambda rng: beacon(rng, 60, 24), 24, sample_rate=100),
        case("packet sampling 1:100: HTTPS beacon every 300 s", True,
             "~11 % of 288 check-ins exported (~33), 24 h",
             lambda rng: beacon(rng, 300, 24), 24, sample_rate=100),
        case("packet sampling 1:100: HTTPS beacon every 60 s, 40 packets a check-in", True,
             "~33 % of 1,440 check-ins exported, 24 h",
             lambda rng: beacon(rng, 60, 24, packets=40), 24, sample_rate=100),
        case("packet sampling 1:10: HTTPS beacon every 300 s", True,
             "~72 % of 288 check-ins exported, 24 h",
             lambda rng: beacon(rng, 300, 24), 24, sample_rate=10),
        case("packet sampling 1:100: mail polling, 20 hosts, one server, every 5 min", False,
             "benign, 8 h: the lattice test finds the polls' period; prevalence holds them",
             lambda rng: mail_polling(rng, 20, 300, 8), 8, sample_rate=100),
        case("packet sampling 1:100: video segments, one every 2-10 s for 5-60 min", False,
             "benign, 8 h: sampled bytes times the rate still show a bulk transfer",
             lambda rng: video_segments(rng, 3, 8), 8, sample_rate=100),
        case("packet sampling 1:10: DNS retries, a fresh source port per try", False,
             "benign, 8 h: Poisson lookups thinned to 10 %: no lattice",
             lambda rng: dns_retries(rng, 8, same_socket=False), 8, sample_rate=10),
    ]  # fmt: skip
