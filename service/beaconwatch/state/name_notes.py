"""Names learnt from annotations: Zeek ssl.log (``server_name``) and http.log (``host``).

Zeek's conn.log has no name, but its ssl.log and http.log records of the same connection do,
with the same ``id.orig_h``/``id.resp_h``. The Zeek decoder turns those records into
annotation rows (`FlowBatch.annotation`), not flows; per partition this table remembers the
last name each (source IP, destination IP) was reached under, with its text, and names the
later conn records of that pair (a conn record is written when its connection ends, after its
ssl/http record, often in a later batch).

Both must reach the same partition: fed on the same input topic (or one the service also
reads), the repartition stage partitions by source, which brings them together.

Bounded: at most ``max_pairs`` pairs (the least recently annotated go first). Checkpointed
with the partition (`state.snapshot`, `entries` / `load`), oldest first, so a restored
partition names a conn record whose ssl/http record came before the checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np

from beaconwatch.domain.flows import FlowBatch

DEFAULT_NOTE_PAIRS = 65_536  # ~200 B each

# (source hi, source lo, destination hi, destination lo): the halves of `FlowBatch`.
NoteKey = tuple[int, int, int, int]
# A pair, its name's hash and the name's text (None when the annotation came without it).
NoteEntry = tuple[NoteKey, int, str | None]


class NameNotes:
    """(source, destination) -> name hash and text, learnt from annotation rows (module doc)."""

    def __init__(self, max_pairs: int = DEFAULT_NOTE_PAIRS) -> None:
        if max_pairs < 1:
            raise ValueError("max_pairs must be >= 1")
        self.max_pairs = max_pairs
        self._names: OrderedDict[NoteKey, tuple[int, str | None]] = OrderedDict()
        self.learnt_total = 0  # annotations taken in
        self.named_total = 0  # flows named from them

    def __len__(self) -> int:
        return len(self._names)

    def entries(self) -> list[NoteEntry]:
        """Every pair with its name, the least recently annotated first (`load` order)."""
        return [(key, h, text) for key, (h, text) in self._names.items()]

    def load(self, entries: Iterable[NoteEntry]) -> None:
        """Take ``entries`` (oldest first) as if annotated in that order, after those held."""
        names = self._names
        for key, h, text in entries:
            if h == 0:
                continue
            names[key] = (h, text)
            names.move_to_end(key)
        self._trim()

    def split(self, flows: FlowBatch) -> FlowBatch:
        """Learn the annotation rows of ``flows``; the flows without them, the unnamed ones
        named where their pair was annotated before (in this batch or an earlier one)."""
        notes = flows.annotation != 0
        if notes.any():
            self._learn(flows.take(np.flatnonzero(notes)))
            flows = flows.take(np.flatnonzero(~notes))
        if not self._names or len(flows) == 0:
            return flows
        return self._apply(flows)

    def _learn(self, notes: FlowBatch) -> None:
        names = self._names
        texts = notes.names
        keys = zip(
            notes.src_hi.tolist(), notes.src_lo.tolist(), notes.dst_hi.tolist(),
            notes.dst_lo.tolist(), strict=True,
        )  # fmt: skip
        for key, name in zip(keys, notes.name_hash.tolist(), strict=True):
            if name == 0:
                continue
            names[key] = (name, texts.get(name))
            names.move_to_end(key)
            self.learnt_total += 1
        self._trim()

    def _trim(self) -> None:
        while len(self._names) > self.max_pairs:
            self._names.popitem(last=False)

    def _apply(self, flows: FlowBatch) -> FlowBatch:
        unnamed = np.flatnonzero(flows.name_hash == 0)
        if unnamed.size == 0:
            return flows
        get = self._names.get
        found = [
            get(key)
            for key in zip(
                flows.src_hi[unnamed].tolist(), flows.src_lo[unnamed].tolist(),
                flows.dst_hi[unnamed].tolist(), flows.dst_lo[unnamed].tolist(), strict=True,
            )
        ]  # fmt: skip
        named = np.asarray([f[0] if f is not None else 0 for f in found], dtype=np.uint64)
        if not named.any():
            return flows
        column = flows.name_hash.copy()
        column[unnamed] = named
        self.named_total += int(np.count_nonzero(named))
        # The texts go with the hashes: the ssl/http record may have been in an earlier batch
        # (or before a restore), and the alert prints the name.
        texts = dict(flows.names)
        for f in found:
            if f is not None and f[1] is not None:
                texts[f[0]] = f[1]
        return dataclasses.replace(flows, name_hash=column, names=texts)
