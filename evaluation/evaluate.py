"""One evaluation run: build the scenario, run beaconwatch and RITA, measure, replay real data."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from beaconwatch.config import Config
from beaconwatch.domain.dtypes import F64
from evaluation import metrics as m
from evaluation.hard_cases import CaseResult, evaluate_hard_cases
from evaluation.realdata import DATASETS, DatasetResult, evaluate_dataset
from evaluation.rita_batch import scenario_scores
from evaluation.runner import RunResult, run_detector, sweep_config
from evaluation.sampled_background import SAMPLED_RUNS, SampledRun, evaluate_sampled
from evaluation.scenarios import ScenarioSpec, build_scenario
from evaluation.traffic_cases import evaluate_traffic_cases
from evaluation.truth import Kind, Scenario

SWEEP_FLOOR = 0.3  # the sweep run records every scoring at or above this


@dataclass(frozen=True, slots=True)
class EvalResults:
    spec: ScenarioSpec
    config: Config
    scenario: Scenario
    run: RunResult
    sweep_run: RunResult
    outcomes: m.PairOutcomes
    beacons: list[m.BeaconOutcome]
    max_score: F64  # per pair, from the sweep run (0 below the floor)
    rita: F64  # per pair, NaN where RITA does not score
    eligible_pairs: npt.NDArray[np.int64]  # pair ids of beacons with >= 12 check-ins
    timings_s: dict[str, float]
    real: list[DatasetResult] = field(default_factory=list)
    real_error: str | None = None
    hard_cases: list[CaseResult] = field(default_factory=list)
    sampled: list[SampledRun] = field(default_factory=list)  # the office packet-sampled

    @property
    def benign(self) -> npt.NDArray[np.bool_]:
        benign: npt.NDArray[np.bool_] = self.scenario.pair_kind == int(Kind.BENIGN)
        return benign

    def curve_beaconwatch(self) -> m.Curve:
        return m.sweep(self.max_score[self.eligible_pairs], self.max_score[self.benign])

    def curve_rita(self) -> m.Curve:
        return m.sweep(self.rita[self.eligible_pairs], self.rita[self.benign])


def evaluate(
    spec: ScenarioSpec,
    config: Config,
    *,
    data_dir: Path | None,
    log: Callable[[str], None] = lambda _: None,
) -> EvalResults:
    timings: dict[str, float] = {}

    def timed(name: str, t0: float) -> None:
        timings[name] = time.perf_counter() - t0
        log(f"{name}: {timings[name]:.1f} s")

    t0 = time.perf_counter()
    scenario = build_scenario(spec)
    index = scenario.pair_index()
    timed("generate", t0)
    n_flows, n_beacons = len(scenario.flows), len(scenario.beacons)
    log(f"{n_flows:,} flows, {scenario.n_pairs:,} pairs, {n_beacons} beacons")

    t0 = time.perf_counter()
    run = run_detector(scenario.flows, config)
    timed("beaconwatch", t0)
    t0 = time.perf_counter()
    sweep_run = run_detector(scenario.flows, sweep_config(config, SWEEP_FLOOR), final_scores=False)
    timed("beaconwatch sweep", t0)

    outcomes = m.pair_outcomes(scenario, index, run.alerts, run.final_scores)
    beacons = m.beacon_outcomes(scenario, index, outcomes)
    max_score = m.max_scores(scenario.n_pairs, index, sweep_run.alerts)
    eligible = np.array([o.pair for o in beacons if o.eligible and o.pair >= 0], dtype=np.int64)

    t0 = time.perf_counter()
    rita = scenario_scores(scenario)
    timed("rita", t0)

    t0 = time.perf_counter()
    hard = evaluate_hard_cases(config, runs=spec.hard_case_runs)
    hard += evaluate_traffic_cases(config, runs=spec.hard_case_runs)
    timed("hard cases", t0)

    t0 = time.perf_counter()
    sampled = [evaluate_sampled(scenario, config, r, share, spec.seed) for r, share in SAMPLED_RUNS]
    timed("sampled background", t0)

    real: list[DatasetResult] = []
    real_error = None
    if data_dir is not None:
        t0 = time.perf_counter()
        try:
            real = [evaluate_dataset(ds, data_dir, config) for ds in DATASETS]
        except (ImportError, OSError) as exc:
            real_error = f"{type(exc).__name__}: {exc}"
        timed("real data", t0)
    return EvalResults(
        spec,
        config,
        scenario,
        run,
        sweep_run,
        outcomes,
        beacons,
        max_score,
        rita,
        eligible,
        timings,
        real,
        real_error,
        hard,
        sampled,
    )
