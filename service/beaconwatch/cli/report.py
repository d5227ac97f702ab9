"""Human-readable output for the demo: a live alert table and the end-of-run summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from beaconwatch.alerting.alert import Alert
from beaconwatch.scoring.shape_names import shape_name
from beaconwatch.simulate.model import PlantedBeacon

PairKey = tuple[str, str, int, int]  # src, dst, dst_port, IANA protocol number

_COLUMNS = (
    ("event time", 19),
    ("source", 15),
    ("destination:port", 21),
    ("period", 8),
    ("jitter", 7),
    ("conns", 5),
    ("score", 5),
    ("severity", 8),
)


def alert_pair(alert: Alert) -> PairKey:
    return (alert.src_ip, alert.dst_ip, alert.dst_port, alert.proto)


def beacon_pair(beacon: PlantedBeacon) -> PairKey:
    return (beacon.src_ip, beacon.dst_ip, beacon.dst_port, beacon.proto_number)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def header() -> str:
    return "  ".join(name.ljust(width) for name, width in _COLUMNS)


def alert_row(alert: Alert) -> str:
    s = alert.stats
    cells = (
        _utc(alert.detected_ms),
        alert.src_ip,
        f"{alert.dst_ip}:{alert.dst_port}",
        f"{s.period_s:.1f}s",
        f"{s.jitter_ratio * 100:.0f}%",
        str(s.connections),
        f"{s.score:.3f}",
        alert.severity,
    )
    return "  ".join(c.ljust(w) for c, (_, w) in zip(cells, _COLUMNS, strict=True))


@dataclass(slots=True)
class AlertTable:
    """Prints alerts as they arrive and remembers them for the summary."""

    out: TextIO
    alerts: list[Alert] = field(default_factory=list)

    def __call__(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            if not self.alerts:
                print(header(), file=self.out)
            self.alerts.append(alert)
            print(alert_row(alert), file=self.out, flush=True)


@dataclass(frozen=True, slots=True)
class Summary:
    caught: list[PlantedBeacon]
    missed: list[PlantedBeacon]
    unexpected: list[PairKey]  # alerted pairs that were not planted


def summarise(alerts: Sequence[Alert], planted: Sequence[PlantedBeacon]) -> Summary:
    alerted = {alert_pair(a) for a in alerts}
    planted_pairs = {beacon_pair(b) for b in planted}
    return Summary(
        caught=[b for b in planted if beacon_pair(b) in alerted],
        missed=[b for b in planted if beacon_pair(b) not in alerted],
        unexpected=sorted(alerted - planted_pairs),
    )


def format_summary(summary: Summary, n_alerts: int) -> str:
    total = len(summary.caught) + len(summary.missed)
    lines = [
        f"summary: {n_alerts} alerts; planted beacons caught {len(summary.caught)}/{total}; "
        f"alerts on non-planted pairs: {len(summary.unexpected)}"
    ]
    for b in summary.caught:
        lines.append(f"  caught  {_describe(b)}")
    for b in summary.missed:
        lines.append(f"  MISSED  {_describe(b)}")
    for src, dst, port, proto in summary.unexpected:
        lines.append(f"  UNEXPECTED alert  {src} -> {dst}:{port}/{proto}")
    return "\n".join(lines)


def _describe(b: PlantedBeacon) -> str:
    return (
        f"{b.src_ip} -> {b.dst_ip}:{b.dst_port}/{b.proto}  sleep {b.period_s:.0f}s "
        f"jitter {b.jitter:.0%} ({shape_name(b.style)})"
    )
