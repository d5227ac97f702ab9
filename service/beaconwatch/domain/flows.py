"""A batch of decoded flow records as NumPy columns (struct of arrays).

Every decoder produces a ``FlowBatch`` and the core consumes it; nothing downstream of the
decoders sees a Python object per flow. Addresses are 128-bit numbers split in two ``uint64``
halves: IPv6 as is, IPv4 as the IPv4-mapped IPv6 address ``::ffff:a.b.c.d`` (so ``hi == 0`` and
``lo == 0x0000_FFFF_xxxx_xxxx``). Times are event times in integer milliseconds since the Unix
epoch, taken from the flow record itself, never from the wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

# Column name -> dtype. The order is the canonical order used by `empty` and `concat`.
FLOW_COLUMNS: dict[str, npt.DTypeLike] = {
    "start_ms": np.int64,  # flow start, event time
    "end_ms": np.int64,  # flow end, event time (== start_ms when the format has no end)
    "src_hi": np.uint64,
    "src_lo": np.uint64,
    "dst_hi": np.uint64,
    "dst_lo": np.uint64,
    "src_port": np.uint16,
    "dst_port": np.uint16,
    "proto": np.uint8,  # IANA protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...)
    "bytes": np.uint64,
    "packets": np.uint64,
    "sampling_rate": np.uint32,  # 0 or 1 = unsampled
    "record_index": np.int64,  # index of the source record in the decoded input (for DLQ/offsets)
    # Which end started the connection, where the format says (`INITIATOR_*`): Zeek's
    # originator, IPFIX biflowDirection, a TCP SYN without ACK (`decode.initiator`). After
    # scoping (`core.scope`) the pair's internal host is the source, and this is
    # INITIATOR_SRC when the record said so, else INITIATOR_UNKNOWN (the direction was
    # inferred from the ports), or INITIATOR_TURNED when it was inferred and the record
    # turned round (the internal end was its destination).
    "initiator": np.uint8,
    # The destination's name where the format carries one (TLS SNI, HTTP host, DNS name):
    # `domain.names.name_hash` of it, 0 = none; its text is in `FlowBatch.names`.
    "name_hash": np.uint64,
    # 1: not a connection but a name annotation (a Zeek ssl.log/http.log record: this source
    # reached this destination under `name_hash`); the detector learns it and drops the row
    # (`state.name_notes`). 0 for every flow.
    "annotation": np.uint8,
}
INITIATOR_UNKNOWN = 0
INITIATOR_SRC = 1  # the record's source started the connection
INITIATOR_DST = 2  # its destination did: the record is the reply direction
# After scoping only: inferred, and the record turned round (`state.ingest` reads from it
# whether the internal host keeps one port across connections, i.e. is the server).
INITIATOR_TURNED = 3

IPV4_MAPPED_PREFIX = np.uint64(0x0000_FFFF_0000_0000)


@dataclass(frozen=True, slots=True)
class FlowBatch:
    start_ms: npt.NDArray[np.int64]
    end_ms: npt.NDArray[np.int64]
    src_hi: npt.NDArray[np.uint64]
    src_lo: npt.NDArray[np.uint64]
    dst_hi: npt.NDArray[np.uint64]
    dst_lo: npt.NDArray[np.uint64]
    src_port: npt.NDArray[np.uint16]
    dst_port: npt.NDArray[np.uint16]
    proto: npt.NDArray[np.uint8]
    bytes: npt.NDArray[np.uint64]
    packets: npt.NDArray[np.uint64]
    sampling_rate: npt.NDArray[np.uint32]
    record_index: npt.NDArray[np.int64]
    initiator: npt.NDArray[np.uint8]
    name_hash: npt.NDArray[np.uint64]
    annotation: npt.NDArray[np.uint8]
    # name_hash -> its normalised text, for the names of this batch (a superset after `take`).
    names: Mapping[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.start_ms.shape[0])

    @classmethod
    def empty(cls, n: int = 0) -> FlowBatch:
        """A batch of ``n`` zeroed rows, for decoders to fill in place."""
        columns: dict[str, Any] = {
            name: np.zeros(n, dtype=dtype) for name, dtype in FLOW_COLUMNS.items()
        }
        return cls(**columns)

    @classmethod
    def from_columns(cls, **columns: Any) -> FlowBatch:
        """Build a batch from array-likes, casting each to its canonical dtype.

        ``end_ms`` defaults to ``start_ms``; ``packets``/``sampling_rate`` default to 1,
        ``record_index`` to ``arange(n)``, ``initiator`` to unknown, ``name_hash`` to none,
        ``annotation`` to 0 (a flow); ``names`` (hash -> text) to none.
        """
        names: Mapping[int, str] = columns.pop("names", {})
        n = len(columns["start_ms"])
        columns.setdefault("end_ms", columns["start_ms"])
        columns.setdefault("packets", np.ones(n))
        columns.setdefault("sampling_rate", np.ones(n))
        columns.setdefault("record_index", np.arange(n))
        columns.setdefault("initiator", np.zeros(n))
        columns.setdefault("name_hash", np.zeros(n))
        columns.setdefault("annotation", np.zeros(n))
        arrays = {}
        for name, dtype in FLOW_COLUMNS.items():
            arr = np.ascontiguousarray(np.asarray(columns[name]).astype(dtype, copy=False))
            if arr.shape != (n,):
                raise ValueError(f"column {name!r} has shape {arr.shape}, expected ({n},)")
            arrays[name] = arr
        return cls(**arrays, names=names)

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> FlowBatch:
        """Rows selected by an integer index or a boolean mask."""
        if isinstance(index, np.ndarray) and index.dtype == np.bool_:
            # A mask is searched afresh by every column it indexes; positions are found once.
            index = np.flatnonzero(index)
        return FlowBatch(
            **{name: getattr(self, name)[index] for name in FLOW_COLUMNS}, names=self.names
        )

    @staticmethod
    def concat(batches: list[FlowBatch]) -> FlowBatch:
        if not batches:
            return FlowBatch.empty(0)
        if len(batches) == 1:
            return batches[0]
        names: dict[int, str] = {}
        for b in batches:
            names.update(b.names)
        return FlowBatch(
            **{name: np.concatenate([getattr(b, name) for b in batches]) for name in FLOW_COLUMNS},
            names=names,
        )
