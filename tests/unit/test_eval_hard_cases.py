"""The evaluation's hard cases run, and the ones the detector is built for come out right."""

from __future__ import annotations

import numpy as np
from evaluation.hard_cases import (
    POLLED_NAME,
    _browsing,
    _edges,
    _fleet_poll,
    _replay,
    _sni,
    evaluate_hard_cases,
)

from beaconwatch.alerting.alert import CHANNEL_NAME, CHANNEL_PREFIX
from beaconwatch.config import Config, with_overrides


def test_hard_cases_report_each_case_with_the_detector_defaults() -> None:
    results = {c.name: c for c in evaluate_hard_cases(Config(), runs=2)}
    assert len(results) == 21
    for name, case in results.items():
        assert case.runs == 2 and 0 <= case.alerted <= 2, name
        assert case.rejected_too_late == 0, name
    assert results["burst check-ins: SYN retries every 80 s"].alerted == 2
    assert results["long sessions: reverse shell, 3 sessions of 3 h a day"].alerted == 2
    assert results["exporter clock 15 min fast on 1 % of the flows"].alerted == 2
    for rotating in [n for n in results if n.startswith(("CDN rotation", "DNS round-robin"))]:
        assert results[rotating].alerted == 2, rotating
    for benign in [c for c in results.values() if not c.malicious]:
        assert benign.alerted == 0, benign.name


def test_the_cases_can_fail() -> None:
    # Grouping turned off, the SYN-retry bursts read as noise again; the long-connection rule
    # off, the reverse shell is not alerted; without prefix channels no rotating beacon is.
    off = with_overrides(
        Config(), scoring={"burst_gap_s": 0}, alerting={"long_connection_s": 0},
        state={"prefix_channels": False, "name_channels": False},
    )  # fmt: skip
    results = {c.name: c for c in evaluate_hard_cases(off, runs=2)}
    for rotating in [n for n in results if n.startswith(("CDN rotation", "DNS round-robin"))]:
        assert results[rotating].alerted == 0, rotating
    assert results["burst check-ins: 2-3 parallel connections every 120 s"].alerted == 0
    assert results["long sessions: reverse shell, 3 sessions of 3 h a day"].alerted == 0


def test_prevalence_is_what_keeps_the_fleets_cdn_polling_quiet() -> None:
    rng = np.random.default_rng(0)
    rows = sorted(_fleet_poll(rng, 12, 12) + _browsing(rng, 12))

    def prefix_alerts(config: Config) -> int:
        alerts = _replay(config, rows).alerts
        return sum(a.channel == CHANNEL_PREFIX and a.src_ip.startswith("10.0.2.") for a in alerts)

    assert prefix_alerts(Config()) == 0
    # Every poller's channel alerts once prevalence no longer down-ranks the service.
    assert prefix_alerts(with_overrides(Config(), prevalence={"min_sources": 1000})) == 12


def test_name_prevalence_is_what_keeps_the_fleets_named_polling_quiet() -> None:
    rng = np.random.default_rng(0)
    rows = [r for h in range(12) for r in _edges(rng, 900, 12, f"10.0.2.{h}", 0.05)]
    rows = sorted(rows + _browsing(rng, 12))

    def name_alerts(config: Config) -> int:
        alerts = _replay(config, rows, names=_sni).alerts
        return sum(a.channel == CHANNEL_NAME and a.dst_domain == POLLED_NAME for a in alerts)

    assert name_alerts(Config()) == 0
    # Every poller's name channel alerts once prevalence no longer down-ranks the name.
    assert name_alerts(with_overrides(Config(), prevalence={"min_sources": 1000})) == 12
