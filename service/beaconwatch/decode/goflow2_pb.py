"""Decoder for goflow2 v2 ``-format=bin`` records: one length-delimited ``flowpb.FlowMessage``
per Kafka record.

The batch is joined into one byte buffer and wire-scanned by a numba kernel (``pb_wire``)
straight into columns. Records the kernel does not fully accept go one by one through the
reference path (``goflow2_pb_record``: the protobuf runtime + the goflow2 field rules of
``goflow2_record``), which either accepts them with the same values or rejects them with a
precise reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from beaconwatch.core.flows import FLOW_COLUMNS, FlowBatch
from beaconwatch.decode.base import DecodeResult, Rejection, RejectReason
from beaconwatch.decode.goflow2_pb_record import decode_record, encode_varint
from beaconwatch.decode.goflow2_pb_schema import flow_message_class
from beaconwatch.decode.goflow2_record import FlowRow, Problem
from beaconwatch.decode.pb_wire import OK, field_kinds, scan_batch

# Full goflow2 records are ~80-200 bytes; anything this big is not a flow record.
DEFAULT_MAX_RECORD_BYTES = 64 * 1024
_ROW_COLUMNS = [name for name in FLOW_COLUMNS if name != "record_index"]  # FlowRow order


def delimited(message: bytes) -> bytes:
    """``message`` with its varint length prefix, as goflow2 writes it."""
    return encode_varint(len(message)) + message


class Goflow2PbDecoder:
    """``goflow2-pb``: goflow2 v2 protobuf flow records -> FlowBatch."""

    name = "goflow2-pb"

    def __init__(
        self, *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, warm_up: bool = True
    ) -> None:
        if max_record_bytes < 1:
            raise ValueError("max_record_bytes must be >= 1")
        self.max_record_bytes = max_record_bytes
        self.message_class: Any = flow_message_class()
        self._kinds = field_kinds()
        if warm_up:  # load (or compile) the kernels before the first real batch
            message = self.message_class(
                time_flow_start_ns=1, src_addr=b"\x0a\0\0\x01", dst_addr=bytes(16), as_path=[1]
            )
            self.decode([delimited(message.SerializeToString())])

    def decode(self, records: Sequence[bytes]) -> DecodeResult:
        n = len(records)
        if n == 0:
            return DecodeResult(FlowBatch.empty(0), [])
        lengths = np.fromiter(map(len, records), dtype=np.int64, count=n)
        sizes = lengths
        oversized = lengths > self.max_record_bytes
        if oversized.any():  # neither copied nor scanned; the slow path reports them
            records = [b"" if big else rec for rec, big in zip(records, oversized, strict=True)]
            lengths = np.where(oversized, 0, lengths)
        ends = np.cumsum(lengths)
        buf = np.frombuffer(b"".join(records), dtype=np.uint8)
        status, *scanned = scan_batch(buf, ends - lengths, ends, self._kinds)
        columns: list[npt.NDArray[Any]] = list(scanned)
        ok = status == OK
        rejections: list[Rejection] = []
        slow = np.flatnonzero(~ok)
        if slow.size:
            self._slow_path(records, slow, oversized, sizes, ok, columns, rejections)
        if ok.all():
            picked = dict(zip(_ROW_COLUMNS, columns, strict=True))
            return DecodeResult(FlowBatch(**picked, record_index=np.arange(n)), rejections)
        keep = np.flatnonzero(ok)
        picked = {name: col[keep] for name, col in zip(_ROW_COLUMNS, columns, strict=True)}
        return DecodeResult(FlowBatch(**picked, record_index=keep.astype(np.int64)), rejections)

    def _slow_path(
        self,
        records: Sequence[bytes],
        slow: npt.NDArray[np.intp],
        oversized: npt.NDArray[np.bool_],
        sizes: npt.NDArray[np.int64],
        ok: npt.NDArray[np.bool_],
        columns: list[npt.NDArray[Any]],
        rejections: list[Rejection],
    ) -> None:
        for index in slow.tolist():
            result: FlowRow | Problem
            if oversized[index]:
                detail = f"{sizes[index]} bytes > {self.max_record_bytes}"  # record was blanked
                result = Problem(RejectReason.OVERSIZED, detail)
            else:
                result = decode_record(records[index], self.max_record_bytes, self.message_class)
            if isinstance(result, Problem):
                rejections.append(Rejection(index, result.reason, result.detail))
                continue
            for column, value in zip(columns, result, strict=True):
                column[index] = value
            ok[index] = True
