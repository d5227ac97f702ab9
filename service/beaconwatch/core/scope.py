"""Which flows the detector looks at, and which way round: pairs are (internal -> external),
from the host that started the connection to the one that answered.

Before any state is touched, every flow is oriented and filtered (vectorised, per batch).
First, who started the connection (the *client*):

    the record says so      Zeek's id.orig_h, IPFIX biflowDirection, a TCP SYN without ACK
                            (`FlowBatch.initiator`, `decode.initiator`); the direction is known
    else the ports say so   (`port_evidence`) a service port (< 1024, or one of
                            `SERVICE_PORTS`) against a non-service one: the service side is
                            the server
    else                    the internal end is taken as the client, as NetFlow reply
                            records of outbound connections would have it

The last two are *inferred*: alerts on pairs with such flows say so (`direction_inferred`).
Then, by where the client and the server are:

    client internal, server external   an outbound connection: the pair, client first (a
                                       reply record, exported as its own flow, is turned round)
    client external, server internal   started from outside (scanners, brute-forcers, clients
                                       of an internal server): ignored ("inbound_initiated"),
                                       never the internal host's beacon
    both internal                      kept only with network.track_internal_destinations
    both external                      ignored ("external_only": transit traffic)

Then flows whose ends are multicast, broadcast, link-local, loopback or unspecified are ignored
("special_address"), and so is UDP/123 to the configured NTP servers ("allowed_ntp"). With
network.ntp_any_server, UDP/123 whose packets are NTP-sized (network.ntp_max_packet_bytes) is
ignored whatever the server ("ntp_shaped"): pool.ntp.org hands every host different servers,
so no list of them can be configured, and ntpd/chrony poll them like clockwork (64-1024 s).
The cost: a C2 channel that mimics NTP exactly, in size too, is not scored; turn it off where
NTP must go to known servers only (then such traffic to other servers is scored like any pair).
Ignored flows are valid input: they are counted by reason, never dead-lettered.

The price of the port rule: a C2 client that connects *from* a service port to a non-service
port outside would be taken for a server and ignored (rare: below 1024 it needs privileges).
Between two non-service ports nothing is inferred and the internal end stays the client: an
ephemeral port against a lower one is not evidence enough, because C2 servers listen on high
ports too and NATs and BSDs hand out client ports below the Linux/Windows ephemeral ranges.
A connection from outside to a non-service port of an internal host therefore still counts as
the internal host's when its records do not name the initiator (each such connection has its
own external port, so it rarely forms a pair that scores), with one exception, decided per
pair in `state.ingest` from the records marked `INITIATOR_TURNED` (inferred and turned round):

    internal port fixed     a TCP client takes a fresh ephemeral source port for each
                            connection; when a pair's new TCP connection is a turned-round
                            record whose internal port is that of one of the pair's last two
                            connections, the internal host is the server: the pair is taken
                            as inbound-initiated (a scanner or brute-forcer re-probing one
                            port from a fixed source port, `masscan --source-port`) and not
                            scored, until a turned-round connection comes from another port.

Only TCP: UDP peers keep both ports fixed either way (NTP 123<->123, IKE 500<->500, WireGuard
51820<->51820), so a fixed internal port says nothing there. The price: a TCP C2 client that
binds one fixed source port for every connection, seen only in reply-direction records between
two non-service ports, is not scored (with both directions exported its own records, not
turned round, usually make the connections and the replies are duplicates).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from beaconwatch.config import NetworkConfig
from beaconwatch.domain.flows import (
    FLOW_COLUMNS,
    INITIATOR_DST,
    INITIATOR_SRC,
    INITIATOR_TURNED,
    INITIATOR_UNKNOWN,
    FlowBatch,
)
from beaconwatch.domain.networks import SPECIAL_CIDRS, NetworkSet

NTP_PORT = 123
TCP, UDP, SCTP = 6, 17, 132
# Servers listen on these besides the well-known ports (< 1024): databases, remote desktops,
# proxies, message brokers, VPNs. A client never picks them as its own port by chance more
# often than any other.
SERVICE_PORTS = np.array(
    [1080, 1194, 1433, 1521, 1701, 1723, 1812, 1883, 2049, 3128, 3268, 3306, 3389, 4500,
     5060, 5061, 5222, 5432, 5671, 5672, 5900, 5985, 5986, 6379, 6443, 8000, 8008, 8080,
     8443, 8883, 8888, 9000, 9092, 9200, 9443, 11211, 27017],
    dtype=np.uint16,
)  # fmt: skip
_IS_SERVICE = np.zeros(1 << 16, dtype=np.bool_)
_IS_SERVICE[:1024] = True
_IS_SERVICE[SERVICE_PORTS] = True


class IgnoreReason:
    EXTERNAL_ONLY = "external_only"
    INBOUND_INITIATED = "inbound_initiated"
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
        evidence = port_evidence(flows.src_port, flows.dst_port, flows.proto)
        initiator = flows.initiator
        inferred = initiator == INITIATOR_UNKNOWN
        src_client = np.where(
            inferred,
            np.where(evidence == 0, src_in | ~dst_in, evidence > 0),
            initiator != INITIATOR_DST,  # INITIATOR_TURNED: oriented already (scoped twice)
        )
        client_in = np.where(src_client, src_in, dst_in)
        server_in = np.where(src_client, dst_in, src_in)
        swap = ~src_client
        # Oriented client first; the initiator column now says whether the record knew it,
        # and whether an inferred record was turned round (`INITIATOR_TURNED`).
        known = np.where(inferred, INITIATOR_UNKNOWN, INITIATOR_SRC)
        turned = (inferred & swap) | (initiator == INITIATOR_TURNED)
        known = np.where(turned, INITIATOR_TURNED, known)
        flows = _swap_ends(flows, swap, known.astype(np.uint8))
        ignored: Counter[str] = Counter()
        keep = np.ones(len(flows), dtype=np.bool_)
        _drop(ignored, IgnoreReason.EXTERNAL_ONLY, keep, ~(src_in | dst_in))
        _drop(ignored, IgnoreReason.INBOUND_INITIATED, keep, ~client_in & server_in)
        src_in = client_in
        dst_in = server_in
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


def port_evidence(src_port: np.ndarray, dst_port: np.ndarray, proto: np.ndarray) -> np.ndarray:
    """Per flow: +1 when the ports say the source is the client (the destination's is a
    service port, the source's is not), -1 the destination, 0 when they say nothing (both or
    neither are service ports, or the protocol has no ports)."""
    ported = (proto == TCP) | (proto == UDP) | (proto == SCTP)
    src_service = _IS_SERVICE[src_port]  # a table look-up: a few ns per flow
    dst_service = _IS_SERVICE[dst_port]
    evidence = dst_service.astype(np.int8) - src_service.astype(np.int8)
    return np.where(ported, evidence, 0).astype(np.int8)


def _swap_ends(flows: FlowBatch, swap: np.ndarray, initiator: np.ndarray) -> FlowBatch:
    columns = {name: getattr(flows, name) for name in FLOW_COLUMNS}
    columns["initiator"] = initiator
    if swap.any():
        for a, b in (("src_hi", "dst_hi"), ("src_lo", "dst_lo"), ("src_port", "dst_port")):
            columns[a] = np.where(swap, getattr(flows, b), getattr(flows, a))
            columns[b] = np.where(swap, getattr(flows, a), getattr(flows, b))
    return FlowBatch(**columns, names=flows.names)
