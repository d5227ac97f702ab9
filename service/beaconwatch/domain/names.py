"""Destination names (TLS SNI, HTTP host, DNS name) as 64-bit hashes, with their texts beside.

A flow's name is kept in `FlowBatch.name_hash` as the hash of its normalised text (lower case,
no trailing dot; 0 = no name), so the kernels compare and key on one integer; the texts travel
beside in a small dictionary hash -> text (`FlowBatch.names` per batch, `NameBook` per
partition, bounded) so that an alert can print the name.

The hash is the first 8 bytes of BLAKE2b of the UTF-8 text: the same in every process and on
every machine (it is written to checkpoints and to the internal topic), never 0.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping

NO_NAME = 0
# RFC 1035: a name is at most 253 characters in text. Longer is garbage or an attack on memory.
MAX_NAME_CHARS = 253
DEFAULT_BOOK_NAMES = 65_536  # names a partition keeps the text of (~100 B each)


@functools.lru_cache(maxsize=65_536)
def normalise(value: str) -> str | None:
    """The name as hashed (lower case, no trailing dot), or None when it is no usable name:
    empty, longer than 253 characters, with spaces, control characters or a lone surrogate."""
    name = value.lower().rstrip(".")
    if not name or len(name) > MAX_NAME_CHARS:
        return None
    if any(c.isspace() or not c.isprintable() for c in name):
        return None
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape
        return None
    return name


@functools.lru_cache(maxsize=65_536)
def name_hash(name: str) -> int:
    """The 64-bit hash of a normalised name (`normalise`); never `NO_NAME`."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


def hash_of(value: object) -> tuple[int, str | None]:
    """(hash, normalised text) of a field value; (NO_NAME, None) when it is no usable name."""
    if not isinstance(value, str):
        return NO_NAME, None
    name = normalise(value)
    if name is None:
        return NO_NAME, None
    return name_hash(name), name


class NameBook:
    """The texts of the names a partition has seen, hash -> text, at most ``max_names`` (the
    least recently added go first: a name still in use is added again with its flows)."""

    def __init__(self, max_names: int = DEFAULT_BOOK_NAMES) -> None:
        if max_names < 1:
            raise ValueError("max_names must be >= 1")
        self.max_names = max_names
        self._texts: OrderedDict[int, str] = OrderedDict()

    def add(self, names: Mapping[int, str] | Iterable[tuple[int, str]]) -> None:
        items = names.items() if isinstance(names, Mapping) else names
        texts = self._texts
        for h, text in items:
            if h in texts:
                texts.move_to_end(h)
            else:
                texts[h] = text
        while len(texts) > self.max_names:
            texts.popitem(last=False)

    def get(self, h: int) -> str | None:
        return self._texts.get(h)

    def items(self) -> list[tuple[int, str]]:
        return list(self._texts.items())

    def __len__(self) -> int:
        return len(self._texts)
