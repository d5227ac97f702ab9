"""The one browsing model: the demo's streaming hosts and the evaluation's office agree."""

from __future__ import annotations

import numpy as np
from evaluation import background as bg
from evaluation.truth import CATEGORIES, FlowColumns

from beaconwatch.domain.dtypes import I64
from beaconwatch.simulate.browsing import BROWSING, poisson_browsing
from beaconwatch.simulate.profiles import BrowsingProfile

DAY_MS = 86_400_000
T0_MS = 1_709_510_400_000  # a Monday 00:00 UTC


def _demo_web(hosts: int) -> tuple[I64, I64]:
    sizes, ports = [], []
    for h in range(hosts):
        p = BrowsingProfile(h, T0_MS, f"10.0.0.{h + 1}", [f"52.0.0.{i}" for i in range(1, 50)],
                            "10.0.0.53")  # fmt: skip
        for f in p.flows_until(T0_MS + DAY_MS):
            if f.dst_port != 53 and f.bytes < 5_000_000:  # connections, not downloads
                sizes.append(f.bytes)
                ports.append(f.dst_port)
    return np.array(sizes, dtype=np.int64), np.array(ports, dtype=np.int64)


def _office_web(hosts: int) -> tuple[I64, I64]:
    rng = np.random.default_rng(1)
    lay = bg.Layout(bg.hosts_ips(hosts), T0_MS, T0_MS + DAY_MS,
                    bg.public_ips(rng, 50, bg._PUBLIC_FIRST_OCTETS), bg.hosts_ips(1),
                    bg.hosts_ips(1))  # fmt: skip
    cols = FlowColumns.new()
    bg.browsing(rng, lay, cols)
    c = cols.concat()
    web = c["category"] == CATEGORIES.index("browsing")
    return c["nbytes"][web].astype(np.int64), c["dst_port"][web].astype(np.int64)


def test_both_samplers_follow_the_one_model() -> None:
    # Pareto(alpha) sizes times the scale: median scale * 2 ** (1 / alpha).
    median_b = BROWSING.size_scale_bytes * 2 ** (1 / BROWSING.size_pareto_alpha)
    for sizes, ports in (_demo_web(40), _office_web(40)):
        assert sizes.size > 2_000
        assert abs(float(np.median(sizes)) / median_b - 1) < 0.1
        assert abs(float(np.mean(ports == 443)) - BROWSING.https_share) < 0.03
        assert set(np.unique(ports).tolist()) == {80, 443}


def test_poisson_browsing_is_light_and_reproducible() -> None:
    a = poisson_browsing(np.random.default_rng(3), T0_MS, 2, hosts=4)
    b = poisson_browsing(np.random.default_rng(3), T0_MS, 2, hosts=4)
    assert a == b
    per_host = len(a) / 4
    assert 120 < per_host < 200  # 2 h at a mean gap of 45 s: ~160
    assert {f.src_ip for f in a} == {f"10.0.1.{h}" for h in range(4)}
    assert all(T0_MS <= f.start_ms < T0_MS + 2 * 3_600_000 for f in a)


def test_the_traffic_cases_draw_order_is_the_same_model() -> None:
    a = poisson_browsing(np.random.default_rng(3), T0_MS, 8, hosts=4, size_first=True)
    b = poisson_browsing(np.random.default_rng(3), T0_MS, 8, hosts=4)
    assert a != b  # other draws ...
    for rows in (a, b):  # ... of one model: ~2,560 connections, lognormal(8, 2) sizes
        assert 2_300 < len(rows) < 2_800
        assert abs(float(np.median([f.bytes for f in rows])) / np.exp(8) - 1) < 0.35
        assert {f.dst_ip.rsplit(".", 1)[0] for f in rows} == {"198.51.100"}
