"""A small pcap of synthetic traffic with planted beacons, deterministic from a seed.

The capture is what softflowd reads (`softflowd -r`), so every connection is real packets:
each beacon check-in is a whole TCP connection (handshake, request, response, FIN both ways)
from a new ephemeral source port. Benign traffic that must not alert: browsing bursts with
heavy-tailed gaps, DNS over UDP/53 to one resolver at random times, a few long TCP sessions
with irregular activity, and single UDP datagrams to random hosts. One beacon, a browser and
their DNS speak IPv6 (ULA inside, documentation prefix outside), from their own random stream,
so the IPv4 traffic of a seed is the same with or without them.

    python -m tests.e2e.pcap_traffic out.pcap [--seed 1] [--start EPOCH]

prints the manifest of planted beacons as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapWriter

DEFAULT_START_EPOCH = 1_764_547_200  # 2025-12-01 00:00:00 UTC
DEFAULT_DURATION_S = 440.0  # ~7 min of event time
CLIENT_MAC = "02:00:00:00:00:01"
GATEWAY_MAC = "02:00:00:00:00:fe"
RESOLVER = "192.0.2.53"  # the (external) DNS resolver every IPv4 host uses
RESOLVER_V6 = "2001:db8:53::53"
INTERNAL_PREFIXES = ("10.", "192.168.", "fd")  # RFC 1918 and ULA: the capture's inside


@dataclass(frozen=True)
class PlantedBeacon:
    """One planted beacon: what the e2e test expects an alert for."""

    src: str
    dst: str
    dport: int
    proto: int  # IANA number (6 = TCP)
    period_s: float  # the sleep; the detector reports it as period_s
    jitter: str  # subtractive | symmetric | additive
    jitter_fraction: float
    check_ins: int  # connections written into the pcap
    missed: int = 0  # check-ins skipped on purpose
    times: tuple[float, ...] = ()  # epoch seconds of the check-ins written (connection starts)
    beats: tuple[int, ...] = ()  # sleeps between consecutive check-ins (2 = one missed)

    def mean_single_interval(self, start: float, end: float) -> float:
        """Mean interval between consecutive check-ins one sleep apart, within [start, end]:
        the period a detector should report for that window."""
        singles = [
            b - a
            for (a, b), k in zip(itertools.pairwise(self.times), self.beats, strict=True)
            if k == 1 and start <= a and b <= end
        ]
        return sum(singles) / len(singles)


@dataclass
class Traffic:
    """The generated capture: packets (time-ordered once written) and the manifest."""

    start_epoch: float
    duration_s: float
    beacons: list[PlantedBeacon] = field(default_factory=list)
    packets: list[Packet] = field(default_factory=list)
    connections: int = 0  # TCP connections and UDP exchanges written

    @property
    def end_epoch(self) -> float:
        return self.start_epoch + self.duration_s

    def manifest(self) -> list[dict[str, object]]:
        return [asdict(b) for b in self.beacons]


class _Builder:
    def __init__(self, rng: random.Random, start_epoch: float) -> None:
        self.rng = rng
        self.start = start_epoch
        self.packets: list[Packet] = []
        self.connections = 0
        self._next_port: dict[str, int] = {}

    def ephemeral_port(self, host: str) -> int:
        """A new source port per connection and host (Linux-like range, random start)."""
        port = self._next_port.get(host, self.rng.randint(32768, 40000))
        self._next_port[host] = port + self.rng.randint(1, 7)
        return port

    def _ip(self, t: float, src: str, dst: str, l4: Packet, payload: bytes = b"") -> None:
        outbound = src.startswith(INTERNAL_PREFIXES)
        ether = Ether(
            src=CLIENT_MAC if outbound else GATEWAY_MAC, dst=GATEWAY_MAC if outbound else CLIENT_MAC
        )
        ttl = 64 if outbound else 52
        ip = IPv6(src=src, dst=dst, hlim=ttl) if ":" in src else IP(src=src, dst=dst, ttl=ttl)
        pkt = ether / ip / l4
        if payload:
            pkt = pkt / Raw(payload)
        pkt.time = round(self.start + t, 6)
        self.packets.append(pkt)

    def tcp_connection(
        self, t: float, src: str, dst: str, dport: int, request: int, response: int,
        rtt: float = 0.03,
    ) -> None:  # fmt: skip
        """A whole TCP connection at offset ``t``: 3-way handshake, one request, a response
        in MSS-sized segments, FIN from the client, FIN from the server, last ACK."""
        sport = self.ephemeral_port(src)
        c_seq, s_seq = self.rng.getrandbits(32), self.rng.getrandbits(32)
        half = rtt / 2

        def c2s(at: float, flags: str, size: int = 0) -> None:
            nonlocal c_seq
            seg = TCP(sport=sport, dport=dport, flags=flags, seq=c_seq, ack=s_seq, window=64240)
            self._ip(t + at, src, dst, seg, self._payload(size))
            c_seq = (c_seq + size + (1 if "S" in flags or "F" in flags else 0)) % 2**32

        def s2c(at: float, flags: str, size: int = 0) -> None:
            nonlocal s_seq
            seg = TCP(sport=dport, dport=sport, flags=flags, seq=s_seq, ack=c_seq, window=65160)
            self._ip(t + at, dst, src, seg, self._payload(size))
            s_seq = (s_seq + size + (1 if "S" in flags or "F" in flags else 0)) % 2**32

        c2s(0.0, "S")
        s2c(half, "SA")
        c2s(rtt, "A")
        c2s(rtt + 0.001, "PA", request)
        at = rtt + 0.001 + rtt + 0.005
        remaining = response
        while remaining > 0:
            chunk = min(remaining, 1448)
            s2c(at, "PA", chunk)
            remaining -= chunk
            at += 0.0005
        c2s(at + half, "FA")
        s2c(at + rtt, "FA")
        c2s(at + rtt + half, "A")
        self.connections += 1

    def udp_exchange(
        self, t: float, src: str, dst: str, dport: int, request: int, response: int | None,
        rtt: float = 0.02,
    ) -> None:  # fmt: skip
        sport = self.ephemeral_port(src)
        self._ip(t, src, dst, UDP(sport=sport, dport=dport), self._payload(request))
        if response is not None:
            self._ip(t + rtt, dst, src, UDP(sport=dport, dport=sport), self._payload(response))
        self.connections += 1

    def _payload(self, size: int) -> bytes:
        return self.rng.randbytes(size) if size else b""


def _jittered(rng: random.Random, shape: str, period: float, j: float) -> Callable[[], float]:
    if shape == "subtractive":  # Cobalt Strike: uniform in [S(1-j), S]
        return lambda: period * (1 - j * rng.random())
    if shape == "symmetric":  # Empire/Havoc: S +/- j
        return lambda: period * (1 + j * (2 * rng.random() - 1))
    if shape == "additive":  # Sliver: S + U[0, J)
        return lambda: period + period * j * rng.random()
    raise ValueError(f"unknown jitter shape {shape!r}")


# (src, dst, dport, period_s, shape, jitter fraction, check-ins to skip)
_BEACONS: tuple[tuple[str, str, int, float, str, float, int], ...] = (
    ("10.20.1.11", "198.51.100.23", 443, 5.0, "subtractive", 0.3, 0),
    ("10.20.1.12", "203.0.113.45", 8443, 10.0, "symmetric", 0.2, 0),
    ("192.168.7.20", "198.51.100.77", 80, 20.0, "additive", 0.2, 0),
    ("10.20.3.5", "203.0.113.200", 443, 10.0, "subtractive", 0.2, 3),
)

# IPv6, generated from a stream of their own (see `generate`).
_BEACONS_V6: tuple[tuple[str, str, int, float, str, float, int], ...] = (
    ("fd00:20::15", "2001:db8:40::7", 443, 10.0, "symmetric", 0.25, 1),
)
_BROWSER_V6 = "fd00:20::30"
_WEB_SITES_V6 = tuple(f"2001:db8:80::{n}" for n in range(1, 6))

_BROWSERS = ("10.20.1.30", "192.168.7.21")
_WEB_SITES = tuple(f"198.51.100.{n}" for n in (101, 102, 103, 104, 105)) + tuple(
    f"203.0.113.{n}" for n in (11, 12, 13, 14, 15, 16)
)


def generate(
    seed: int = 1,
    start_epoch: float = DEFAULT_START_EPOCH,
    duration_s: float = DEFAULT_DURATION_S,
) -> Traffic:
    """Build the traffic (not yet written). Same seed and start: the same packets."""
    rng = random.Random(seed)
    b = _Builder(rng, start_epoch)
    traffic = Traffic(start_epoch=start_epoch, duration_s=duration_s)

    # Planted beacons: a TCP connection per check-in, request/response sizes nearly constant.
    traffic.beacons += [_plant(b, rng, start_epoch, duration_s, *spec) for spec in _BEACONS]

    # Browsing: sessions at heavy-tailed (Pareto) gaps; each a burst of connections to a few
    # sites within a second or two.
    for host in _BROWSERS:
        _browse(b, rng, host, _WEB_SITES, duration_s)

    # DNS: every host asks one resolver at random (exponential) times.
    for host in (*_BROWSERS, "10.20.1.11", "10.20.1.12"):
        t = rng.expovariate(1 / 15.0)
        while t < duration_s:
            b.udp_exchange(t, host, RESOLVER, 53, rng.randint(30, 60), rng.randint(60, 200))
            t += rng.expovariate(1 / 15.0)

    # Long TCP sessions (ssh-like, irregular activity over the whole capture).
    for host, server in (("10.20.1.40", "203.0.113.22"), ("192.168.7.41", "198.51.100.50")):
        _long_session(b, rng, host, server, 22, duration_s)

    # Single UDP datagrams to random hosts (no answer), e.g. a game or a scan.
    for _ in range(25):
        dst = f"{rng.choice(('198.51.100', '203.0.113'))}.{rng.randint(150, 250)}"
        b.udp_exchange(
            rng.uniform(0, duration_s), "10.20.1.31", dst, rng.randint(1024, 65000), 40, None
        )

    # IPv6: a beacon, a browser, and both hosts' DNS, from their own random stream.
    rng6 = random.Random(f"{seed}-ipv6")
    b6 = _Builder(rng6, start_epoch)
    traffic.beacons += [_plant(b6, rng6, start_epoch, duration_s, *spec) for spec in _BEACONS_V6]
    _browse(b6, rng6, _BROWSER_V6, _WEB_SITES_V6, duration_s)
    for host in (_BROWSER_V6, *(spec[0] for spec in _BEACONS_V6)):
        t = rng6.expovariate(1 / 15.0)
        while t < duration_s:
            b6.udp_exchange(t, host, RESOLVER_V6, 53, rng6.randint(30, 60), rng6.randint(60, 200))
            t += rng6.expovariate(1 / 15.0)

    traffic.packets = sorted(b.packets + b6.packets, key=lambda p: float(p.time))
    traffic.connections = b.connections + b6.connections
    return traffic


def _plant(
    b: _Builder, rng: random.Random, start_epoch: float, duration_s: float,
    src: str, dst: str, dport: int, period: float, shape: str, j: float, skip: int,
) -> PlantedBeacon:  # fmt: skip
    """Write one beacon's check-ins (a TCP connection each, request/response sizes nearly
    constant, ``skip`` of them left out) and return its manifest entry."""
    gap = _jittered(rng, shape, period, j)
    t = rng.uniform(0.5, 3.0)
    times: list[float] = []
    while t < duration_s - 2.0:
        times.append(t)
        t += gap()
    skipped = set(rng.sample(range(3, len(times) - 3), skip)) if skip else set()
    kept_index = [i for i in range(len(times)) if i not in skipped]
    kept = [times[i] for i in kept_index]
    request, response = rng.randint(180, 400), rng.randint(300, 900)
    for x in kept:
        b.tcp_connection(
            x, src, dst, dport, request + rng.randint(0, 16), response + rng.randint(0, 32)
        )
    return PlantedBeacon(
        src, dst, dport, 6, period, shape, j, len(kept), len(skipped),
        times=tuple(start_epoch + x for x in kept),
        beats=tuple(b - a for a, b in itertools.pairwise(kept_index)),
    )  # fmt: skip


def _browse(
    b: _Builder, rng: random.Random, host: str, sites: tuple[str, ...], duration_s: float
) -> None:
    """Browsing sessions at heavy-tailed (Pareto) gaps, each a burst of connections to a few
    sites within a second or two."""
    t = rng.uniform(0.0, 20.0)
    while t < duration_s - 5.0:
        chosen = rng.sample(sites, rng.randint(1, 3))
        for _ in range(rng.randint(2, 5)):
            b.tcp_connection(
                t + rng.uniform(0.0, 1.8), host, rng.choice(chosen), 443,
                rng.randint(300, 1200), rng.randint(500, 3000), rtt=rng.uniform(0.01, 0.08),
            )  # fmt: skip
        t += min(6.0 * rng.paretovariate(1.2), 150.0)


def _long_session(
    b: _Builder, rng: random.Random, src: str, dst: str, dport: int, duration_s: float
) -> None:
    """One TCP connection open for the whole capture, packets at irregular times."""
    sport = b.ephemeral_port(src)
    t = rng.uniform(0.0, 2.0)
    b._ip(t, src, dst, TCP(sport=sport, dport=dport, flags="S", seq=1))
    b._ip(t + 0.02, dst, src, TCP(sport=dport, dport=sport, flags="SA", seq=1, ack=2))
    b._ip(t + 0.04, src, dst, TCP(sport=sport, dport=dport, flags="A", seq=2, ack=2))
    seq_c, seq_s = 2, 2
    t += 0.05
    while t < duration_s - 3.0:
        size = rng.randint(36, 300)
        b._ip(t, src, dst, TCP(sport=sport, dport=dport, flags="PA", seq=seq_c, ack=seq_s),
              b._payload(size))  # fmt: skip
        seq_c += size
        reply = rng.randint(36, 1200)
        b._ip(t + 0.02, dst, src, TCP(sport=dport, dport=sport, flags="PA", seq=seq_s, ack=seq_c),
              b._payload(reply))  # fmt: skip
        seq_s += reply
        t += min(rng.expovariate(1 / 8.0) + 0.2 * rng.paretovariate(1.1), 60.0)
    end = duration_s - 2.0
    b._ip(end, src, dst, TCP(sport=sport, dport=dport, flags="FA", seq=seq_c, ack=seq_s))
    b._ip(end + 0.02, dst, src, TCP(sport=dport, dport=sport, flags="FA", seq=seq_s, ack=seq_c + 1))
    b._ip(end + 0.04, src, dst, TCP(sport=sport, dport=dport, flags="A", seq=seq_c + 1))
    b.connections += 1


def write_pcap(
    path: Path,
    seed: int = 1,
    start_epoch: float = DEFAULT_START_EPOCH,
    duration_s: float = DEFAULT_DURATION_S,
) -> Traffic:
    """Write the capture to ``path`` (classic pcap, Ethernet, microseconds); the manifest."""
    traffic = generate(seed, start_epoch, duration_s)
    with PcapWriter(str(path), linktype=1, sync=False) as writer:
        for pkt in traffic.packets:
            writer.write(pkt)
    return traffic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pcap", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=float, default=DEFAULT_START_EPOCH)
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION_S)
    args = parser.parse_args()
    traffic = write_pcap(args.pcap, args.seed, args.start, args.duration)
    print(json.dumps({"packets": len(traffic.packets), "connections": traffic.connections,
                      "beacons": traffic.manifest()}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
