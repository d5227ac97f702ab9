"""The one browsing model: what a person's web use looks like as flows.

Bursty sessions separated by idle gaps; a session opens ~15 connections (exponential gaps,
mean 4 s) to 1-4 sites drawn from a Zipf-popular pool, each new site costing a lookup to an
internal resolver; connection sizes are Pareto (most small, a few huge), 85 % on :443.
`profiles.BrowsingProfile` samples it one session at a time (the demo, streaming) and the
evaluation's office (`evaluation/background.py`) all hosts at once; both read these numbers.

`poisson_browsing` is the light version the evaluation's hard and traffic cases plant their
implants among: single connections of a few hosts to a few dozen servers, exponential gaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from beaconwatch.simulate.model import SimFlow


@dataclass(frozen=True, slots=True)
class BrowsingModel:
    session_gap_mean_s: float = 900.0  # idle time between sessions (the demo's hosts)
    max_sites: int = 4  # a session visits 1..max_sites sites
    connections_mean: float = 15.0  # connections per session (geometric)
    connection_gap_mean_s: float = 4.0
    size_pareto_alpha: float = 1.3
    size_scale_bytes: float = 800.0
    size_cap_bytes: float = 5e8
    https_share: float = 0.85  # the rest on :80
    duration_ms: tuple[int, int] = (50, 2_000)  # plus one ms per 20 kB
    dns_bytes: tuple[int, int] = (60, 120)
    dns_duration_ms: tuple[int, int] = (1, 30)


BROWSING = BrowsingModel()

LIGHT_SERVERS = "198.51.100"  # the light model's web servers: 198.51.100.1-39
LIGHT_FIRST_GAP_MEAN_MS = 60_000.0
LIGHT_GAP_MEAN_MS = 45_000.0


def poisson_browsing(
    rng: np.random.Generator, start_ms: int, hours: float, hosts: int = 6,
    *, size_first: bool = False,
) -> list[SimFlow]:  # fmt: skip
    """Hosts 10.0.1.0.. each opening a 300 ms TCP connection to one of 39 servers at exponential
    gaps (mean 45 s), of lognormal size (median ~3 kB).

    ``size_first`` draws a connection's size before its server and port: the traffic cases'
    order. Same model, but their replays are seeded, and a borderline case (packet-sampled
    300 s beacon) moves by a run or two under other draws, so each keeps its published ones.
    """
    end_ms = start_ms + hours * 3_600_000
    rows: list[SimFlow] = []
    for h in range(hosts):
        t = start_ms + rng.exponential(LIGHT_FIRST_GAP_MEAN_MS)
        while t < end_ms:
            nbytes = int(rng.lognormal(8, 2)) if size_first else 0
            dst = f"{LIGHT_SERVERS}.{int(rng.integers(1, 40))}"
            sport = int(rng.integers(32768, 61000))
            if not size_first:
                nbytes = int(rng.lognormal(8, 2))
            rows.append(SimFlow(int(t), int(t) + 300, f"10.0.1.{h}", dst, sport, 443, "TCP",
                                nbytes, 1))  # fmt: skip
            t += rng.exponential(LIGHT_GAP_MEAN_MS)
    return rows
