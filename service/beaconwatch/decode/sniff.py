"""How ``auto`` tells a record's format from its first bytes, without parsing it.

The format specs (``registry``) name these predicates; they read bytes only and import nothing
of the decoders, so sniffing a record costs no decoder's start-up.
"""

from __future__ import annotations

import re

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
