"""``auto``: tell each record's format from its bytes and decode it with that format's decoder.

Per record (a Kafka value or a line of a file):

* JSON objects by their keys: goflow2 (``"time_flow_start_ns"``, ``"src_addr"``), Zeek conn
  (``"id.orig_h"``), pmacct (``"ip_src"``), ECS (``"source"``, ``"source.ip"``,
  ``"@timestamp"``), checked in that order. The search is for the quoted key, so a key that
  only appears inside an escaped string (``event.original``) does not count.
* A Zeek TSV data line (decimal ``ts`` then a tab) -> ``zeek-tsv`` with the default columns.
* Binary: a varint length prefix covering the rest of the record followed by a protobuf tag
  -> ``goflow2-pb`` (goflow2 ``-format=bin`` writes length-delimited FlowMessages).

Records of each format go as one group to that format's decoder (built lazily from the
registry, so it works with whatever decoders are registered) and the results are merged back
in input order. A record whose format is unknown, or whose format has no decoder here, is
rejected as ``unknown_format``; text that starts like JSON but does not parse is
``invalid_json`` / ``not_an_object`` as with the JSON decoders.

Files: ``sniff_file`` looks at a file's first line; a Zeek TSV header (``#separator``) or a
CSV/TSV row of Zeek field names means the whole file is ``zeek-tsv`` with that header.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence

import numpy as np
import orjson

from beaconwatch.decode.base import Decoder, DecodeResult, Rejection, RejectReason
from beaconwatch.domain.flows import FlowBatch

UNKNOWN_FORMAT = RejectReason.UNKNOWN_FORMAT

# (format, quoted keys that identify it), most specific first.
_JSON_KEYS: tuple[tuple[str, tuple[bytes, ...]], ...] = (
    ("goflow2-json", (b'"time_flow_start_ns"', b'"src_addr"', b'"time_received_ns"')),
    ("zeek-json", (b'"id.orig_h"', b'"orig_h"')),
    ("pmacct-json", (b'"ip_src"',)),
    ("ecs-json", (b'"source.ip"', b'"source"', b'"@timestamp"')),
)
_TSV_LINE_RE = re.compile(rb"\d{1,15}(?:\.\d{1,9})?\t")
_WIRE_TYPES = (0, 1, 2, 5)
_JSON = "json"  # looks like JSON but matches no format: parsed only to name the problem
_UNKNOWN = "unknown"


def _protobuf_length_prefixed(record: bytes) -> bool:
    """A varint length prefix that fits the record, then a plausible protobuf field tag."""
    length = 0
    for i in range(min(len(record), 5)):
        byte = record[i]
        length |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            body = i + 1
            if length == 0 or body + length != len(record):
                return False
            tag = record[body]
            return tag >> 3 >= 1 and (tag & 7) in _WIRE_TYPES
    return False


def sniff_record(record: bytes) -> str:
    """The format name of one record, ``"json"`` for unrecognised JSON-like text, or
    ``"unknown"``."""
    head = record[:1]
    if head in (b"{", b"[") or record[:8].lstrip()[:1] in (b"{", b"["):
        for name, keys in _JSON_KEYS:
            if any(key in record for key in keys):
                return name
        return _JSON
    if head.isdigit() and _TSV_LINE_RE.match(record):
        return "zeek-tsv"
    if _protobuf_length_prefixed(record):
        return "goflow2-pb"
    return _UNKNOWN


def sniff_file(first_line: bytes) -> str | None:
    """``"zeek-tsv"`` when a file's first line is a Zeek header; None: sniff per record."""
    from beaconwatch.decode.zeek_tsv import ZeekHeader

    return "zeek-tsv" if ZeekHeader.is_header_line(first_line) else None


def _explain_json(record: bytes) -> tuple[str, str]:
    """Why a JSON-looking record of no known format cannot be used."""
    try:
        obj = orjson.loads(record)
    except orjson.JSONDecodeError as exc:
        try:
            bytes(record).decode("utf-8")
        except UnicodeDecodeError as bad:
            return RejectReason.INVALID_UTF8, f"invalid UTF-8 at byte {bad.start}"
        return RejectReason.INVALID_JSON, str(exc)[:120]
    if not isinstance(obj, dict):
        return RejectReason.NOT_AN_OBJECT, f"JSON {type(obj).__name__}, not an object"
    return UNKNOWN_FORMAT, "JSON object with no field of a known flow format"


class AutoDecoder:
    """Sniffs each record's format and dispatches to the registered decoders."""

    name = "auto"

    def __init__(
        self,
        build: Callable[[str], Decoder] | None = None,
        available: Collection[str] | None = None,
    ) -> None:
        """``build``: format name -> decoder (default: the registry); ``available``: the
        formats that may be built (default: every registered one but ``auto``)."""
        if build is None or available is None:
            from beaconwatch.decode.registry import DECODERS, get_decoder

            build = build if build is not None else get_decoder
            available = available if available is not None else list(DECODERS)
        self._build = build
        self._available = frozenset(available) - {self.name}
        self._decoders: dict[str, Decoder] = {}

    def decoder_for(self, name: str) -> Decoder | None:
        if name not in self._available:
            return None
        decoder = self._decoders.get(name)
        if decoder is None:
            decoder = self._decoders[name] = self._build(name)
        return decoder

    def decode(self, records: Sequence[bytes]) -> DecodeResult:
        groups: dict[str, list[int]] = {}
        for index, record in enumerate(records):
            groups.setdefault(sniff_record(bytes(record)), []).append(index)
        batches: list[FlowBatch] = []
        rejections: list[Rejection] = []
        for name, indexes in groups.items():
            decoder = self.decoder_for(name)
            if decoder is None:
                for i in indexes:
                    if name == _JSON:
                        reason, detail = _explain_json(records[i])
                    elif name == _UNKNOWN:
                        reason, detail = UNKNOWN_FORMAT, "not a record of any known flow format"
                    else:
                        reason, detail = UNKNOWN_FORMAT, f"looks like {name}, not available"
                    rejections.append(Rejection(i, reason, detail))
                continue
            positions = np.asarray(indexes, dtype=np.int64)
            result = decoder.decode([records[i] for i in indexes])
            flows = result.flows
            if len(flows):
                remapped = positions[flows.record_index]
                batches.append(
                    FlowBatch(**{**_columns(flows), "record_index": remapped.astype(np.int64)})
                )
            rejections.extend(
                Rejection(indexes[r.record_index], r.reason, r.detail) for r in result.rejections
            )
        flows = FlowBatch.concat(batches)
        if len(batches) > 1:
            flows = flows.take(np.argsort(flows.record_index, kind="stable"))
        rejections.sort(key=lambda r: r.record_index)
        return DecodeResult(flows, rejections)


def _columns(flows: FlowBatch) -> dict[str, np.ndarray]:
    return {name: getattr(flows, name) for name in flows.__dataclass_fields__}
