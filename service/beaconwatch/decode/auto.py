"""``auto``: tell each record's format from its bytes and decode it with that format's decoder.

Per record (a Kafka value or a line of a file):

* JSON objects by their keys: goflow2 (``"time_flow_start_ns"``, ``"src_addr"``), Zeek conn
  (``"id.orig_h"``), pmacct (``"ip_src"``), ECS (``"source"``, ``"source.ip"``,
  ``"@timestamp"``), checked in that order. The search is for the quoted key, so a key that
  only appears inside an escaped string (``event.original``) does not count.
* A Zeek TSV data line (decimal ``ts`` then a tab) -> ``zeek-tsv`` with the default columns.
* Binary: a varint length prefix covering the rest of the record followed by a protobuf tag
  -> ``goflow2-pb`` (goflow2 ``-format=bin`` writes length-delimited FlowMessages).

Each format's keys or byte test is part of its spec in ``registry``, tried in the registry's
order (``registry.sniff_record``); the registry builds this decoder with it.

Records of each format go as one group to that format's decoder (built lazily from the
registry, so it works with whatever decoders are registered) and the results are merged back
in input order. A record whose format is unknown, or whose format has no decoder here, is
rejected as ``unknown_format``; text that starts like JSON but does not parse is
``invalid_json`` / ``not_an_object`` as with the JSON decoders.

Files: ``sniff_file`` looks at a file's first line; a Zeek TSV header (``#separator``) or a
CSV/TSV row of Zeek field names means the whole file is ``zeek-tsv`` with that header.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
import orjson

from beaconwatch.decode.base import Decoder, DecodeResult
from beaconwatch.decode.common.rows import DETAIL_MAX
from beaconwatch.decode.sniff import JSON, UNKNOWN
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.domain.rejections import Rejection, RejectReason

UNKNOWN_FORMAT = RejectReason.UNKNOWN_FORMAT


def sniff_file(first_line: bytes) -> str | None:
    """``"zeek-tsv"`` when a file's first line is a Zeek header; None: sniff per record."""
    from beaconwatch.decode.zeek.zeek_tsv import ZeekHeader

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
        return RejectReason.INVALID_JSON, str(exc)[:DETAIL_MAX]
    if not isinstance(obj, dict):
        return RejectReason.NOT_AN_OBJECT, f"JSON {type(obj).__name__}, not an object"
    return UNKNOWN_FORMAT, "JSON object with no field of a known flow format"


class AutoDecoder:
    """Sniffs each record's format and dispatches to the registered decoders."""

    name = "auto"

    def __init__(
        self,
        sniff: Callable[[bytes], str],
        build: Callable[[str], Decoder],
        available: Collection[str],
    ) -> None:
        """``sniff``: record -> format name (the registry's ``sniff_record``); ``build``:
        format name -> decoder; ``available``: the formats that may be built (``auto`` never)."""
        self._sniff = sniff
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
            groups.setdefault(self._sniff(bytes(record)), []).append(index)
        batches: list[FlowBatch] = []
        rejections: list[Rejection] = []
        for name, indexes in groups.items():
            decoder = self.decoder_for(name)
            if decoder is None:
                for i in indexes:
                    if name == JSON:
                        reason, detail = _explain_json(records[i])
                    elif name == UNKNOWN:
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


def _columns(flows: FlowBatch) -> dict[str, Any]:
    return {name: getattr(flows, name) for name in flows.__dataclass_fields__}
