"""The labelled synthetic benchmark: a grid of C2 implants hidden in an office network.

Deterministic from the seed. The grid crosses jitter shape x sleep x jitter x missed check-ins;
variants add a mid-run sleep change, working-hours-only check-ins, payload padding and flows
duplicated by two exporters. Every implant runs on its own infected internal host, which keeps
its benign traffic, and every implant stops at the end of the run (batch tools such as RITA
look at the last 24 h). An implant runs the last 24 h, or the whole run when 24 h holds fewer
than 14 check-ins, so that it has >= 12 check-ins where the run allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from beaconwatch.scoring.periodicity import Shape
from beaconwatch.simulate.implant import (
    POLLING,
    POLLING_PERIOD_S,
    Schedule,
    checkin_bytes,
    checkin_times_ms,
)
from evaluation import background as bg
from evaluation.truth import BeaconTruth, FlowColumns, Kind, Scenario, assemble

# Monday 2024-03-04 00:00 UTC: working hours and weekdays line up with the event time.
DEFAULT_START_MS = 1_709_510_400_000
C2_NETWORKS = (bg.ipv4(203, 0, 113, 0), bg.ipv4(198, 51, 100, 0), bg.ipv4(192, 0, 2, 0))
C2_PORTS = (443, 8443, 80, 8080)
GRID_SHAPES = (Shape.SUBTRACTIVE, Shape.ADDITIVE, Shape.SYMMETRIC)


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    seed: int = 1
    hosts: int = 800
    duration_h: float = 60.0
    start_ms: int = DEFAULT_START_MS
    web_destinations: int = 3000
    periods_s: tuple[int, ...] = (5, 10, 30, 60, 300, 900, 3600, 14400)
    jitters: tuple[float, ...] = (0.0, 0.10, 0.25, 0.50, 0.75)
    missed: tuple[float, ...] = (0.0, 0.10, 0.30)
    shapes: tuple[Shape, ...] = GRID_SHAPES
    variants: bool = True
    max_run_h: float = 24.0  # implants with enough check-ins in this run no longer
    duplicated_share: float = 0.10  # hosts behind two exporters
    reverse_share: float = 0.10  # hosts behind a v5/v9 exporter emitting reverse records
    hard_case_runs: int = 20  # seeds per hard case (`evaluation.hard_cases`)

    @classmethod
    def quick(cls, seed: int = 1) -> ScenarioSpec:
        """A small smoke-test scenario (seconds to build and run)."""
        return cls(
            seed=seed,
            hosts=120,
            duration_h=8.0,
            web_destinations=300,
            periods_s=(10, 60, 300),
            jitters=(0.0, 0.25, 0.5),
            missed=(0.0, 0.3),
            max_run_h=8.0,
            start_ms=DEFAULT_START_MS + 6 * 3_600_000,  # 06:00-14:00: some working hours
            hard_case_runs=1,
        )

    @property
    def span_ms(self) -> int:
        return int(self.duration_h * 3_600_000)


def _run_ms(spec: ScenarioSpec, period_s: int) -> int:
    """Implants run the last ``max_run_h`` (24 h: the window of beaconwatch and RITA alike), or
    the whole run when that holds fewer than 14 check-ins (slow beacons)."""
    cap_ms = int(min(spec.max_run_h * 3_600_000, spec.span_ms))
    return spec.span_ms if period_s * 14 * 1000 > cap_ms else cap_ms


@dataclass(frozen=True, slots=True)
class _Plan:
    schedule: Schedule
    variant: str
    padding: int = 0
    working_hours: bool = False


def _grid(spec: ScenarioSpec) -> list[_Plan]:
    plans = [
        _Plan(Schedule(shape, period, jitter, missed), "grid")
        for shape in spec.shapes
        for period in spec.periods_s
        for jitter in spec.jitters
        for missed in spec.missed
    ]
    plans += [
        _Plan(Schedule(POLLING, POLLING_PERIOD_S, 0.0, missed), "grid") for missed in spec.missed
    ]
    if not spec.variants:
        return plans
    mid = [p for p in spec.periods_s if 30 <= p <= 900] or list(spec.periods_s)
    for i, shape in enumerate(GRID_SHAPES):
        a, b = mid[i % len(mid)], mid[(i + 1) % len(mid)]
        plans.append(_Plan(Schedule(shape, a, 0.2, 0.0, period2_s=b), "sleep_change"))
        plans.append(_Plan(Schedule(shape, b, 0.2, 0.0, period2_s=a), "sleep_change"))
        for period in mid[:3]:
            plans.append(_Plan(Schedule(shape, period, 0.1, 0.0), "working_hours", 0, True))
            plans.append(_Plan(Schedule(shape, period, 0.1, 0.0), "padding", 50 + 55 * i))
            plans.append(_Plan(Schedule(shape, period, 0.1, 0.0), "duplicated"))
    return plans


def build_scenario(spec: ScenarioSpec) -> Scenario:
    rng = np.random.default_rng(spec.seed)
    start_ms, end_ms = spec.start_ms, spec.start_ms + spec.span_ms
    lay = bg.Layout(
        hosts=bg.hosts_ips(spec.hosts),
        start_ms=start_ms,
        end_ms=end_ms,
        web=bg.public_ips(rng, spec.web_destinations, bg._PUBLIC_FIRST_OCTETS),
        pool_ntp=bg.public_ips(rng, 200, bg._POOL_FIRST_OCTETS),
        long_session_servers=bg.public_ips(rng, 20, bg._PUBLIC_FIRST_OCTETS),
    )
    plans = _grid(spec)
    if len(plans) > spec.hosts:
        raise ValueError(f"{len(plans)} implants need at least as many hosts (got {spec.hosts})")
    if len(plans) > 3 * 254:
        raise ValueError("at most 762 implants (three documentation /24s of C2 servers)")
    infected = rng.permutation(spec.hosts)[: len(plans)]

    cols = FlowColumns.new()
    bg.browsing(rng, lay, cols)
    bg.background_dns(rng, lay, cols)
    bg.fleet_polling(rng, lay, cols)
    bg.ntp(rng, lay, cols)
    bg.long_sessions(rng, lay, cols)
    bg.iot_devices(rng, lay, cols)

    beacons: list[BeaconTruth] = []
    dup_hosts: list[int] = []
    for i, plan in enumerate(plans):
        s = plan.schedule
        run_ms = _run_ms(spec, s.period_s)
        src = int(lay.hosts[infected[i]])
        dst = C2_NETWORKS[i // 254] + 1 + i % 254
        port = C2_PORTS[i % len(C2_PORTS)]
        t = checkin_times_ms(rng, s, end_ms - run_ms, end_ms)
        if plan.working_hours:
            t = t[bg._busy(t)]
        n = t.shape[0]
        size = checkin_bytes(rng, n, int(rng.integers(200, 2000)), plan.padding)
        cols.add(
            t,
            t + rng.integers(80, 600, n),
            src,
            dst,
            bg.ephemeral(rng, n),
            port,
            6,
            size,
            Kind.BEACON,
            "c2",
            i,
        )
        if plan.variant == "duplicated":
            dup_hosts.append(src)
        beacons.append(
            BeaconTruth(
                index=i,
                shape=s.shape,
                period_s=s.period_s,
                jitter=s.jitter,
                missed=s.missed,
                variant=plan.variant,
                src=src,
                dst=dst,
                dst_port=port,
                proto=6,
                checkins=n,
                first_ms=int(t[0]) if n else end_ms,
                last_ms=int(t[-1]) if n else end_ms,
                period2_s=s.period2_s,
            )
        )

    # Exporter artefacts: some benign hosts behind two exporters, some behind v5/v9 exporters.
    clean = np.setdiff1d(np.arange(spec.hosts), infected)
    shuffled = rng.permutation(clean)
    n_dup = int(spec.duplicated_share * spec.hosts)
    n_rev = int(spec.reverse_share * spec.hosts)
    dup = np.concatenate((lay.hosts[shuffled[:n_dup]], np.array(dup_hosts, dtype=np.uint32)))
    rev = lay.hosts[shuffled[n_dup : n_dup + n_rev]]
    bg.exporter_artefacts(rng, cols.concat(), dup.astype(np.uint32), rev, cols)

    days = spec.span_ms / 86_400_000
    return assemble(cols, beacons, spec.hosts * days, start_ms, end_ms)
