"""The traffic simulator: benign hosts plus planted beacons, as goflow2 JSON records.

Deterministic from ``SimulationSpec.seed``: the same spec always yields the same records in the
same order. Records come out in chunks of event time, sorted by flow start with a little
out-of-order jitter (as a collector's output looks), each keyed by its pair.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from beaconwatch.scoring.periodicity import Shape
from beaconwatch.simulate.goflow2 import encode, goflow2_record, pair_key
from beaconwatch.simulate.model import PlantedBeacon, SimFlow
from beaconwatch.simulate.profiles import (
    BackgroundDnsProfile,
    BeaconProfile,
    BrowsingProfile,
    Profile,
)

DEFAULT_START_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
RESOLVER_IP = "10.0.0.53"
SAMPLER_IP = "10.0.255.1"
C2_NETWORKS = ("203.0.113", "198.51.100")  # documentation ranges: never a real server
C2_PORTS = (443, 8443, 80, 8080)
# First octets of ordinary public destinations (clouds, CDNs); none is a documentation range.
_WEB_FIRST_OCTETS = (13, 23, 31, 34, 35, 44, 52, 54, 64, 104, 140, 142, 151, 157, 185)
_STYLES = (Shape.SUBTRACTIVE, Shape.ADDITIVE, Shape.SYMMETRIC)


@dataclass(frozen=True, slots=True)
class SimulationSpec:
    seed: int = 1
    start_ms: int = DEFAULT_START_MS  # event time of the first chunk
    duration_s: float | None = 3_600.0  # event time to simulate; None = endless (streaming)
    hosts: int = 300
    beacons: int = 4
    web_destinations: int = 200  # size of the benign destination pool
    chunk_s: float = 10.0  # records are produced in chunks of this much event time
    max_disorder_s: float = 2.0  # flows may come out up to this much before an earlier one
    min_period_s: float = 30.0  # planted beacon sleep range
    max_period_s: float = 300.0
    min_jitter: float = 0.05  # planted beacon jitter range (fraction of the sleep)
    max_jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.hosts < 1 or self.beacons < 0 or self.beacons > self.hosts:
            raise ValueError("need hosts >= 1 and 0 <= beacons <= hosts")
        if self.beacons > 200:
            raise ValueError("at most 200 planted beacons")
        if self.chunk_s <= 0 or self.max_disorder_s < 0:
            raise ValueError("chunk_s must be > 0 and max_disorder_s >= 0")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError("duration_s must be > 0")


class SimRecord(NamedTuple):
    key: bytes  # pair key (Kafka record key)
    value: bytes  # goflow2 JSON
    start_ms: int  # flow start, for pacing


def _derived_seed(seed: int, *parts: object) -> int:
    return zlib.crc32(":".join(str(p) for p in (seed, *parts)).encode())


def _host_addresses(rng: random.Random, n: int) -> list[str]:
    """Distinct client addresses: mostly 10.0.0.0/16, a fifth in 192.168.0.0/16."""
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        if rng.random() < 0.8:
            ip = f"10.0.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
        else:
            ip = f"192.168.{rng.randint(0, 254)}.{rng.randint(1, 254)}"
        if ip not in seen and ip != RESOLVER_IP:
            seen.add(ip)
            out.append(ip)
    return out


def _web_destinations(rng: random.Random, n: int) -> list[str]:
    seen: set[str] = set()
    while len(seen) < n:
        first = rng.choice(_WEB_FIRST_OCTETS)
        seen.add(f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")
    return sorted(seen)


def plan_beacons(spec: SimulationSpec, hosts: list[str]) -> list[PlantedBeacon]:
    rng = random.Random(_derived_seed(spec.seed, "beacons"))
    infected = rng.sample(hosts, spec.beacons)
    planted = []
    for i, src in enumerate(infected):
        net = C2_NETWORKS[i % len(C2_NETWORKS)]
        planted.append(
            PlantedBeacon(
                src_ip=src,
                dst_ip=f"{net}.{10 + i}",
                dst_port=C2_PORTS[i % len(C2_PORTS)],
                proto="TCP",
                period_s=float(round(rng.uniform(spec.min_period_s, spec.max_period_s))),
                jitter=round(rng.uniform(spec.min_jitter, spec.max_jitter), 2),
                style=_STYLES[i % len(_STYLES)],
                bytes_mean=rng.randint(200, 2_000),
            )
        )
    return planted


class TrafficSimulator:
    def __init__(self, spec: SimulationSpec | None = None) -> None:
        self.spec = spec or SimulationSpec()
        s = self.spec
        rng = random.Random(_derived_seed(s.seed, "layout"))
        self.hosts = _host_addresses(rng, s.hosts)
        self.destinations = _web_destinations(rng, s.web_destinations)
        self.planted = plan_beacons(s, self.hosts)
        self.profiles: list[Profile] = []
        for i, host in enumerate(self.hosts):
            # Each host sees its own shuffle of the popularity ranking.
            order = random.Random(_derived_seed(s.seed, "prefs", i)).sample(
                self.destinations, len(self.destinations)
            )
            self.profiles.append(
                BrowsingProfile(
                    _derived_seed(s.seed, "web", i), s.start_ms, host, order, RESOLVER_IP
                )
            )
            self.profiles.append(
                BackgroundDnsProfile(_derived_seed(s.seed, "dns", i), s.start_ms, host, RESOLVER_IP)
            )
        for i, beacon in enumerate(self.planted):
            self.profiles.append(
                BeaconProfile(_derived_seed(s.seed, "beacon", i), s.start_ms, beacon)
            )
        self._order_rng = random.Random(_derived_seed(s.seed, "order"))
        self._sequence_num = 0

    @property
    def end_ms(self) -> int | None:
        s = self.spec
        return None if s.duration_s is None else s.start_ms + round(s.duration_s * 1000)

    def flow_chunks(self) -> Iterator[tuple[int, list[SimFlow]]]:
        """``(chunk_end_ms, flows)`` in emission order; one pass (stateful)."""
        chunk_ms = max(1, round(self.spec.chunk_s * 1000))
        disorder_ms = round(self.spec.max_disorder_s * 1000)
        t_ms, end_ms = self.spec.start_ms, self.end_ms
        while end_ms is None or t_ms < end_ms:
            t_next = t_ms + chunk_ms if end_ms is None else min(t_ms + chunk_ms, end_ms)
            flows = [f for p in self.profiles for f in p.flows_until(t_next)]
            flows.sort()
            rng = self._order_rng
            # The export order: flow start plus a small random delay, so neighbours swap.
            keys = [f.start_ms + rng.randint(0, disorder_ms) for f in flows]
            order = sorted(range(len(flows)), key=lambda k: (keys[k], k))
            yield t_next, [flows[k] for k in order]
            t_ms = t_next

    def record_chunks(self) -> Iterator[tuple[int, list[SimRecord]]]:
        for chunk_end_ms, flows in self.flow_chunks():
            records = []
            for flow in flows:
                self._sequence_num += 1
                received_ms = flow.end_ms + 500 + (self._sequence_num * 7919) % 1500
                value = encode(
                    goflow2_record(
                        flow,
                        sequence_num=self._sequence_num,
                        received_ms=received_ms,
                        sampler_address=SAMPLER_IP,
                    )
                )
                records.append(SimRecord(pair_key(flow), value, flow.start_ms))
            yield chunk_end_ms, records

    def records(self) -> Iterator[SimRecord]:
        for _, chunk in self.record_chunks():
            yield from chunk
