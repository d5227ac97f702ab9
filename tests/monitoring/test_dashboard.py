"""The Grafana dashboard's shape: unique ids, no overlapping panels, the Prometheus datasource
everywhere, panels for the flows the detector ignores, merges and suppresses, and thresholds
where an operator acts, equal to the alerts' thresholds."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.monitoring.dashboard import panel_queries, panels, substitute
from tests.monitoring.test_rules import alert_rules

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
# A panel showing this metric must exist.
REQUIRED_METRICS = (
    "beaconwatch_flows_ignored_total",
    "beaconwatch_flows_merged_total",
    "beaconwatch_alerts_suppressed_total",
    "beaconwatch_dead_letter_records_total",
    "beaconwatch_checkpoint_age_seconds",
    "beaconwatch_established_pairs_evicted_total",
    "beaconwatch_repartition_lag_records",
)
# Panel title -> (alert whose threshold it draws, that threshold).
THRESHOLDS = {
    "Consumer lag": ("BeaconwatchConsumerLagGrowing", 1000.0),
    "Consumer lag (records)": ("BeaconwatchRepartitionLagGrowing", 1000.0),
    "Checkpoint age": ("BeaconwatchCheckpointStale", 900.0),
    "Dead-lettered share of input": ("BeaconwatchDeadLetters", 0.01),
    "Established pairs evicted": ("BeaconwatchEvictingEstablishedPairs", 1.0),
}


def _by_title(title: str) -> dict[str, Any]:
    found = [p for p in panels() if p["title"] == title]
    assert len(found) == 1, f"{len(found)} panels titled {title!r}"
    return found[0]


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids)), ids
    cells: dict[tuple[int, int], str] = {}
    for p in panels():
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


def test_every_panel_and_query_uses_the_provisioned_prometheus() -> None:
    for p in panels():
        assert p["datasource"] == DATASOURCE, p["title"]
        assert p["targets"], f"{p['title']!r} has no query"
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE, p["title"]
            substitute(t["expr"], scrape_interval_s=5, range_s=3600)  # no unknown variables


@pytest.mark.parametrize("metric", REQUIRED_METRICS)
def test_a_panel_shows(metric: str) -> None:
    assert any(metric in q.expr for q in panel_queries()), f"no panel queries {metric}"


@pytest.mark.parametrize("title", sorted(THRESHOLDS))
def test_thresholds_match_the_alerts(title: str) -> None:
    alert, value = THRESHOLDS[title]
    defaults = _by_title(title)["fieldConfig"]["defaults"]
    steps = defaults["thresholds"]["steps"]
    assert steps[0]["value"] is None  # the base colour
    levels = [s["value"] for s in steps[1:]]
    assert levels == sorted(levels)
    # The alert's threshold is the top step (red past it on the panel).
    assert math.isclose(levels[-1], value), (title, levels)
    if _by_title(title)["type"] == "timeseries":
        assert defaults["custom"]["thresholdsStyle"]["mode"] in {"line", "line+area", "area"}
    expr = next(r["expr"] for r in alert_rules() if r["alert"] == alert)
    # The alert compares with the same number (rate thresholds of 1 mean "any": "> 0").
    expected = 0 if alert == "BeaconwatchEvictingEstablishedPairs" else value
    assert f"> {expected:g}" in expr, (alert, expr)
