"""Value types of the traffic models: one flow record, and the planted-beacon ground truth.

`SimFlow` is the one row type every traffic maker builds (the simulator, the evaluation's hard
and traffic cases, the tests' row builders); `simulate.batch.to_batch` turns rows into the
`FlowBatch` a decoder would make of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from beaconwatch.scoring.periodicity import Shape
from beaconwatch.scoring.shape_names import shape_name, shape_of
from beaconwatch.simulate.implant import interval_bounds_s

PROTO_NUMBERS: dict[str, int] = {"TCP": 6, "UDP": 17, "ICMP": 1}


class SimFlow(NamedTuple):
    """One unidirectional flow record as an exporter sends it (before any encoding).

    Rows sort by start time first (a NamedTuple compares field by field), which the simulator's
    heap and the evaluation's replays rely on.
    """

    start_ms: int
    end_ms: int
    src_ip: str
    dst_ip: str
    src_port: int
    dst_port: int
    proto: str  # goflow2 spelling: "TCP", "UDP"
    bytes: int
    packets: int
    tcp_flags: int = 0  # cumulative TCP flags; 0 = the exporter does not send them
    sampling_rate: int = 1  # 1:N packet sampling (packets/bytes are the sampled counts)

    @property
    def pair(self) -> tuple[str, str, int, str]:
        return (self.src_ip, self.dst_ip, self.dst_port, self.proto)


@dataclass(frozen=True, slots=True)
class PlantedBeacon:
    """Ground truth for one simulated implant: which pair beacons, and how."""

    src_ip: str
    dst_ip: str
    dst_port: int
    proto: str  # "TCP" / "UDP"
    period_s: float  # the configured sleep S
    jitter: float  # fraction of S, in [0, 1)
    # How the implant randomises its sleep S with jitter fraction j: subtractive (Cobalt
    # Strike: uniform in [S(1-j), S]), additive (Sliver: S + U[0, jS)), symmetric (S +/- jS).
    style: Shape
    bytes_mean: int  # typical check-in size

    @property
    def pair(self) -> tuple[str, str, int, str]:
        return (self.src_ip, self.dst_ip, self.dst_port, self.proto)

    @property
    def proto_number(self) -> int:
        return PROTO_NUMBERS[self.proto]

    def interval_bounds_s(self) -> tuple[float, float]:
        """Smallest and largest sleep the jitter model allows."""
        return interval_bounds_s(self.style, self.period_s, self.jitter)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["style"] = shape_name(self.style)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlantedBeacon:
        return cls(
            src_ip=str(data["src_ip"]),
            dst_ip=str(data["dst_ip"]),
            dst_port=int(data["dst_port"]),
            proto=str(data["proto"]),
            period_s=float(data["period_s"]),
            jitter=float(data["jitter"]),
            style=shape_of(str(data["style"])),
            bytes_mean=int(data["bytes_mean"]),
        )


def write_truth(path: str | Path, beacons: Sequence[PlantedBeacon]) -> None:
    Path(path).write_text(
        json.dumps([b.to_json() for b in beacons], indent=2) + "\n", encoding="utf-8"
    )


def read_truth(path: str | Path) -> list[PlantedBeacon]:
    items: Iterable[dict[str, Any]] = json.loads(Path(path).read_text(encoding="utf-8"))
    return [PlantedBeacon.from_json(item) for item in items]
