"""The score statistics an alert reports, as one table: where each comes from in the kernel's
alert row, how it is rounded, its unit, and its key in every encoding.

`make_alert` reads every statistic from where its row says (a statistic of the scored
window, or a column of the kernel's alert rows); ECS (`beacon.*`), OCSF
(`unmapped.beacon`) and the scan CSV lay them out from the table. A new statistic is a row
here and an attribute of `BeaconStats` below, plus the kernel that measures it (and its
mapping in deploy/elasticsearch, which tests hold to what the documents carry).

Rows are in `BeaconStats` order, which is the order of the CSV columns and of OCSF's
`unmapped.beacon`. ECS's `beacon` object lays out the rows group by group (`Group`), with
the alert's own fields after the score. Long-connection alerts carry only the rows marked
``long_connection`` (their other statistics describe no timing).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Protocol

from beaconwatch.domain.alert_rows import AlertRows
from beaconwatch.scoring.shape_names import shape_name
from beaconwatch.scoring.window_score import Stat

Value = float | int | bool | str
Encoding = Literal["ecs", "ocsf", "csv"]  # a `Statistic` field that holds that encoding's key


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert of the ingest kernel, as `AlertRules.make_alert` gets it."""

    alerts: AlertRows  # a batch's alerts (`domain.alert_rows`)
    i: int  # this alert's row of ``alerts``


class Source(Protocol):
    def read(self, alert: AlertRow) -> float: ...


@dataclass(frozen=True, slots=True)
class Scored:
    """A slot of the scored window's statistics (`score_window`)."""

    slot: Stat

    def read(self, alert: AlertRow) -> float:
        return float(alert.alerts.stats[alert.i, self.slot])


@dataclass(frozen=True, slots=True)
class Column:
    """A column of the alert rows (`AlertRows`): what the kernel adds to the window's
    statistics (prevalence, check-ins, ...) or the core copies from the pair's row."""

    name: str

    def read(self, alert: AlertRow) -> float:
        return float(getattr(alert.alerts, self.name)[alert.i])


class Kind(Enum):
    """What a statistic's float becomes in the alert."""

    FLOAT = "float"  # rounded to the row's digits, if any
    INT = "int"
    BOOL = "bool"
    SHAPE = "shape"  # a `Shape` code, reported by its name: none | subtractive | ...


class Group(Enum):
    """Where ECS's `beacon` object puts a statistic: the score first, then the alert's
    severity, lifecycle and series, the measurements, and the significance last."""

    SCORE = "score"
    MEASURE = "measure"
    SIGNIFICANCE = "significance"


@dataclass(frozen=True, slots=True)
class Statistic:
    """One row of the table."""

    name: str  # the `BeaconStats` attribute
    source: Source
    kind: Kind
    digits: int | None  # rounding of a FLOAT (None: as measured)
    unit: str  # "s", "bytes", "connections", "sources", "ratio" (in [0, 1]), "1:N", ""
    group: Group
    long_connection: bool  # carried by long-connection alerts too
    ecs: str  # key under ECS `beacon`
    ocsf: str  # key under OCSF `unmapped.beacon` (and `unmapped.long_connection`)
    csv: str  # scan CSV column

    def value(self, raw: float) -> Value:
        if self.kind is Kind.INT:
            return int(raw)
        if self.kind is Kind.BOOL:
            return bool(raw)
        if self.kind is Kind.SHAPE:
            return shape_name(raw)
        return raw if self.digits is None else round(raw, self.digits)

    def of(self, stats: BeaconStats) -> Value:
        """This statistic of an alert."""
        value: Value = getattr(stats, self.name)
        return value


def _row(
    name: str, source: Source, kind: Kind, digits: int | None, unit: str, *,
    group: Group = Group.MEASURE, long_connection: bool = False,
) -> Statistic:  # fmt: skip
    """A statistic under its own name in every encoding."""
    return Statistic(name, source, kind, digits, unit, group, long_connection, name, name, name)


FLOAT, INT, BOOL, SHAPE = Kind.FLOAT, Kind.INT, Kind.BOOL, Kind.SHAPE
SCORE, SIGNIFICANCE = Group.SCORE, Group.SIGNIFICANCE
STATISTICS: tuple[Statistic, ...] = (
    # name                     where from                             kind  digits  unit
    _row("score",              Scored(Stat.SCORE),                    FLOAT, 4, "ratio",
         group=SCORE, long_connection=True),
    _row("raw_score",          Column("raw_score"),                   FLOAT, 4, "ratio",
         group=SCORE),
    _row("period_s",           Scored(Stat.PERIOD_S),                 FLOAT, 3, "s"),
    _row("mean_interval_s",    Scored(Stat.MEAN_INTERVAL_S),          FLOAT, 3, "s"),
    _row("jitter_ratio",       Scored(Stat.JITTER_RATIO),             FLOAT, 4, "ratio"),
    _row("jitter_shape",       Scored(Stat.JITTER_SHAPE),             SHAPE, None, ""),
    _row("missed_ratio",       Scored(Stat.MISSED_RATIO),             FLOAT, 4, "ratio"),
    _row("connections",        Scored(Stat.CONNECTIONS),              INT, None, "connections"),
    _row("check_ins",          Column("check_ins"),                   INT, None, "connections"),
    _row("confidence",         Scored(Stat.CONFIDENCE),               FLOAT, 6, "ratio",
         group=SIGNIFICANCE),
    _row("size_regularity",    Scored(Stat.SIZE_REGULARITY),          FLOAT, 4, "ratio"),
    _row("timing_score",       Scored(Stat.TIMING_SCORE),             FLOAT, 4, "ratio"),
    _row("bytes_median",       Scored(Stat.BYTES_MEDIAN),             FLOAT, None, "bytes"),
    _row("prevalence",         Column("prevalence"),                  FLOAT, 4, "ratio",
         long_connection=True),
    _row("prevalence_sources", Column("prevalence_sources"),          INT, None, "sources",
         long_connection=True),
    _row("sampling_rate",      Column("sampling"),                    INT, None, "1:N"),
    _row("direction_inferred", Column("direction_inferred"),          BOOL, None, "",
         long_connection=True),
    _row("connections_per_check_in", Column("per_check_in"),          FLOAT, 2, "connections"),
)  # fmt: skip
STATISTIC = {s.name: s for s in STATISTICS}


@dataclass(frozen=True, slots=True)
class BeaconStats:
    """What the scoring kernels measured over one pair's window (times in seconds): one
    attribute per row of `STATISTICS`, in its order."""

    score: float  # final score in [0, 1], after prevalence
    raw_score: float  # score before prevalence down-ranking
    period_s: float  # nominal sleep: the upper edge, lower edge or centre of the jitter range
    mean_interval_s: float  # mean time between check-ins, missed ones folded
    jitter_ratio: float  # width of the jitter range relative to the period
    jitter_shape: str  # none | subtractive (Cobalt-Strike-like) | symmetric | additive
    missed_ratio: float  # share of expected check-ins that did not happen
    connections: int  # connections in the scored window
    check_ins: int  # connections since the pair was first seen (beyond the window, too)
    confidence: float  # 1 - p-value that the pair is periodic at all (vs Poisson arrivals)
    size_regularity: float  # in [0, 1]; tolerates padding of a few hundred bytes
    timing_score: float  # regularity of the folded intervals, in [0, 1]
    bytes_median: float
    prevalence: float  # share of internal sources that contact the destination
    prevalence_sources: int  # how many
    # Highest packet-sampling rate among the pair's flows (1 = unsampled; capped at 65535).
    # Above 1, missed check-ins and byte counts are not scored (scoring.sampled_scoring_params).
    sampling_rate: int = 1
    # Whether the direction (which end started the connections) was inferred from the ports
    # for any of the pair's flows, rather than read from the records (`core.scope`).
    direction_inferred: bool = False
    # Connections per check-in in the scored window: above 1 when check-ins come as bursts
    # (SYN retransmissions, parallel connections) and were scored as one each.
    connections_per_check_in: float = 1.0


if tuple(f.name for f in dataclasses.fields(BeaconStats)) != tuple(STATISTIC):
    raise TypeError("BeaconStats must have one attribute per row of STATISTICS, in order")


def read_statistics(alert: AlertRow) -> BeaconStats:
    """Every statistic of one kernel alert, from where the table says, as the table says."""
    values: dict[str, Any] = {s.name: s.value(s.source.read(alert)) for s in STATISTICS}
    return BeaconStats(**values)


def encoded(
    stats: BeaconStats, encoding: Encoding, *, group: Group | None = None,
    long_connection: bool = False,
) -> dict[str, Value]:  # fmt: skip
    """The statistics under ``encoding``'s keys, in table order: those of ``group`` (None:
    all), and only those long-connection alerts carry if ``long_connection``."""
    return {
        getattr(s, encoding): s.of(stats)
        for s in STATISTICS
        if (group is None or s.group is group) and (s.long_connection or not long_connection)
    }
