"""How ``auto`` tells a record's format from its first bytes, without parsing it.

The format specs (``registry``) name these predicates; they read bytes only and import nothing
of the decoders, so sniffing a record costs no decoder's start-up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

_JSON_OPENERS = (b"{", b"[")
_TSV_LINE_RE = re.compile(rb"\d{1,15}(?:\.\d{1,9})?\t")
_WIRE_TYPES = (0, 1, 2, 5)


def looks_like_json(record: bytes) -> bool:
    """A JSON object or array, maybe after a little leading white space."""
    return record[:1] in _JSON_OPENERS or record[:8].lstrip()[:1] in _JSON_OPENERS


def zeek_tsv_line(record: bytes) -> bool:
    """A Zeek TSV data line: a decimal ``ts`` then a tab."""
    return record[:1].isdigit() and _TSV_LINE_RE.match(record) is not None


def length_delimited_protobuf(record: bytes) -> bool:
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


JSON = "json"  # looks like JSON but matches no format's keys
UNKNOWN = "unknown"


class Sniffer:
    """Names a record's format by the registered sniffs, tried in their order: the formats'
    JSON keys when the record looks like JSON, else their byte tests."""

    def __init__(
        self,
        json_keys: Sequence[tuple[str, tuple[bytes, ...]]],
        tests: Sequence[tuple[str, Callable[[bytes], bool]]],
    ) -> None:
        self._json_keys = tuple(json_keys)
        self._tests = tuple(tests)

    def __call__(self, record: bytes) -> str:
        """The format name of one record, ``JSON`` for JSON of no known format, or
        ``UNKNOWN``. The search is for the quoted key anywhere in the record, which is cheap;
        a key inside an escaped string (``\\"id.orig_h\\"``) does not match it."""
        if looks_like_json(record):
            for name, keys in self._json_keys:
                if any(key in record for key in keys):
                    return name
            return JSON
        for name, test in self._tests:
            if test(record):
                return name
        return UNKNOWN
