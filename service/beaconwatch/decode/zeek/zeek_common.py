"""What the Zeek decoders share: conn.log field semantics and a columnar row accumulator.

A Zeek ``conn.log`` record is one whole (bidirectional) connection, logged when it ends. It
becomes one flow in the originator -> responder direction:

* ``start_ms`` = ``ts`` (time of the first packet), ``end_ms`` = ``ts + duration``
  (``duration`` is unset for connections without a second packet: then ``end_ms == start_ms``).
* ``src``/``dst`` = ``id.orig_h``/``id.resp_h``, ports ``id.orig_p``/``id.resp_p`` (for ICMP
  Zeek puts the ICMP type and code there; kept as written).
* ``proto``: ``tcp`` 6, ``udp`` 17, ``icmp`` 1, or 58 when the addresses are IPv6 (Zeek logs
  ICMPv6 as ``icmp`` too). ``unknown_transport`` uses the ``ip_proto`` column when the log
  has it (Zeek >= 7) and is rejected otherwise.
* ``bytes`` = ``orig_ip_bytes`` (IP-level bytes the originator sent, what NetFlow counts),
  falling back to ``orig_bytes`` (payload only) and then 0 when both are unset (Zeek sets
  them only with ``use_conn_size_analyzer``); ``packets`` = ``orig_pkts`` (unset: 1).
* ``sampling_rate`` = 1: Zeek sees every packet.

ssl.log and http.log records name a connection rather than being one: `NAME_FIELDS` holds
the field with the name, `note_name` turns it into the (hash, text) of an annotation row
(`state.name_notes`).

Times are passed through as written, even when they are not epoch times (Stratosphere's NjRAT
capture counts seconds from the capture start); the detector judges event time, not decoders.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import numpy as np

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.host_names import host_name_hash
from beaconwatch.decode.common.ip_text import MAX_IP_TEXT_LEN, parse_ip_many
from beaconwatch.decode.common.rows import DETAIL_MAX, show
from beaconwatch.decode.zeek.zeek_columns import NAME_FIELDS as NAME_FIELDS
from beaconwatch.domain.flows import INITIATOR_SRC, FlowBatch
from beaconwatch.domain.rejections import Rejection, RejectReason

DEFAULT_MAX_RECORD_BYTES = 64 * 1024

PROTO_NUMBERS: dict[str, int] = {"tcp": 6, "udp": 17, "icmp": 1}
TCP = 6
UNKNOWN_TRANSPORT = "unknown_transport"
_ICMP, _ICMPV6 = 1, 58
_MAPPED_HIGH_32 = 0xFFFF  # lo >> 32 of an IPv4-mapped address

# Zeek's ISO 8601 timestamps (JSON::TS_ISO8601): "2020-08-16T06:26:03.553287Z". Offsets other
# than Z are accepted too; a time without zone is taken as UTC.
_ISO_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?", re.ASCII
)
_FRACTION_RE = re.compile(r"\.(\d{1,9})")


def iso_to_ms(text: str) -> int | None:
    """ISO 8601 date-time -> epoch ms (floored), or None if it is not one."""
    if not _ISO_RE.fullmatch(text):
        return None
    # datetime keeps microseconds only: take the milliseconds from the text itself.
    fraction = _FRACTION_RE.search(text)
    base = _FRACTION_RE.sub("", text, count=1).replace(" ", "T")
    if base.endswith("Z"):
        base = base[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(base)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    millis = int((fraction.group(1) + "00")[:3]) if fraction else 0
    return int(moment.timestamp()) * 1000 + millis


def note_name(value: Any) -> tuple[int, str | None]:
    """(hash, normalised text) of an ssl ``server_name`` / http ``host`` value; (0, None)
    when it is no usable name (unset, an IP literal, garbage: `domain.names.normalise`)."""
    return host_name_hash(value)


def proto_number(name: str, ip_proto: int | None) -> int | None:
    """Zeek ``transport_proto`` name -> IANA number (ICMP fixed up later per address family)."""
    number = PROTO_NUMBERS.get(name)
    if number is not None:
        return number
    if name == UNKNOWN_TRANSPORT and ip_proto is not None and 0 <= ip_proto <= 255:
        return ip_proto
    return None


class ZeekRows:
    """Accumulates accepted rows (addresses still as text) and rejections of one batch.

    Addresses of the whole batch are parsed at the end in one numba call, so a decoder's
    per-record Python work is only splitting and number parsing.
    """

    __slots__ = (
        "_addr_ends", "_addrs", "_bytes", "_dport", "_end", "_index", "_names", "_notes",
        "_packets", "_proto", "_sport", "_start", "names", "rejections",
    )  # fmt: skip

    def __init__(self) -> None:
        self._index: list[int] = []
        self._start: list[int] = []
        self._end: list[int] = []
        self._sport: list[int] = []
        self._dport: list[int] = []
        self._proto: list[int] = []
        self._bytes: list[int] = []
        self._packets: list[int] = []
        self._addrs: list[bytes] = []  # src, dst, src, dst, ...
        self._names: list[int] = []  # name hash per row (ssl/http annotations), 0 = none
        self._notes: list[int] = []  # 1: an annotation row (`FlowBatch.annotation`)
        self.names: dict[int, str] = {}
        self.rejections: list[Rejection] = []

    def reject(self, index: int, reason: str, detail: str) -> None:
        self.rejections.append(Rejection(index, reason, detail[:DETAIL_MAX]))

    def add(
        self, index: int, start_ms: int, end_ms: int, src: bytes, dst: bytes, src_port: int,
        dst_port: int, proto: int, nbytes: int, packets: int, *, name_hash: int = 0,
        name: str | None = None, annotation: bool = False,
    ) -> None:  # fmt: skip
        self._index.append(index)
        self._names.append(name_hash)
        self._notes.append(int(annotation))
        if name is not None:
            self.names[name_hash] = name
        self._start.append(start_ms)
        self._end.append(max(end_ms, start_ms))
        self._addrs.append(src)
        self._addrs.append(dst)
        self._sport.append(src_port)
        self._dport.append(dst_port)
        self._proto.append(proto)
        self._bytes.append(nbytes)
        self._packets.append(packets)

    def finish(self) -> DecodeResult:
        n = len(self._index)
        if n == 0:
            return DecodeResult(FlowBatch.empty(0), self.rejections)
        # Over-long address text would only be rejected by the kernel; cut it so one hostile
        # field cannot blow up the joined buffer.
        addrs = [a if len(a) <= MAX_IP_TEXT_LEN else b"!" for a in self._addrs]
        lengths = np.fromiter(map(len, addrs), dtype=np.int64, count=2 * n)
        ends = np.cumsum(lengths)
        buf = np.frombuffer(b"".join(addrs), dtype=np.uint8)
        ok, hi, lo = parse_ip_many(buf, ends - lengths, ends)
        src_ok, dst_ok = ok[0::2], ok[1::2]
        good = src_ok & dst_ok
        index = np.asarray(self._index, dtype=np.int64)
        for k in np.flatnonzero(~good).tolist():
            which = 2 * k if not src_ok[k] else 2 * k + 1
            key = "id.orig_h" if not src_ok[k] else "id.resp_h"
            detail = f"{key}: not an IP address: {show(self._addrs[which].decode('latin-1'))}"
            self.reject(int(index[k]), RejectReason.INVALID_ADDRESS, detail)
        proto = np.asarray(self._proto, dtype=np.uint8)
        src_hi, src_lo = hi[0::2], lo[0::2]
        # Zeek logs ICMPv6 as "icmp": the address family tells which one it is.
        ipv6 = (src_hi != 0) | ((src_lo >> np.uint64(32)) != np.uint64(_MAPPED_HIGH_32))
        proto[(proto == _ICMP) & ipv6] = _ICMPV6
        flows = FlowBatch.from_columns(
            start_ms=np.asarray(self._start, dtype=np.int64),
            end_ms=np.asarray(self._end, dtype=np.int64),
            src_hi=src_hi, src_lo=src_lo, dst_hi=hi[1::2], dst_lo=lo[1::2],
            src_port=np.asarray(self._sport, dtype=np.uint16),
            dst_port=np.asarray(self._dport, dtype=np.uint16),
            proto=proto,
            bytes=np.asarray(self._bytes, dtype=np.uint64),
            packets=np.asarray(self._packets, dtype=np.uint64),
            sampling_rate=np.ones(n, dtype=np.uint32),
            record_index=index,
            initiator=np.full(n, INITIATOR_SRC, dtype=np.uint8),  # id.orig_h started it
            name_hash=np.asarray(self._names, dtype=np.uint64),
            annotation=np.asarray(self._notes, dtype=np.uint8),
            names=self.names,
        )  # fmt: skip
        if not good.all():
            flows = flows.take(good)
        return DecodeResult(flows, self.rejections)
