"""Decoder for goflow2 v2 ``-format=bin`` records: one length-delimited ``flowpb.FlowMessage``
per Kafka record.

The batch is joined into one byte buffer and wire-scanned by a numba kernel (``pb_wire``)
straight into columns. Records the kernel does not fully accept go one by one through the
reference path (``goflow2_pb_record``: the protobuf runtime + the goflow2 field rules of
``goflow2_record``), which either accepts them with the same values or rejects them with a
precise reason. The flow's name: field 1000 that a goflow2 mapping file adds (``goflow2_names``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.scan.batch_scan import JoinedBatch, finish_batch, join_records, not_accepted
from beaconwatch.decode.scan.fast_reject import frame_problems
from beaconwatch.decode.scan.goflow2_names import NAME_FIELD, with_pb_names
from beaconwatch.decode.scan.goflow2_pb_record import decode_record, encode_varint
from beaconwatch.decode.scan.goflow2_pb_schema import flow_message_class
from beaconwatch.decode.scan.pb_reject import judged_problems
from beaconwatch.decode.scan.pb_wire import OK, SLOW, field_kinds, scan_batch
from beaconwatch.domain.flows import FlowBatch

# Full goflow2 records are ~80-200 bytes; anything this big is not a flow record.
DEFAULT_MAX_RECORD_BYTES = 64 * 1024


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
        self._bad_values: dict[tuple[int, int], tuple[str, str] | None] = {}  # pb_reject
        if warm_up:  # load (or compile) the kernels before the first real batch
            message = self.message_class(
                time_flow_start_ns=1, src_addr=b"\x0a\0\0\x01", dst_addr=bytes(16), as_path=[1]
            )
            self.decode([delimited(message.SerializeToString())])

    def decode(self, records: Sequence[bytes]) -> DecodeResult:
        if not records:
            return DecodeResult(FlowBatch.empty(0), [])
        return self.decode_joined(join_records(records, self.max_record_bytes))

    def decode_joined(self, joined: JoinedBatch) -> DecodeResult:
        """`decode` of records already back to back in one buffer (a Kafka fetch)."""
        status, field, value, *scanned, name_at, name_len = scan_batch(
            joined.buf, joined.starts, joined.ends, self._kinds, NAME_FIELD
        )
        ok = status == OK
        read = ok.copy()  # finish_batch marks the reference path's rows ok too
        # Bad length prefixes (random bytes, truncated or foreign records) decided in bulk.
        known = frame_problems(
            joined.buf, joined.starts, joined.ends, not_accepted(joined, status != SLOW)
        )
        # Well-formed messages the scanner found breaking a field rule.
        if not ok.all():
            known.update(judged_problems(status, field, value, self._bad_values))
        result = finish_batch(
            joined, ok, list(scanned), self.max_record_bytes,
            lambda record: decode_record(record, self.max_record_bytes, self.message_class),
            known,
        )  # fmt: skip
        # A name goflow2 was told to map (config/goflow2-names.yaml): `goflow2_names`.
        return with_pb_names(
            result, joined.buf, read, name_at, name_len, joined.records, self.message_class
        )
