"""Ground truth of a synthetic scenario: what each flow is, and what each pair is.

A *pair* is what beaconwatch tracks: (source, destination, destination port, protocol). Every
flow carries a label kind and, for C2 traffic, the index of the beacon that sent it; a pair's
label is the strongest kind among its flows (beacon > benign_periodic > benign).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from beaconwatch.domain.dtypes import I32, I64, U8, U32, AnyArray
from beaconwatch.domain.flows import IPV4_MAPPED_PREFIX, FlowBatch
from beaconwatch.scoring.periodicity import Shape
from beaconwatch.simulate.implant import POLLING


class Kind(IntEnum):
    BENIGN = 0
    BENIGN_PERIODIC = 1  # one device's genuine periodic check-ins: reported apart from FPs
    BEACON = 2


# What generated a flow, to explain false alerts. Artefacts (copies of other flows) come last:
# a pair takes the lowest category among its flows, i.e. that of the traffic they copy.
CATEGORIES = (
    "c2", "browsing", "dns", "fleet_polling", "ntp", "active_timeout_split", "iot_periodic",
    "exporter_duplicate", "reverse_record",
)  # fmt: skip


# An implant's jitter model is one of the shapes the detector reads (`simulate.implant`).
SHAPE_NAMES = {
    Shape.SUBTRACTIVE: "subtractive (Cobalt Strike)",
    Shape.ADDITIVE: "additive (Sliver)",
    Shape.SYMMETRIC: "symmetric (Empire/PoshC2/Havoc)",
    POLLING: "polling (Meterpreter)",
}


@dataclass(frozen=True, slots=True)
class BeaconTruth:
    """One planted implant and what it actually did."""

    index: int
    shape: Shape
    period_s: int  # configured sleep S (whole seconds, as operators configure it)
    jitter: float  # fraction of S
    missed: float  # probability that a check-in is missed
    variant: str  # "grid", "sleep_change", "working_hours", "padding", "duplicated"
    src: int  # IPv4 as an int
    dst: int
    dst_port: int
    proto: int
    checkins: int  # check-ins that actually happened (after misses)
    first_ms: int  # first check-in
    last_ms: int
    period2_s: int = 0  # sleep after the mid-run change (variant "sleep_change")


@dataclass(frozen=True, slots=True)
class Scenario:
    """Flows in event-time order plus labels; ``flow_pair[i]`` indexes the pair arrays."""

    flows: FlowBatch
    flow_pair: I32
    pair_src: U32
    pair_dst: U32
    pair_port: npt.NDArray[np.uint16]
    pair_proto: U8
    pair_kind: U8
    pair_beacon: I32  # beacon index, -1 if none
    pair_flows: I64
    pair_category: U8  # index into CATEGORIES
    beacons: list[BeaconTruth]
    host_days: float  # internal hosts of the benign background x days
    start_ms: int
    end_ms: int

    @property
    def n_pairs(self) -> int:
        return int(self.pair_src.shape[0])

    def pair_index(self) -> dict[tuple[int, int, int, int], int]:
        """(src, dst, port, proto) -> pair id, for matching alerts back to labels."""
        return {
            (int(s), int(d), int(p), int(q)): i
            for i, (s, d, p, q) in enumerate(
                zip(self.pair_src, self.pair_dst, self.pair_port, self.pair_proto, strict=True)
            )
        }


@dataclass(slots=True)
class FlowColumns:
    """Growing lists of per-flow columns, one append per traffic generator (vectorised)."""

    start_ms: list[AnyArray]
    end_ms: list[AnyArray]
    src: list[AnyArray]
    dst: list[AnyArray]
    src_port: list[AnyArray]
    dst_port: list[AnyArray]
    proto: list[AnyArray]
    nbytes: list[AnyArray]
    kind: list[AnyArray]
    beacon: list[AnyArray]
    category: list[AnyArray]

    @classmethod
    def new(cls) -> FlowColumns:
        return cls([], [], [], [], [], [], [], [], [], [], [])

    def add(
        self,
        start_ms: npt.ArrayLike,
        end_ms: npt.ArrayLike,
        src: npt.ArrayLike,
        dst: npt.ArrayLike,
        src_port: npt.ArrayLike,
        dst_port: npt.ArrayLike,
        proto: npt.ArrayLike,
        nbytes: npt.ArrayLike,
        kind: Kind,
        category: str | npt.NDArray[np.uint8],
        beacon: int | I32 = -1,
    ) -> None:
        start = np.asarray(start_ms, dtype=np.int64)
        n = start.shape[0]

        def col(x: npt.ArrayLike, dtype: npt.DTypeLike) -> AnyArray:
            return np.broadcast_to(np.asarray(x).astype(dtype), (n,)).copy()

        self.start_ms.append(start)
        self.end_ms.append(col(end_ms, np.int64))
        self.src.append(col(src, np.uint32))
        self.dst.append(col(dst, np.uint32))
        self.src_port.append(col(src_port, np.uint16))
        self.dst_port.append(col(dst_port, np.uint16))
        self.proto.append(col(proto, np.uint8))
        self.nbytes.append(col(np.maximum(np.asarray(nbytes), 1), np.uint64))
        self.kind.append(np.full(n, int(kind), dtype=np.uint8))
        self.beacon.append(col(beacon, np.int32))
        code = CATEGORIES.index(category) if isinstance(category, str) else category
        self.category.append(col(code, np.uint8))

    def concat(self) -> dict[str, AnyArray]:
        return {
            name: np.concatenate(getattr(self, name)) if getattr(self, name) else np.empty(0)
            for name in (
                "start_ms", "end_ms", "src", "dst", "src_port", "dst_port", "proto", "nbytes",
                "kind", "beacon", "category",
            )
        }  # fmt: skip


INTERNAL_NET, INTERNAL_MASK = 0x0A00_0000, 0xFF00_0000  # the synthetic network is 10.0.0.0/8


def is_internal(ip: AnyArray) -> npt.NDArray[np.bool_]:
    inside: npt.NDArray[np.bool_] = (ip & np.uint32(INTERNAL_MASK)) == np.uint32(INTERNAL_NET)
    return inside


def ipv4_to_lo(ip: AnyArray) -> npt.NDArray[np.uint64]:
    """IPv4 ints -> the low half of FlowBatch's IPv4-mapped addresses."""
    return ip.astype(np.uint64) | IPV4_MAPPED_PREFIX


def assemble(
    columns: FlowColumns,
    beacons: list[BeaconTruth],
    host_days: float,
    start_ms: int,
    end_ms: int,
) -> Scenario:
    """Sort flows by start time, build the FlowBatch and the per-pair labels."""
    c = columns.concat()
    inside = (c["start_ms"] >= start_ms) & (c["start_ms"] < end_ms)  # sessions run past the end
    order = np.flatnonzero(inside)[np.argsort(c["start_ms"][inside], kind="stable")]
    c = {name: arr[order] for name, arr in c.items()}
    n = c["start_ms"].shape[0]
    # Pairs as the detector forms them: (internal -> external); a record from an external
    # address to an internal one (reply direction, v5/v9 export) belongs to the internal
    # host's pair, with the ends and ports swapped.
    swap = ~is_internal(c["src"]) & is_internal(c["dst"])
    src = np.where(swap, c["dst"], c["src"])
    dst = np.where(swap, c["src"], c["dst"])
    port = np.where(swap, c["src_port"], c["dst_port"])
    k1 = (src.astype(np.uint64) << np.uint64(32)) | dst.astype(np.uint64)
    k2 = (port.astype(np.uint32) << np.uint32(8)) | c["proto"].astype(np.uint32)
    by_pair = np.lexsort((k2, k1))
    k1s, k2s = k1[by_pair], k2[by_pair]
    new = np.ones(n, dtype=bool)
    if n:
        new[1:] = (k1s[1:] != k1s[:-1]) | (k2s[1:] != k2s[:-1])
    starts = np.flatnonzero(new)
    pair_of_sorted = np.cumsum(new) - 1
    flow_pair = np.empty(n, dtype=np.int32)
    flow_pair[by_pair] = pair_of_sorted
    first = by_pair[starts]
    pair_kind = np.maximum.reduceat(c["kind"][by_pair], starts) if n else np.empty(0, np.uint8)
    pair_beacon = np.maximum.reduceat(c["beacon"][by_pair], starts) if n else np.empty(0, np.int32)
    pair_flows = np.diff(np.append(starts, n)).astype(np.int64)
    pair_category = (
        np.minimum.reduceat(c["category"][by_pair], starts) if n else np.empty(0, np.uint8)
    )
    zeros = np.zeros(n, dtype=np.uint64)
    flows = FlowBatch.from_columns(
        start_ms=c["start_ms"],
        end_ms=c["end_ms"],
        src_hi=zeros,
        src_lo=ipv4_to_lo(c["src"]),
        dst_hi=zeros,
        dst_lo=ipv4_to_lo(c["dst"]),
        src_port=c["src_port"],
        dst_port=c["dst_port"],
        proto=c["proto"],
        bytes=c["nbytes"],
        packets=np.maximum(1, c["nbytes"] // 1200),
    )
    return Scenario(
        flows=flows,
        flow_pair=flow_pair,
        pair_src=src[first].astype(np.uint32),
        pair_dst=dst[first].astype(np.uint32),
        pair_port=port[first].astype(np.uint16),
        pair_proto=c["proto"][first].astype(np.uint8),
        pair_kind=pair_kind.astype(np.uint8),
        pair_beacon=pair_beacon.astype(np.int32),
        pair_flows=pair_flows,
        pair_category=pair_category.astype(np.uint8),
        beacons=beacons,
        host_days=host_days,
        start_ms=start_ms,
        end_ms=end_ms,
    )
