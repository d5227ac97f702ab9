"""Which flows the detector looks at, and which way round: pairs are (internal -> external).

Before any state is touched, every flow is oriented and filtered (vectorised, per batch):

    src internal, dst external   keep as is
    src external, dst internal   swap ends (and ports): the reply direction of a connection
                                 (NetFlow v5/v9 export each direction as its own record), or an
                                 inbound connection; either way the pair is the internal host's
    both internal                kept only with network.track_internal_destinations
    both external                ignored ("external_only": transit traffic)

Then flows whose ends are multicast, broadcast, link-local, loopback or unspecified are ignored
("special_address"), and so is UDP/123 to the configured NTP servers ("allowed_ntp"). With
network.ntp_any_server, UDP/123 whose packets are NTP-sized (network.ntp_max_packet_bytes) is
ignored whatever the server ("ntp_shaped"): pool.ntp.org hands every host different servers,
so no list of them can be configured, and ntpd/chrony poll them like clockwork (64-1024 s).
The cost: a C2 channel that mimics NTP exactly, in size too, is not scored; turn it off where
NTP must go to known servers only (then such traffic to other servers is scored like any pair).
Ignored flows are valid input: they are counted by reason, never dead-lettered.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from beaconwatch.config import NetworkConfig
from beaconwatch.core.flows import FLOW_COLUMNS, FlowBatch
from beaconwatch.core.networks import SPECIAL_CIDRS, NetworkSet

NTP_PORT = 123
UDP = 17


class IgnoreReason:
    EXTERNAL_ONLY = "external_only"
    INTERNAL_ONLY = "internal_only"
    SPECIAL_ADDRESS = "special_address"
    ALLOWED_NTP = "allowed_ntp"
    NTP_SHAPED = "ntp_shaped"


@dataclass(frozen=True, slots=True)
class Scoped:
    flows: FlowBatch  # oriented flows in scope, in input order
    ignored: Counter[str]  # flows out of scope, by IgnoreReason


class FlowScope:
    def __init__(self, config: NetworkConfig) -> None:
        self.internal = NetworkSet.of(config.internal_cidrs)
        self.special = NetworkSet.of(SPECIAL_CIDRS)
        self.ntp_servers = NetworkSet.of(config.ntp_servers)
        self.track_internal = config.track_internal_destinations
        self.ntp_any_server = config.ntp_any_server
        self.ntp_max_packet_bytes = config.ntp_max_packet_bytes

    def apply(self, flows: FlowBatch) -> Scoped:
        src_in = self.internal.contains(flows.src_hi, flows.src_lo)
        dst_in = self.internal.contains(flows.dst_hi, flows.dst_lo)
        swap = ~src_in & dst_in
        if swap.any():
            flows = _swap_ends(flows, swap)
        ignored: Counter[str] = Counter()
        keep = np.ones(len(flows), dtype=np.bool_)
        _drop(ignored, IgnoreReason.EXTERNAL_ONLY, keep, ~(src_in | dst_in))
        if not self.track_internal:
            _drop(ignored, IgnoreReason.INTERNAL_ONLY, keep, src_in & dst_in)
        special = self.special.contains(flows.src_hi, flows.src_lo) | self.special.contains(
            flows.dst_hi, flows.dst_lo
        )
        _drop(ignored, IgnoreReason.SPECIAL_ADDRESS, keep, special)
        ntp = (flows.proto == UDP) & (flows.dst_port == NTP_PORT)
        if ntp.any():
            configured = ntp & self.ntp_servers.contains(flows.dst_hi, flows.dst_lo)
            _drop(ignored, IgnoreReason.ALLOWED_NTP, keep, configured)
            if self.ntp_any_server:
                packets = np.maximum(flows.packets, 1).astype(np.uint64)
                small = flows.bytes <= packets * np.uint64(self.ntp_max_packet_bytes)
                _drop(ignored, IgnoreReason.NTP_SHAPED, keep, ntp & small)
        if keep.all():
            return Scoped(flows, ignored)
        return Scoped(flows.take(keep), ignored)


def _drop(ignored: Counter[str], reason: str, keep: np.ndarray, mask: np.ndarray) -> None:
    """Clear ``keep`` where ``mask``; count the flows this removes under ``reason``."""
    dropped = int(np.count_nonzero(keep & mask))
    if dropped:
        ignored[reason] += dropped
        keep &= ~mask


def _swap_ends(flows: FlowBatch, swap: np.ndarray) -> FlowBatch:
    columns = {name: getattr(flows, name) for name in FLOW_COLUMNS}
    for a, b in (("src_hi", "dst_hi"), ("src_lo", "dst_lo"), ("src_port", "dst_port")):
        columns[a] = np.where(swap, getattr(flows, b), getattr(flows, a))
        columns[b] = np.where(swap, getattr(flows, a), getattr(flows, b))
    return FlowBatch(**columns)
