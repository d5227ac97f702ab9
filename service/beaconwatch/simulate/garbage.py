"""Hostile records for storm tests and benchmarks: garbage derived from good records.

Each kind stands for a way real input goes bad: random bytes (corruption), a record cut short
(a producer killed mid-write, a too-small buffer), a field of the wrong type or range (a buggy
or differently-configured exporter), invalid UTF-8, a record in another collector's format (a
topic shared by mistake) and an oversized record. The decoders must reject each one, never
raise, and keep decoding the good records around it.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Sequence

import orjson

from beaconwatch.decode.scan.goflow2_pb import delimited
from beaconwatch.decode.scan.goflow2_pb_record import read_varint
from beaconwatch.decode.scan.goflow2_pb_schema import FIELDS
from beaconwatch.simulate.encoders import Goflow2PbEncoder

GARBAGE_KINDS: tuple[str, ...] = (
    "random_bytes", "truncated", "wrong_type", "invalid_utf8", "wrong_format", "oversized",
)  # fmt: skip
GARBAGE_FORMATS = ("goflow2-json", "goflow2-pb")
OVERSIZED_BYTES = 64 * 1024 + 1  # one byte over the decoders' default record limit
# goflow2 JSON fields given a value of the wrong type or range, in turn.
_JSON_WRONG = (
    ("bytes", "many"), ("src_port", 70_000), ("dst_addr", "10.0.0.300"),
    ("time_flow_start_ns", -1), ("proto", ["TCP"]), ("src_addr", 167_772_161),
)  # fmt: skip


def garbage_records(
    name: str, good: Sequence[bytes], count: int, *, seed: int = 0
) -> list[tuple[str, bytes]]:
    """``count`` unusable records for a ``name`` topic, as ``(kind, value)``, kinds in turn
    (`GARBAGE_KINDS`), derived from the ``good`` records of that topic: random bytes, a good
    record cut short, a field of the wrong type or range, invalid UTF-8 (for goflow2-pb,
    which has no text, a malformed varint instead), a record of another format, and an
    oversized record (one shared object: a storm of them costs no memory)."""
    if name not in GARBAGE_FORMATS:
        raise ValueError(f"garbage for {name!r} is not implemented; have {GARBAGE_FORMATS}")
    if not good:
        raise ValueError("need good records to derive garbage from")
    rng = random.Random(seed)
    pb = Goflow2PbEncoder()
    oversized = b"{" + b" " * OVERSIZED_BYTES + good[0][1:]
    out: list[tuple[str, bytes]] = []
    for k in range(count):
        kind = GARBAGE_KINDS[k % len(GARBAGE_KINDS)]
        record = good[k % len(good)]
        if kind == "random_bytes":
            value = rng.randbytes(rng.randint(40, 1_200))
        elif kind == "truncated":
            value = record[: rng.randint(1, len(record) - 1)]
        elif kind == "oversized":
            value = oversized
        elif name == "goflow2-pb":
            value = _pb_garbage(kind, record, pb, k)
        else:
            value = _json_garbage(kind, record, pb, k)
        out.append((kind, value))
    return out


def _json_garbage(kind: str, record: bytes, pb: Goflow2PbEncoder, k: int) -> bytes:
    obj = orjson.loads(record)
    if kind == "wrong_type":
        key, value = _JSON_WRONG[k // len(GARBAGE_KINDS) % len(_JSON_WRONG)]
        return orjson.dumps({**obj, key: value})
    if kind == "invalid_utf8":
        return record.replace(b'"IPFIX"', b'"IPF\xffIX"', 1)
    # wrong_format: the same flow as goflow2 -format=bin
    return pb.from_json_record(obj)


def _pb_garbage(kind: str, record: bytes, pb: Goflow2PbEncoder, k: int) -> bytes:
    length, body_at = read_varint(record, 0) or (0, 0)
    message = pb.message_class.FromString(record[body_at : body_at + length])
    if kind == "wrong_type":
        if k // len(GARBAGE_KINDS) % 2:
            message.dst_port = 70_000  # a uint32 beyond the port range
        else:
            message.src_addr = b"\x0a\x00\x01"  # 3 bytes: no address
        return delimited(message.SerializeToString())
    if kind == "invalid_utf8":
        return b"\xff" * 11 + record  # an 11-byte varint: no length prefix
    # wrong_format: the same flow as goflow2 JSON
    as_json = {f.name: getattr(message, f.name) for f in FIELDS if not f.repeated}
    for key in ("src_addr", "dst_addr", "sampler_address", "next_hop", "bgp_next_hop"):
        raw = as_json[key]
        as_json[key] = str(ipaddress.ip_address(raw)) if len(raw) in (4, 16) else ""
    return orjson.dumps(as_json)
