"""Prefix channels: C2 whose destination IP rotates within a CDN or DNS round-robin.

Such an implant checks in to a different IP of one /24 (IPv6 /48) each time, so each exact
pair sees a check-in or two and none is periodic. Once a source has reached a second IP of a
(prefix, port, protocol) channel, the channel is promoted (`state.channel_index`: until then a
flow costs a hash and a look at one bucket, no row) and the detector feeds its flows a second
time with the destination masked to the prefix (`mask_prefix`), keyed with the level bit
(`state.levels`), to a prefix row that started as a copy of the first IP's pair; the same
kernels score it; prevalence counts a prefix's (promoted) sources too, so a CDN-fronted
service much of the fleet polls is down-ranked.

Name channels (`state.name_channels`): the same for a (source, destination name, port)
channel whose IPs span any number of prefixes (a CDN with many edges), fed by the name pass.

One alert per channel, decided per batch in event-time order (`ChannelGate`):

    name alert           always kept (its channel was promoted at a second IP); names the
                         last IP and how many the source reached it at
    exact-pair or prefix dropped while a name channel of its source and port has alerted
    alert                (reported) within the window before it: the name says it all
    prefix alert "new"   kept only when the prefix saw >= 2 destination IPs (tracked exact
                         pairs first seen by the alert and seen within the window before it),
                         and none of those pairs has itself alerted: else the exact pair
                         already says it all
    exact-pair alert     dropped when its prefix channel has alerted (reported) before it
    updates              follow their own "new" (dropped with it within a batch; after it,
                         a dropped row has forgotten its alert and cannot update)

A dropped alert's row forgets it (alert time, cooldown, last alerted figures), as if it never
crossed the threshold, so whether a row "has alerted" is always what was reported, and a row
kept quiet can still alert later, when the exact pair or the prefix becomes the only voice;
like an alerted row, it is not scored again for a cooldown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from numba import njit

from beaconwatch.alerting.alert import CHANNEL_NAME, CHANNEL_PREFIX, RULE_BEACON, Alert
from beaconwatch.domain.addresses import halves_to_ip, ip_to_halves, prefix_text
from beaconwatch.domain.dtypes import BOOL, I32, I64, U32, U64
from beaconwatch.domain.flows import IPV4_MAPPED_PREFIX, FlowBatch
from beaconwatch.domain.names import name_hash
from beaconwatch.state.hash_index import EMPTY, find_slot, key_hash
from beaconwatch.state.levels import (
    NAME_LEVEL,
    PORT_PROTO_MASK,
    PREFIX_LEVEL,
    V4_MASK,
    V6_MASK,
)
from beaconwatch.state.pair_table import ALERTED_SIZE, NEVER_MS, PairTable

_HIGH32 = np.uint64(0xFFFF_FFFF_0000_0000)

SINGLE_DESTINATION = "prefix_single_destination"  # a prefix alert of one IP: the pair's
PAIR_REPORTED = "prefix_pair_reported"  # a prefix alert whose member pair alerted already
PREFIX_REPORTED = "pair_prefix_reported"  # a pair alert whose prefix channel alerted already
NAME_REPORTED = "name_reported"  # a pair or prefix alert whose name channel alerted already
DUE_BY_TIME_ONLY = 0xFFFF_FFFF  # a row's scored_count that no connection count reaches


def mask_prefix(hi: U64, lo: U64) -> tuple[U64, U64]:
    """Destinations masked to their /24 (IPv4-mapped) or /48 (IPv6), as (hi, lo) halves."""
    v4 = (hi == 0) & ((lo & _HIGH32) == IPV4_MAPPED_PREFIX)
    masked_hi = np.where(v4, hi, hi & V6_MASK)
    masked_lo = np.where(v4, lo & V4_MASK, np.uint64(0))
    return masked_hi.astype(np.uint64), masked_lo.astype(np.uint64)


def prefix_flows(flows: FlowBatch) -> FlowBatch:
    """``flows`` with their destinations masked to the prefix, for the prefix pass."""
    dst_hi, dst_lo = mask_prefix(flows.dst_hi, flows.dst_lo)
    return dataclasses.replace(flows, dst_hi=dst_hi, dst_lo=dst_lo)


@njit(cache=True, nogil=True)
def _members_v4(
    index: I32, keys: U64, port_proto: U32,
    first_seen_ms: I64, last_seen_ms: I64,
    src_hi: np.uint64, src_lo: np.uint64, net_lo: np.uint64, pp: np.uint32, since_ms: int,
    until_ms: int, out: I32,
) -> int:  # fmt: skip
    """`_members` of an IPv4 /24: its 256 possible pairs looked up in the hash index, some
    microseconds whatever the table's size."""
    n = 0
    for host in range(256):
        dst_lo = net_lo | np.uint64(host)
        h = key_hash(src_hi, src_lo, np.uint64(0), dst_lo, pp)
        row = index[find_slot(index, keys, port_proto, h, src_hi, src_lo, np.uint64(0), dst_lo,
                              pp)]  # fmt: skip
        if row != EMPTY and first_seen_ms[row] <= until_ms and last_seen_ms[row] >= since_ms:
            out[n] = row
            n += 1
    return n


@njit(cache=True, nogil=True)
def _members(
    keys: U64, port_proto: U32, used: BOOL,
    first_seen_ms: I64, last_seen_ms: I64,
    src_hi: np.uint64, src_lo: np.uint64, net_hi: np.uint64, net_lo: np.uint64,
    mask_hi: np.uint64, mask_lo: np.uint64, pp: np.uint32, since_ms: int, until_ms: int,
    out: I32,
) -> int:  # fmt: skip
    """Rows of the exact pairs of a prefix channel (first seen by ``until_ms``, last seen from
    ``since_ms`` on): into ``out``, returns how many. For an IPv6 /48, one pass over the
    table (2^80 addresses cannot be looked up one by one): some ms per million rows."""
    n = 0
    for row in range(used.shape[0]):
        if (
            used[row]
            and port_proto[row] == pp
            and keys[row, 0] == src_hi
            and keys[row, 1] == src_lo
            and (keys[row, 2] & mask_hi) == net_hi
            and (keys[row, 3] & mask_lo) == net_lo
            and first_seen_ms[row] <= until_ms
            and last_seen_ms[row] >= since_ms
        ):
            out[n] = row
            n += 1
    return n


@njit(cache=True, nogil=True)
def _name_rows(
    keys: U64, port_proto: U32, used: BOOL, alert_ms: I64, src_hi: np.uint64, src_lo: np.uint64,
    pp: np.uint32, since_ms: int, out: I32,
) -> int:  # fmt: skip
    """Rows of the name channels of a source and port_proto (with NAME_LEVEL) that alerted
    from ``since_ms`` on: into ``out``, returns how many. One pass over the table, at a pair
    or prefix alert only."""
    n = 0
    for row in range(used.shape[0]):
        if (
            used[row]
            and port_proto[row] == pp
            and keys[row, 1] == src_lo
            and keys[row, 0] == src_hi
            and alert_ms[row] >= since_ms
        ):
            out[n] = row
            n += 1
    return n


class ChannelGate:
    """One alert per channel, over the alerts one batch of one table raised (module doc)."""

    def __init__(self, window_ms: int, cooldown_ms: int, rescore_interval_ms: int) -> None:
        self.window_ms = window_ms
        self.cooldown_ms = cooldown_ms
        self.rescore_interval_ms = rescore_interval_ms

    def members(
        self, table: PairTable, src: tuple[int, int], net: tuple[int, int], pp: int, at_ms: int
    ) -> np.ndarray:
        """Rows of the pairs (source ``src``, destination in prefix ``net``, port_proto
        ``pp`` without the level bit) first seen by ``at_ms`` and seen within the window
        before it."""
        src_hi, src_lo = np.uint64(src[0]), np.uint64(src[1])
        net_hi, net_lo = np.uint64(net[0]), np.uint64(net[1])
        since_ms, until_ms = at_ms - self.window_ms, at_ms
        if net[0] == 0 and (net[1] >> 32) == 0xFFFF:
            out = np.empty(256, dtype=np.int32)
            n = _members_v4(
                table.index, table.keys, table.port_proto, table.first_seen_ms,
                table.last_seen_ms, src_hi, src_lo, net_lo, np.uint32(pp), since_ms, until_ms,
                out,
            )  # fmt: skip
            return out[:n]
        out = np.empty(table.capacity, dtype=np.int32)
        n = _members(
            table.keys, table.port_proto, table.used, table.first_seen_ms, table.last_seen_ms,
            src_hi, src_lo, net_hi, net_lo, V6_MASK, np.uint64(0), np.uint32(pp), since_ms,
            until_ms, out,
        )  # fmt: skip
        return out[:n]

    def decide(
        self, table: PairTable, alerts: Sequence[tuple[Alert, int]]
    ) -> tuple[list[Alert], list[str]]:
        """(kept alerts, the reasons of the dropped ones) of one batch's (alert, row)s."""
        order = sorted(range(len(alerts)), key=lambda i: alerts[i][0].detected_ms)
        # Rows whose "new" alert of this batch is not decided yet have not alerted yet.
        pending = {row for alert, row in alerts if alert.lifecycle == "new"}
        kept: list[Alert] = []
        dropped: list[str] = []

        def reported(row: int) -> bool:
            return bool(table.first_alert_ms[row] != NEVER_MS) and row not in pending

        # Rows whose "new" of this batch was dropped: the kernel, not knowing, may have
        # updated it later in the batch; those go with it.
        gone: dict[int, str] = {}
        for i in order:
            alert, row = alerts[i]
            pending.discard(row)
            if alert.rule != RULE_BEACON:
                kept.append(alert)
                continue
            # The row may hold another pair by now (a full table the prefix pass made room
            # in): the alert is judged by its own key, and only its own row forgets it.
            held = _holds(table, row, alert)
            reason = gone.get(row) if held else None
            if reason is None:
                reason, alert = self._judge(table, alert, reported)
            if reason is None:
                kept.append(alert)
            else:
                dropped.append(reason)
                if held:
                    gone[row] = reason
                    self.forget(table, row, alert)
        return kept, dropped

    def _judge(
        self, table: PairTable, alert: Alert, reported: Callable[[int], bool]
    ) -> tuple[str | None, Alert]:
        src = ip_to_halves(alert.src_ip)
        pp = alert.dst_port << 8 | alert.proto
        if alert.channel == CHANNEL_NAME:
            return None, self._named(table, alert, src, pp)
        if table.name_channels is not None and table.name_channels.active:
            since_ms = alert.detected_ms - self.window_ms
            if any(reported(int(row)) for row in self.name_rows(table, src, pp, since_ms)):
                return NAME_REPORTED, alert
        if alert.channel != CHANNEL_PREFIX:
            net = _network(ip_to_halves(alert.dst_ip))
            prefix = table.find(src, net, pp | PREFIX_LEVEL)
            if prefix >= 0 and reported(prefix):
                return PREFIX_REPORTED, alert
            return None, alert
        net = ip_to_halves(alert.dst_prefix.split("/")[0])
        members = self.members(table, src, net, pp, alert.detected_ms)
        if alert.lifecycle == "new":
            if members.size < 2:
                return SINGLE_DESTINATION, alert
            if any(reported(int(m)) for m in members):
                return PAIR_REPORTED, alert
        if members.size == 0:  # an update after every member pair was evicted
            return None, alert
        latest = int(members[np.argmax(table.last_seen_ms[members])])
        keys = table.keys[latest]
        named = dataclasses.replace(
            alert, dst_ip=halves_to_ip(keys[2], keys[3]), dst_ips=int(members.size)
        )
        return None, named

    @staticmethod
    def name_rows(table: PairTable, src: tuple[int, int], pp: int, since_ms: int) -> np.ndarray:
        """Rows of the name channels of source ``src`` and port_proto ``pp`` (without the
        level bit) that alerted from ``since_ms`` on."""
        out = np.empty(table.capacity, dtype=np.int32)
        n = _name_rows(
            table.keys, table.port_proto, table.used, table.alert_ms, np.uint64(src[0]),
            np.uint64(src[1]), np.uint32(pp | NAME_LEVEL), since_ms, out,
        )  # fmt: skip
        return out[:n]

    @staticmethod
    def _named(table: PairTable, alert: Alert, src: tuple[int, int], pp: int) -> Alert:
        """A name alert with the last IP the source reached the name at, and how many."""
        if table.name_channels is None:
            return alert
        name = _name_of(alert.dst_domain)
        (dst_hi, dst_lo), ips = table.name_channels.latest(src, name, pp)
        if ips == 0 or (dst_hi, dst_lo) == (0, 0):  # lost from a full bucket: IP unknown
            return dataclasses.replace(alert, dst_ip="::", dst_ips=max(ips, 2))
        return dataclasses.replace(alert, dst_ip=halves_to_ip(dst_hi, dst_lo), dst_ips=ips)

    def forget(self, table: PairTable, row: int, alert: Alert) -> None:
        """The row has not alerted (no cooldown, no last alerted figures), and is not scored
        again for a cooldown, as if it had: a beacon's prefix row would otherwise raise its
        dropped alert again every few check-ins."""
        table.alert_ms[row] = NEVER_MS
        table.first_alert_ms[row] = NEVER_MS
        table.alerted[row, :ALERTED_SIZE] = 0.0
        # Due again by time only (`state.ingest`: after rescore_interval past scored_ms).
        table.scored_count[row] = DUE_BY_TIME_ONLY
        wait_ms = max(self.cooldown_ms, self.rescore_interval_ms)
        table.scored_ms[row] = max(
            int(table.scored_ms[row]), alert.detected_ms + wait_ms - self.rescore_interval_ms
        )


def _network(dst: tuple[int, int]) -> tuple[int, int]:
    hi, lo = mask_prefix(np.array([dst[0]], dtype=np.uint64), np.array([dst[1]], dtype=np.uint64))
    return int(hi[0]), int(lo[0])


def domain_text(table: PairTable, name: int) -> str:
    """A name row's destination name; its hash in hex when the text was not kept (a name
    book over its bound, a snapshot of an older version). The core hands it to alerting in
    the alert rows (`domain.alert_rows`)."""
    text = table.names.get(name)
    return text if text is not None else f"name-{name:016x}"


def _name_of(domain: str) -> int:
    """The hash of an alert's `dst_domain` (`domain_text`)."""
    if domain.startswith("name-"):
        return int(domain[5:], 16)
    return name_hash(domain)


def _holds(table: PairTable, row: int, alert: Alert) -> bool:
    """Whether ``row`` is still the pair (or prefix or name) that raised ``alert``."""
    if not table.used[row]:
        return False
    keys = table.keys[row]
    pp = int(table.port_proto[row])
    dst = prefix_text(keys[2], keys[3]) if pp & PREFIX_LEVEL else halves_to_ip(keys[2], keys[3])
    if pp & NAME_LEVEL:
        dst = domain_text(table, int(keys[2]))
    pp &= PORT_PROTO_MASK
    key = f"{halves_to_ip(keys[0], keys[1])}>{dst}:{pp >> 8}/{pp & 0xFF}".encode()
    return key == alert.pair_key
