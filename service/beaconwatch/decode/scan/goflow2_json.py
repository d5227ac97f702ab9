"""Decoder for goflow2 v2 ``-format=json`` records (one flat JSON object per Kafka record).

The batch is joined into one byte buffer and scanned by a numba kernel (``json_scan``) that
turns the plain goflow2 shape straight into columns. Records the kernel does not fully accept
go one by one through the reference path (``goflow2_record``: orjson + Python rules), which
either accepts them with the same values or rejects them with a precise reason. See
``goflow2_record`` for the field rules (time fallback, defaults, ranges), ``goflow2_names``
for the flow's name (a ``server_name`` key a goflow2 mapping file adds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.protocols import name_table
from beaconwatch.decode.scan.batch_scan import JoinedBatch, finish_batch, join_records, not_accepted
from beaconwatch.decode.scan.fast_reject import utf8_problems
from beaconwatch.decode.scan.goflow2_names import with_json_names
from beaconwatch.decode.scan.goflow2_record import decode_record
from beaconwatch.decode.scan.json_reject import judged_problems
from beaconwatch.decode.scan.json_scan import OK, SLOW, key_table, scan_batch
from beaconwatch.domain.flows import FlowBatch

DEFAULT_MAX_RECORD_BYTES = 64 * 1024

# A small valid record, decoded at construction so numba loads (or compiles) the kernels
# before the first real batch arrives.
_WARM_UP_RECORD = (
    b'{"type":"IPFIX","time_received_ns":1700000000000000000,"sampling_rate":0,'
    b'"time_flow_start_ns":1700000000000000000,"time_flow_end_ns":1700000000000000000,'
    b'"bytes":1,"packets":1,"src_addr":"10.0.0.1","dst_addr":"2001:db8::1","proto":"TCP",'
    b'"src_port":1,"dst_port":2,"as_path":[],"x":{"y":[true,false,null,-1,"z"]}}'
)


class Goflow2JsonDecoder:
    """``goflow2-json``: goflow2 v2 JSON flow records -> FlowBatch."""

    name = "goflow2-json"

    def __init__(
        self,
        *,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        unknown_proto: int | None = None,
        warm_up: bool = True,
    ) -> None:
        """``unknown_proto``: the number to store when ``proto`` is a name that maps to no
        single number (goflow2's ``"unknown"``/``""``...); None rejects such records."""
        if max_record_bytes < 1:
            raise ValueError("max_record_bytes must be >= 1")
        if unknown_proto is not None and not 0 <= unknown_proto <= 255:
            raise ValueError("unknown_proto must be in 0..255")
        self.max_record_bytes = max_record_bytes
        self.unknown_proto = unknown_proto
        self._keys, self._key_lens = key_table()
        self._names, self._name_lens, self._name_nums = name_table()
        self._bad_values: dict[tuple[int, bytes], tuple[str, str] | None] = {}  # json_reject
        if warm_up:
            self.decode([_WARM_UP_RECORD])

    def decode(self, records: Sequence[bytes]) -> DecodeResult:
        if not records:
            return DecodeResult(FlowBatch.empty(0), [])
        return self.decode_joined(join_records(records, self.max_record_bytes))

    def decode_joined(self, joined: JoinedBatch) -> DecodeResult:
        """`decode` of records already back to back in one buffer (a Kafka fetch)."""
        status, field, value_start, value_end, *scanned, name_start, name_end = scan_batch(
            joined.buf, joined.starts, joined.ends, self._keys, self._key_lens,
            self._names, self._name_lens, self._name_nums,
        )  # fmt: skip
        columns: list[npt.NDArray[Any]] = [np.asarray(column) for column in scanned]
        ok = status == OK
        read = ok.copy()  # finish_batch marks the reference path's rows ok too
        # Invalid UTF-8 (random bytes, binary records) decided for the whole batch at once.
        known = utf8_problems(
            joined.records, joined.buf, joined.starts, joined.ends,
            not_accepted(joined, status != SLOW),  # the records left to the reference
        )  # fmt: skip
        # Plain records the scanner judged bad (cut short, a missing or bad field).
        if not ok.all():
            known.update(judged_problems(
                joined.records, joined.starts, status, field, value_start, value_end,
                self.unknown_proto, self._bad_values,
            ))  # fmt: skip
        result = finish_batch(
            joined, ok, columns, self.max_record_bytes,
            lambda record: decode_record(record, self.max_record_bytes, self.unknown_proto),
            known,
        )  # fmt: skip
        # A name goflow2 was told to map (config/goflow2-names.yaml): `goflow2_names`.
        return with_json_names(result, joined.buf, read, name_start, name_end, joined.records)
