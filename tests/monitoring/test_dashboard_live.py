"""Every query of the Grafana dashboard and every selector of the alerting rules, run on a real
Prometheus (Debian's binary) that scrapes a real service on a real broker while simulated
traffic with planted beacons, garbage, duplicates and an allowlisted beacon goes through it.

A query that does not parse, or returns no series, fails the test with its panel's name; so
does a panel about ignored, merged or suppressed flows, dead letters or alerts that stays at
zero although this traffic has some of each."""

from __future__ import annotations

import asyncio
import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pytest

from beaconwatch.config import with_overrides
from beaconwatch.simulate import SimulationSpec, TrafficSimulator
from beaconwatch.simulate.garbage import garbage_records
from tests.monitoring.dashboard import panel_queries, substitute
from tests.monitoring.prometheus import JOB, SCRAPE_INTERVAL_S, PrometheusError, PrometheusServer
from tests.monitoring.test_rules import alert_rules

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration

SPEC = SimulationSpec(
    seed=15, hosts=20, beacons=3, duration_s=7_200, min_period_s=30, max_period_s=90
)
PARTS = 4  # the traffic goes in this many parts, a scrape or two apart, so rates move
# Panels whose metric this traffic must move (not only export): the query must reach > 0.
MUST_MOVE = (
    "beaconwatch_flows_consumed_total",
    "beaconwatch_flows_ignored_total",  # the simulated hosts' DNS to an internal resolver
    "beaconwatch_flows_merged_total",  # records produced twice
    "beaconwatch_alerts_suppressed_total",  # one planted beacon is allowlisted
    "beaconwatch_alerts_total",  # the other planted beacons
    "beaconwatch_dead_letter_records_total",  # garbage
    "beaconwatch_records_rejected_total",
)
_SELECTOR = re.compile(r"\b(beaconwatch_\w+|up)(\{[^}]*\})?")


def _max(result: list[dict[str, Any]]) -> float:
    values = [float(v) for series in result for _, v in series["values"]]
    return max((v for v in values if not math.isnan(v)), default=math.nan)


def traffic() -> tuple[list[tuple[bytes | None, bytes | None]], str]:
    """The records to produce, and the destination of the planted beacon to allowlist."""
    sim = TrafficSimulator(SPEC)
    good: list[tuple[bytes | None, bytes | None]] = [(r.key, r.value) for r in sim.records()]
    # 2 % garbage: BeaconwatchDeadLetters' 1 % is crossed, so the rule goes pending.
    garbage = garbage_records("goflow2-json", [v for _, v in good[:100] if v], len(good) // 50)
    records: list[tuple[bytes | None, bytes | None]] = []
    every = len(good) // len(garbage)
    for i, record in enumerate(good):
        records.append(record)
        if i % 20 == 0:
            records.append(record)  # redelivered at once: merged as a duplicate, not late
        if i % every == 0 and i // every < len(garbage):
            records.append((b"garbage", garbage[i // every][1]))
    return records, sim.planted[0].dst_ip


async def test_dashboard_queries_and_rules_on_a_real_prometheus(
    kit: KafkaTestKit, tmp_path: Path
) -> None:
    records, allowlisted = traffic()
    await kit.make_input_topic(2)
    config = with_overrides(
        kit.config(checkpoint_interval_s=1.0),
        allowlist=[{"destination": allowlisted, "comment": "suppressed on purpose"}],
    )
    async with kit.running(config) as run:
        assert run.service.metrics_url is not None
        target = urlparse(run.service.metrics_url).netloc
        prom = PrometheusServer(tmp_path, target)
        await asyncio.to_thread(prom.__enter__)
        try:

            async def ask(expr: str) -> list[dict[str, Any]]:
                return await asyncio.to_thread(prom.query, expr)

            deadline = time.monotonic() + 30
            while not await ask(f'up{{job="{JOB}"}} == 1'):
                assert time.monotonic() < deadline, "prometheus never scraped the service"
                await asyncio.sleep(0.2)
            start_s = time.time()
            part = -(-len(records) // PARTS)
            for i in range(0, len(records), part):
                await kit.produce(kit.names.input, records[i : i + part])
                await asyncio.sleep(2 * SCRAPE_INTERVAL_S)
            await kit.wait_until(lambda: run.consumed() == len(records), 60, "all consumed")
            await kit.drained(run)
            await asyncio.sleep(6 * SCRAPE_INTERVAL_S)  # rate windows past the end
            end_s = time.time()
            await check_panels(prom, start_s, end_s)
            await check_rules(prom)
            assert {a.dst_ip for a in run.alerts} & {allowlisted} == set()
        finally:
            await asyncio.to_thread(prom.__exit__, None, None, None)


async def check_panels(prom: PrometheusServer, start_s: float, end_s: float) -> None:
    range_s = math.ceil(end_s - start_s)
    failures = []
    for q in panel_queries():
        expr = substitute(q.expr, scrape_interval_s=SCRAPE_INTERVAL_S, range_s=range_s)
        where = f"panel {q.panel} query {q.ref} ({expr})"
        try:
            result = await asyncio.to_thread(prom.query_range, expr, start_s, end_s, 1)
        except PrometheusError as exc:
            failures.append(f"{where}: {exc}")
            continue
        if not result:
            failures.append(f"{where}: no series")
        elif any(m in expr for m in MUST_MOVE) and not _max(result) > 0:
            failures.append(f"{where}: never above 0 (max {_max(result)})")
    assert not failures, "\n".join(failures)


async def check_rules(prom: PrometheusServer) -> None:
    """Every rule evaluates without error, every series it selects exists on the real
    service, and the alerts in effect are the ones this run must cause."""
    groups = (await asyncio.to_thread(prom.api, "rules"))["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"] if r["type"] == "alerting"}
    assert set(loaded) == {r["alert"] for r in alert_rules()}
    failures = []
    for rule in alert_rules():
        name = rule["alert"]
        if loaded[name]["health"] != "ok":
            failures.append(f"{name}: {loaded[name]['health']} {loaded[name].get('lastError')}")
        for match in _SELECTOR.finditer(rule["expr"]):
            selector = match.group(0)
            if not await asyncio.to_thread(prom.query, f"count({selector})"):
                failures.append(f"{name}: {selector} selects no series of the service")
    assert not failures, "\n".join(failures)
    # The garbage is 2 % of the input: the dead-letter rule matches (pending: its `for` is
    # 10 minutes); a healthy service trips nothing else.
    active = {r["name"]: r["state"] for r in loaded.values() if r["state"] != "inactive"}
    assert active == {"BeaconwatchDeadLetters": "pending"}, active
