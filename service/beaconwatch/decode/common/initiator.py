"""Who started a connection, from what a flow record says about it (`FlowBatch.initiator`).

The rules, most certain first (each decoder applies those its format carries):

* Zeek: ``id.orig_h`` is the originator (``zeek_common``).
* IPFIX ``biflowDirection`` (IE 239; Filebeat's ``netflow.biflow_direction``): 1
  "initiator" means the record's source started the flow, 2 "reverseInitiator" its
  destination; 0 "arbitrary" and 3 "perimeter" say nothing about who started it.
  ``flowDirection`` (IE 61) is *not* used: it says whether the packets entered or left the
  observed interface (ingress/egress), not which end opened the connection.
* TCP flags (``tcp_flags``: goflow2, pmacct; ``netflow.tcp_control_bits``: Filebeat), the OR
  of the flags of the record's packets (one direction). A TCP record whose flags have SYN
  and not ACK was sent by the initiator: only the initiator sends a SYN without ACK (the
  answer is SYN+ACK, and every later segment of either side carries ACK). Such records are
  connection attempts that got no further inside the record: scans, refused or unanswered
  connections, or the first piece of a flow the exporter cut after its first packet.

What TCP flags cannot tell, and so is left to the port heuristic of ``core.scope``:

* SYN and ACK together: the initiator's direction (SYN, then ACKs) and the responder's
  (SYN+ACK, then ACKs) both OR to SYN|ACK. Even when the source port is a service port the
  record may be either the server's answer or a client that connected *from* a service port;
  the flags add nothing to what the ports already say.
* No SYN (the middle pieces of long flows cut by the active timeout, RST-only answers of a
  closed port, ACK scans): nothing.
* Simultaneous open (both ends send a bare SYN) would mark both records as initiators; it
  is vanishingly rare, and each record is then oriented by itself as a client.
* Exporters that do not fill the field write 0: nothing is inferred. Under packet sampling a
  record holds only the sampled packets: sampling can hide the evidence (the SYN was not
  sampled) but not invert it (a sampled bare SYN is still the initiator's).
"""

from __future__ import annotations

from numba import njit

from beaconwatch.domain.flows import INITIATOR_DST, INITIATOR_SRC, INITIATOR_UNKNOWN

TCP = 6
TCP_SYN = 0x02
TCP_ACK = 0x10
BIFLOW_INITIATOR = 1  # IPFIX biflowDirection values (IANA IE 239)
BIFLOW_REVERSE_INITIATOR = 2


@njit(cache=True, nogil=True)
def tcp_flags_initiator(proto: int, flags: int) -> int:
    """``INITIATOR_SRC`` for a TCP record whose cumulative flags have SYN and not ACK, else
    ``INITIATOR_UNKNOWN`` (see the module doc for why SYN+ACK says nothing)."""
    if proto == TCP and (flags & (TCP_SYN | TCP_ACK)) == TCP_SYN:
        return INITIATOR_SRC
    return INITIATOR_UNKNOWN


def biflow_initiator(direction: int) -> int:
    """The initiator an IPFIX ``biflowDirection`` value states, or ``INITIATOR_UNKNOWN``."""
    if direction == BIFLOW_INITIATOR:
        return INITIATOR_SRC
    if direction == BIFLOW_REVERSE_INITIATOR:
        return INITIATOR_DST
    return INITIATOR_UNKNOWN
