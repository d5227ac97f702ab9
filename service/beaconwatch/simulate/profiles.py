"""Traffic profiles: each one host's behaviour of one kind, generated lazily in event time.

A profile owns its random generator, so its output depends only on its own seed and never on
how the simulator slices time into chunks or which other profiles exist. New behaviours (fleet
polling, NTP, active-timeout splits, ...) are new `Profile` subclasses registered in
``generator.py``.
"""

from __future__ import annotations

import heapq
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence

from beaconwatch.simulate.browsing import BROWSING
from beaconwatch.simulate.implant import sleeps_s
from beaconwatch.simulate.model import PlantedBeacon, SimFlow

EPHEMERAL_PORTS = (32768, 60999)


class Profile(ABC):
    """Emits flows in start order; ``flows_until`` returns every flow starting before ``end_ms``."""

    def __init__(self, seed: int, start_ms: int) -> None:
        self.rng = random.Random(seed)
        self._next_ms = start_ms  # when the next activity (session, query, check-in) begins
        self._pending: list[SimFlow] = []  # heap: flows generated but not yet emitted

    @abstractmethod
    def _activity(self, at_ms: int) -> tuple[list[SimFlow], int]:
        """Flows of one activity starting at ``at_ms``, and when the next activity starts."""

    def flows_until(self, end_ms: int) -> list[SimFlow]:
        while self._next_ms < end_ms:
            flows, self._next_ms = self._activity(self._next_ms)
            for flow in flows:
                heapq.heappush(self._pending, flow)
        out: list[SimFlow] = []
        while self._pending and self._pending[0].start_ms < end_ms:
            out.append(heapq.heappop(self._pending))
        return out

    def _dns_query(self, t_ms: int, host_ip: str, resolver_ip: str) -> SimFlow:
        """One UDP lookup to the internal resolver."""
        # randint includes its upper bound: one byte / ms more than the vectorised office.
        size = self.rng.randint(*BROWSING.dns_bytes)
        end_ms = t_ms + self.rng.randint(*BROWSING.dns_duration_ms)
        return SimFlow(
            t_ms, end_ms, host_ip, resolver_ip, self._ephemeral_port(), 53, "UDP", size, 1
        )

    def _ephemeral_port(self) -> int:
        return self.rng.randint(*EPHEMERAL_PORTS)

    def _heavy_tailed_bytes(
        self,
        scale: float,
        alpha: float = BROWSING.size_pareto_alpha,
        cap: float = BROWSING.size_cap_bytes,
    ) -> int:
        # Pareto sizes: most flows small, a few huge (what web traffic looks like).
        return int(min(scale * self.rng.paretovariate(alpha), cap))


class BrowsingProfile(Profile):
    """Bursty web use (`browsing.BROWSING`), one session at a time: idle gaps, then a session
    of many connections to a few destinations, each new one costing a DNS query to the internal
    resolver; now and then a session includes a large download.
    """

    def __init__(
        self,
        seed: int,
        start_ms: int,
        host_ip: str,
        destinations: Sequence[str],
        resolver_ip: str,
        *,
        session_gap_mean_s: float = BROWSING.session_gap_mean_s,
        connections_mean: float = BROWSING.connections_mean,
        connection_gap_mean_s: float = BROWSING.connection_gap_mean_s,
        download_probability: float = 0.05,
    ) -> None:
        super().__init__(seed, start_ms)
        self.host_ip = host_ip
        self.destinations = list(destinations)
        self.resolver_ip = resolver_ip
        self.session_gap_mean_s = session_gap_mean_s
        self.connections_mean = connections_mean
        self.connection_gap_mean_s = connection_gap_mean_s
        self.download_probability = download_probability
        # Zipf-like popularity: a few sites get most of the visits.
        self._weights = [1.0 / (rank + 1) for rank in range(len(self.destinations))]
        # First session somewhere in the first gap, so hosts do not start in lockstep.
        self._next_ms = start_ms + int(self.rng.expovariate(1.0 / session_gap_mean_s) * 1000)

    def _activity(self, at_ms: int) -> tuple[list[SimFlow], int]:
        rng = self.rng
        sites = rng.choices(self.destinations, self._weights, k=rng.randint(1, BROWSING.max_sites))
        n_connections = 1 + int(rng.expovariate(1.0 / self.connections_mean))
        flows: list[SimFlow] = []
        resolved: set[str] = set()
        t_ms = at_ms
        for _ in range(n_connections):
            dst = rng.choice(sites)
            if dst not in resolved:
                resolved.add(dst)
                flows.append(self._dns_query(t_ms, self.host_ip, self.resolver_ip))
                t_ms += rng.randint(2, 40)
            size = self._heavy_tailed_bytes(BROWSING.size_scale_bytes)
            duration_ms = rng.randint(*BROWSING.duration_ms) + size // 20_000
            port = 443 if rng.random() < BROWSING.https_share else 80
            flows.append(
                SimFlow(
                    t_ms,
                    t_ms + duration_ms,
                    self.host_ip,
                    dst,
                    self._ephemeral_port(),
                    port,
                    "TCP",
                    size,
                    max(3, size // 1200),
                )
            )
            t_ms += 1 + int(rng.expovariate(1.0 / self.connection_gap_mean_s) * 1000)
        if rng.random() < self.download_probability:
            size = rng.randint(5_000_000, 50_000_000) + self._heavy_tailed_bytes(1e6, cap=4e9)
            duration_ms = 1_000 + size // 5_000  # ~5 MB/s
            flows.append(
                SimFlow(
                    at_ms + rng.randint(0, 5_000),
                    at_ms + duration_ms,
                    self.host_ip,
                    rng.choice(self.destinations),
                    self._ephemeral_port(),
                    443,
                    "TCP",
                    size,
                    size // 1400,
                )
            )
        next_ms = t_ms + int(rng.expovariate(1.0 / self.session_gap_mean_s) * 1000)
        return flows, next_ms


class BackgroundDnsProfile(Profile):
    """Lookups outside browsing sessions (updates, telemetry, mail): a Poisson process."""

    def __init__(
        self, seed: int, start_ms: int, host_ip: str, resolver_ip: str, *, mean_gap_s: float = 240.0
    ) -> None:
        super().__init__(seed, start_ms)
        self.host_ip = host_ip
        self.resolver_ip = resolver_ip
        self.mean_gap_s = mean_gap_s
        self._next_ms = start_ms + int(self.rng.expovariate(1.0 / mean_gap_s) * 1000)

    def _activity(self, at_ms: int) -> tuple[list[SimFlow], int]:
        flow = self._dns_query(at_ms, self.host_ip, self.resolver_ip)
        return [flow], at_ms + 1 + int(self.rng.expovariate(1.0 / self.mean_gap_s) * 1000)


class BeaconProfile(Profile):
    """An implant checking in with its C2 server: sleep ``S`` randomised by the jitter style."""

    def __init__(self, seed: int, start_ms: int, beacon: PlantedBeacon) -> None:
        super().__init__(seed, start_ms)
        self.beacon = beacon
        # Random phase: the implant was started some time before the capture began.
        self._next_ms = start_ms + int(self.rng.uniform(0, beacon.period_s) * 1000)

    def sleep_s(self) -> float:
        b = self.beacon
        return sleeps_s(b.style, b.period_s, b.jitter, self.rng.random())

    def _activity(self, at_ms: int) -> tuple[list[SimFlow], int]:
        b, rng = self.beacon, self.rng
        # Small size variation: headers, padding, the odd empty task list.
        size = max(64, int(rng.gauss(b.bytes_mean, b.bytes_mean * 0.03)))
        flow = SimFlow(
            at_ms,
            at_ms + rng.randint(80, 600),
            b.src_ip,
            b.dst_ip,
            self._ephemeral_port(),
            b.dst_port,
            b.proto,
            size,
            max(2, 4 + size // 1400),
        )
        return [flow], at_ms + max(1, round(self.sleep_s() * 1000))
