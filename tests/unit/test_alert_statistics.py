"""The table of score statistics (`alerting.statistics`): each row is read from its slot of the
kernel's alert row and reaches every encoding under its keys; one jitter `Shape` everywhere."""

from __future__ import annotations

import csv
import dataclasses
import io

import numpy as np
import orjson
import pytest
from evaluation import truth

from beaconwatch.alerting.alert import RULE_LONG_CONNECTION, Alert
from beaconwatch.alerting.ecs import to_ecs
from beaconwatch.alerting.ocsf import to_ocsf
from beaconwatch.alerting.statistics import (
    STATISTICS,
    AlertRow,
    BeaconStats,
    Column,
    Kind,
    Scored,
    Statistic,
    read_statistics,
)
from beaconwatch.cli.scan_output import AlertWriter
from beaconwatch.domain.alert_rows import AlertRows, new_alert_rows
from beaconwatch.scoring import periodicity
from beaconwatch.scoring.periodicity import Shape
from beaconwatch.scoring.shape_names import shape_name, shape_of
from beaconwatch.scoring.window_score import Stat
from tests.unit.golden_alerts import golden_alerts

ROW = 2  # the alert's row of the batch's alert rows


def _distinct_values(stat: Statistic, n: int) -> tuple[float, float]:
    """Two raw values that the statistic's kind and rounding keep apart."""
    if stat.kind is Kind.BOOL:
        return 0.0, 1.0
    if stat.kind is Kind.SHAPE:
        return float(Shape.SUBTRACTIVE), float(Shape.ADDITIVE)
    return 3.0 + n, 40.0 + n


def _kernel_row(overrides: dict[str, float]) -> AlertRow:
    empty = new_alert_rows(4, Stat.SIZE)
    alerts = AlertRows(*(np.zeros((4, *column.shape[1:]), column.dtype) for column in empty))
    for stat in STATISTICS:
        value = overrides.get(stat.name, 0.0)
        source = stat.source
        if isinstance(source, Scored):
            alerts.stats[ROW, source.slot] = value
        else:
            assert isinstance(source, Column)
            getattr(alerts, source.name)[ROW] = value
    return AlertRow(alerts, ROW)


def test_every_statistic_is_read_from_its_own_slot() -> None:
    # Each statistic's slot set apart from all others: each attribute follows its slot alone.
    base = {s.name: _distinct_values(s, n)[0] for n, s in enumerate(STATISTICS)}
    before = read_statistics(_kernel_row(base))
    for n, stat in enumerate(STATISTICS):
        changed = read_statistics(_kernel_row({**base, stat.name: _distinct_values(stat, n)[1]}))
        differs = [
            f.name
            for f in dataclasses.fields(BeaconStats)
            if getattr(before, f.name) != getattr(changed, f.name)
        ]
        assert differs == [stat.name]


def test_kinds_and_rounding_are_the_rows() -> None:
    raw = {s.name: 1.23456789 for s in STATISTICS}
    raw["jitter_shape"] = float(Shape.SYMMETRIC)
    got = read_statistics(_kernel_row(raw))
    for stat in STATISTICS:
        value = getattr(got, stat.name)
        if stat.kind is Kind.FLOAT:
            assert value == (1.23456789 if stat.digits is None else round(1.23456789, stat.digits))
        elif stat.kind is Kind.INT:
            assert value == 1 and type(value) is int
        elif stat.kind is Kind.BOOL:
            assert value is True
        else:
            assert value == "symmetric"


def test_the_table_is_consistent() -> None:
    names = [s.name for s in STATISTICS]
    assert names == [f.name for f in dataclasses.fields(BeaconStats)]
    for key in ("ecs", "ocsf", "csv"):
        keys = [getattr(s, key) for s in STATISTICS]
        assert len(set(keys)) == len(keys), f"two statistics share a {key} key"
    for stat in STATISTICS:
        assert stat.name.endswith("_s") == (stat.unit == "s"), stat.name  # names carry units
        assert stat.digits is None or stat.kind is Kind.FLOAT
    # Slots are the kernel's: no two statistics read one slot.
    sources = [s.source for s in STATISTICS]
    assert len(set(sources)) == len(sources)


def _beacon_and_long() -> tuple[Alert, Alert]:
    alerts = golden_alerts()
    beacon = next(a for a in alerts if a.rule != RULE_LONG_CONNECTION)
    long = next(a for a in alerts if a.rule == RULE_LONG_CONNECTION)
    return beacon, long


def _csv_rows(alerts: list[Alert]) -> list[dict[str, str]]:
    out = io.BytesIO()
    writer = AlertWriter(out, "csv", own=False)
    for alert in alerts:
        writer.write(alert)
    writer.close()
    return list(csv.DictReader(io.StringIO(out.getvalue().decode())))


@pytest.mark.parametrize("stat", STATISTICS, ids=lambda s: s.name)
def test_every_statistic_reaches_every_encoding(stat: Statistic) -> None:
    beacon, long = _beacon_and_long()
    for alert in (beacon, long):
        value = stat.of(alert.stats)
        ecs = orjson.loads(orjson.dumps(to_ecs(alert)))["beacon"]
        ocsf = orjson.loads(orjson.dumps(to_ocsf(alert)))["unmapped"]
        is_long = alert.rule == RULE_LONG_CONNECTION
        if not is_long or stat.long_connection:
            assert ecs[stat.ecs] == value
            assert ocsf["long_connection" if is_long else "beacon"][stat.ocsf] == value
        else:  # a long connection's timing statistics mean nothing: its documents omit them
            assert stat.ecs not in ecs and stat.ocsf not in ocsf["long_connection"]
    for alert, row in zip((beacon, long), _csv_rows([beacon, long]), strict=True):
        value = stat.of(alert.stats)
        cell = row[stat.csv]
        assert cell == (str(round(value, 6)) if isinstance(value, float) else str(value))


def test_one_jitter_shape_with_one_set_of_codes() -> None:
    # The kernels' plain ints (numba stores no IntEnum in a float array) are Shape's codes.
    for shape in Shape:
        assert getattr(periodicity, f"SHAPE_{shape.name}") == shape
        assert shape_of(shape_name(float(shape))) is shape
    assert shape_name(17.0) == "none" and shape_of("sliver") is Shape.NONE
    # The evaluation plants implants of the detector's shapes; polling is no jitter at all.
    assert truth.Shape is Shape and truth.POLLING is Shape.NONE
    assert set(truth.SHAPE_NAMES) == set(Shape)
