"""Zeek name notes (`state.name_notes`) in the partition's checkpoint (`state.snapshot`): a
conn record whose ssl record came before a kill is still named after the restore."""

from __future__ import annotations

import base64
import json
import struct
import zlib

import numpy as np
import pytest

from beaconwatch.alerting.alert import CHANNEL_NAME, Alert
from beaconwatch.config import Config
from beaconwatch.core.detector import Detector
from beaconwatch.decode.zeek.zeek_json import ZeekJsonDecoder
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.names import name_hash
from beaconwatch.simulate.encoders import zeek_json
from beaconwatch.state import snapshot
from beaconwatch.state.name_notes import DEFAULT_NOTE_PAIRS, NameNotes, NoteEntry
from beaconwatch.state.snapshot import SnapshotError
from tests.unit.flowgen import WALL_MS
from tests.unit.test_decode_zeek_names import C2, cdn_conns, http, ssl

DECODER = ZeekJsonDecoder()


def detector() -> Detector:
    return Detector(Config(), wall_clock_ms=lambda: WALL_MS)


def stream() -> list[bytes]:
    """A beacon across CDN edges as Zeek writes it: each connection's ssl record at its
    handshake, its conn record when it ends."""
    conns = cdn_conns("10.0.0.5", count=40)
    notes = [ssl(c.src_ip, c.dst_ip, C2, ts_s=c.start_ms / 1000) for c in conns]
    return [r for pair in zip(notes, zeek_json(conns), strict=True) for r in pair]


def feed(det: Detector, records: list[bytes], batch: int = 1) -> list[Alert]:
    alerts: list[Alert] = []
    for i in range(0, len(records), batch):
        alerts += det.process(DECODER.decode(records[i : i + batch]).flows).alerts
    return alerts


@pytest.mark.parametrize("cut", [5, 9, 15])  # odd: after an ssl record, before its conn
def test_a_conn_record_after_a_restore_is_named_by_the_ssl_record_before_it(cut: int) -> None:
    records = stream()
    # One record a batch: every conn record is named across batches, from the notes.
    expected = feed(detector(), records)
    assert [(a.channel, a.dst_domain) for a in expected if a.lifecycle == "new"] == [
        (CHANNEL_NAME, C2)
    ]
    before = detector()
    feed(before, records[:cut])
    data = before.snapshot_partition(0)
    after = detector()  # a new process: the killed one's state is only the snapshot
    after.restore_partition(0, data)
    notes = after.partition(0).notes
    assert notes.entries() == before.partition(0).notes.entries()
    resumed = feed(after, records[cut:])
    assert notes.named_total == (len(records) - cut + 1) // 2  # the first conn too
    # The alert comes after the cut (the 9th check-in), as if the process had never stopped.
    assert [(a.event_id, a.channel, a.dst_domain, a.stats.score) for a in resumed] == [
        (a.event_id, a.channel, a.dst_domain, a.stats.score) for a in expected
    ]


def test_the_name_text_survives_even_when_no_name_row_has_it_yet() -> None:
    # Only ssl records before the cut: no flow is named yet, the text is only in the notes.
    det = detector()
    det.process(DECODER.decode([http("10.1.2.30", "198.51.100.9", "Updates.Example.com")]).flows)
    assert len(det.table.names) == 0
    after = detector()
    after.restore_partition(0, det.snapshot_partition(0))
    key = (*ip_to_halves("10.1.2.30"), *ip_to_halves("198.51.100.9"))
    assert after.partition(0).notes.entries() == [
        (key, name_hash("updates.example.com"), "updates.example.com")
    ]


def test_notes_round_trip_in_order_and_old_snapshots_load_without_them() -> None:
    entries: list[NoteEntry] = [
        ((0, 0xFFFF_0A00_0000 + i, 1 << 63, i), name_hash(f"n{i % 3}.example"),
         f"n{i % 3}.example" if i % 5 else None)
        for i in range(1, 300)
    ]  # fmt: skip
    det = detector()
    data = snapshot.encode_table(det.table, entries, watermark_ms=None)
    restored = snapshot.decode_table(
        data, history_events=det.table.history_events, prevalence=det.prevalence,
        budget=det.budget, min_capacity=16,
    )  # fmt: skip
    # A text left out where the annotation had none, kept where another pair had it.
    assert restored.notes == [(k, h, t or f"n{i % 3}.example") for i, (k, h, t) in
                              enumerate(entries, 1)]  # fmt: skip
    assert restored.fields == {"watermark_ms": None}
    # No notes: no key, as written before notes were checkpointed; it restores none.
    plain = det.snapshot_partition(0)
    assert b'"notes"' not in plain and struct.unpack_from("<H", plain, 8)[0] == 1
    other = detector()
    other.restore_partition(0, plain)
    assert len(other.partition(0).notes) == 0


def test_a_restore_keeps_the_newest_notes_within_the_bound() -> None:
    notes = NameNotes(max_pairs=DEFAULT_NOTE_PAIRS + 10)
    h = name_hash("a.example")
    notes.load(((0, 0, 0, i), h, "a.example") for i in range(DEFAULT_NOTE_PAIRS + 10))
    det = detector()
    data = snapshot.encode_table(det.table, notes.entries())
    after = detector()
    after.restore_partition(0, data)
    kept = after.partition(0).notes.entries()
    assert len(kept) == DEFAULT_NOTE_PAIRS
    assert kept[0][0] == (0, 0, 0, 10) and kept[-1][0] == (0, 0, 0, DEFAULT_NOTE_PAIRS + 9)


def rewritten(data: bytes, change: object) -> bytes:
    """The snapshot with its header's "notes" replaced (and a valid checksum)."""
    head_len = struct.unpack_from("<I", data, 10)[0]
    head = json.loads(data[14 : 14 + head_len])
    head["notes"] = change
    head_bytes = json.dumps(head).encode()
    body = data[:10] + struct.pack("<I", len(head_bytes)) + head_bytes + data[14 + head_len : -4]
    return body + struct.pack("<I", zlib.crc32(body))


def test_damaged_notes_are_corrupt_and_change_nothing() -> None:
    det = detector()
    feed(det, stream()[:11], batch=4)
    data = det.snapshot_partition(0)
    good = json.loads(data[14 : 14 + struct.unpack_from("<I", data, 10)[0]])["notes"]
    pairs = base64.b64decode(good["pairs"])
    bad = {
        "not base64": {**good, "pairs": "@@@"},
        "part of a pair": {**good, "pairs": base64.b64encode(pairs[:-3]).decode()},
        "names not pairs": {**good, "names": [1, 2]},
        "no pairs": {"names": []},
        "not an object": [1, 2, 3],
    }
    target = detector()
    feed(target, stream()[:3])
    kept = target.partition(0).notes.entries()
    for what, change in bad.items():
        with pytest.raises(SnapshotError) as err:
            target.restore_partition(0, rewritten(data, change))
        assert err.value.reason == "corrupt", what
    assert target.partition(0).notes.entries() == kept
    target.restore_partition(0, rewritten(data, good))
    assert len(target.partition(0).notes) == len(np.frombuffer(pairs, "<u8")) // 5 == 6
