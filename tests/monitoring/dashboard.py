"""The Grafana dashboard's panels and their PromQL, with Grafana's variables filled in."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tests.monitoring.tools import DASHBOARD

_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


@dataclass(frozen=True)
class PanelQuery:
    panel: str  # "<id> <title>"
    ref: str  # the target's refId
    expr: str  # as written in the dashboard, with Grafana variables


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return list(dashboard()["panels"])


def panel_queries() -> list[PanelQuery]:
    return [
        PanelQuery(f"{p['id']} {p['title']!r}", t["refId"], t["expr"])
        for p in panels()
        for t in p.get("targets", [])
    ]


def substitute(expr: str, *, scrape_interval_s: int, range_s: int) -> str:
    """Fill Grafana's built-in interval variables the way Grafana would for this scrape
    interval and time range; any other variable is an error (the dashboard defines none)."""
    rate_interval_s = 4 * scrape_interval_s  # Grafana: at least four scrape intervals
    values = {
        "__rate_interval": f"{rate_interval_s}s",
        "__interval": f"{scrape_interval_s}s",
        "__interval_ms": str(scrape_interval_s * 1000),
        "__range": f"{range_s}s",
        "__range_s": str(range_s),
        "__range_ms": str(range_s * 1000),
    }

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ValueError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(fill, expr)
