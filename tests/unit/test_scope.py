"""Orientation and scope of flows: (internal -> external) pairs, special addresses, NTP."""

from __future__ import annotations

import ipaddress

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from beaconwatch.config import NetworkConfig
from beaconwatch.core.scope import FlowScope, IgnoreReason, port_evidence
from beaconwatch.domain.addresses import halves_to_ip, ip_to_halves
from beaconwatch.domain.flows import (
    FLOW_COLUMNS,
    INITIATOR_DST,
    INITIATOR_SRC,
    INITIATOR_UNKNOWN,
    FlowBatch,
)
from beaconwatch.domain.networks import NetworkSet
from tests.unit.flowgen import FullRow, make_flows

T = 1_700_000_000_000


def row(
    src: str, dst: str, sport: int = 50000, dport: int = 443, proto: int = 6, nbytes: int = 100
) -> FullRow:
    return (T, src, dst, dport, proto, nbytes, sport, T)


def endpoints(flows: FlowBatch) -> list[tuple[str, str, int, int]]:
    src = [halves_to_ip(h, lo) for h, lo in zip(flows.src_hi, flows.src_lo, strict=True)]
    dst = [halves_to_ip(h, lo) for h, lo in zip(flows.dst_hi, flows.dst_lo, strict=True)]
    ports = zip(flows.src_port.tolist(), flows.dst_port.tolist(), strict=True)
    return [(s, d, sp, dp) for s, d, (sp, dp) in zip(src, dst, ports, strict=True)]


def test_reply_direction_is_turned_into_the_internal_hosts_pair() -> None:
    flows = make_flows([row("10.0.0.5", "203.0.113.9"), row("203.0.113.9", "10.0.0.5", 443, 50000)])
    scoped = FlowScope(NetworkConfig()).apply(flows)
    assert endpoints(scoped.flows) == [("10.0.0.5", "203.0.113.9", 50000, 443)] * 2
    assert list(scoped.flows.record_index) == [0, 1]
    assert not scoped.ignored


def test_out_of_scope_flows_are_counted_by_reason_not_lost() -> None:
    flows = make_flows([
        row("198.51.100.1", "203.0.113.9"),  # transit
        row("10.0.0.5", "10.0.0.6"),  # internal only
        row("10.0.0.5", "224.0.0.251", dport=5353, proto=17),  # multicast
        row("10.0.0.5", "169.254.10.1"),  # link-local destination
        row("10.0.0.5", "216.239.35.4", dport=123, proto=17),  # NTP to a configured server
        row("10.0.0.5", "198.51.100.77", dport=123, proto=17, nbytes=76),  # NTP to a pool server
        row("10.0.0.5", "198.51.100.77", dport=123, proto=17, nbytes=900),  # not NTP-sized
        row("fd00::5", "2001:db8::9"),  # ULA is internal by default
    ])  # fmt: skip
    scoped = FlowScope(NetworkConfig()).apply(flows)
    assert list(scoped.flows.record_index) == [6, 7]
    assert scoped.ignored == {
        IgnoreReason.EXTERNAL_ONLY: 1,
        IgnoreReason.INTERNAL_ONLY: 1,
        IgnoreReason.SPECIAL_ADDRESS: 2,
        IgnoreReason.ALLOWED_NTP: 1,
        IgnoreReason.NTP_SHAPED: 1,
    }


def test_ntp_sized_traffic_to_any_server_is_scored_when_only_configured_servers_are_allowed() -> (
    None
):
    pool = row("10.0.0.5", "198.51.100.77", dport=123, proto=17, nbytes=76)
    configured = row("10.0.0.5", "216.239.35.4", dport=123, proto=17, nbytes=76)
    flows = make_flows([pool, configured])
    scoped = FlowScope(NetworkConfig(ntp_any_server=False)).apply(flows)
    assert list(scoped.flows.record_index) == [0]
    assert scoped.ignored == {IgnoreReason.ALLOWED_NTP: 1}


def test_ntp_size_is_judged_per_packet() -> None:
    flows = make_flows([row("10.0.0.5", "198.51.100.77", dport=123, proto=17, nbytes=10 * 76)])
    flows.packets[:] = 10  # ten polls aggregated into one record: still NTP
    assert FlowScope(NetworkConfig()).apply(flows).ignored == {IgnoreReason.NTP_SHAPED: 1}


def test_internal_destinations_are_tracked_when_configured() -> None:
    flows = make_flows([row("10.0.0.5", "10.0.0.6")])
    config = NetworkConfig(track_internal_destinations=True, internal_cidrs=["10.0.0.0/8"])
    assert len(FlowScope(config).apply(flows).flows) == 1


addresses = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v))),
    st.integers(0, 2**128 - 1).map(lambda v: str(ipaddress.IPv6Address(v))),
)
networks = st.one_of(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
        lambda t: str(ipaddress.IPv4Network((t[0], t[1]), strict=False))
    ),
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
        lambda t: str(ipaddress.IPv6Network((t[0], t[1]), strict=False))
    ),
)


def _in(address: str, cidr: str) -> bool:
    """ipaddress semantics, except that IPv6 prefixes see IPv4 as ::ffff:a.b.c.d (as we do)."""
    addr, net = ipaddress.ip_address(address), ipaddress.ip_network(cidr)
    if addr.version == 4 and net.version == 6:
        return ipaddress.IPv6Address(int(addr) | 0xFFFF_0000_0000) in net
    return addr.version == net.version and addr in net


@given(st.lists(networks, max_size=4), st.lists(addresses, min_size=1, max_size=20))
def test_network_set_matches_ipaddress(cidrs: list[str], addrs: list[str]) -> None:
    nets = NetworkSet.of(cidrs)
    halves = [ip_to_halves(a) for a in addrs]
    hi = np.array([h for h, _ in halves], dtype=np.uint64)
    lo = np.array([v for _, v in halves], dtype=np.uint64)
    expected = [any(_in(a, c) for c in cidrs) for a in addrs]
    assert nets.contains(hi, lo).tolist() == expected


def with_initiator(flows: FlowBatch, initiator: int) -> FlowBatch:
    columns = {name: getattr(flows, name) for name in FLOW_COLUMNS}
    columns["initiator"] = np.full(len(flows), initiator, dtype=np.uint8)
    return FlowBatch(**columns)


def test_the_ports_say_who_started_the_connection() -> None:
    cases = {  # (src port, dst port, proto) -> +1 source is the client, -1 destination, 0 ?
        (50000, 443, 6): 1, (443, 50000, 6): -1,  # a service port against any other
        (51000, 23, 6): 1, (10647, 23, 6): 1, (23, 10647, 6): -1,
        (40000, 3389, 6): 1, (8883, 2000, 6): -1,  # registered service ports
        (50000, 4444, 6): 0, (4444, 50000, 6): 0,  # C2 servers listen on high ports too
        (20000, 50050, 6): 0,  # (and NATs and BSDs hand out client ports below 32768)
        (1500, 1177, 6): 0, (50000, 40000, 6): 0, (53, 53, 17): 0, (123, 123, 17): 0,
        (50000, 443, 1): 0, (0, 0, 50): 0,  # no ports: ICMP, ESP
    }  # fmt: skip
    src, dst, proto = (np.array(c) for c in zip(*cases, strict=True))
    got = port_evidence(src.astype(np.uint16), dst.astype(np.uint16), proto.astype(np.uint8))
    assert dict(zip(cases, got.tolist(), strict=True)) == cases


def test_inbound_connections_are_never_the_internal_hosts_pair() -> None:
    rows = [
        row("10.0.0.5", "203.0.113.9", 50000, 443),  # outbound
        row("203.0.113.9", "10.0.0.5", 443, 50000),  # its reply record
        row("198.51.100.7", "10.0.0.5", 10647, 23),  # a brute-forcer from a fixed port...
        row("10.0.0.5", "198.51.100.7", 23, 10647),  # ...and the telnet server's replies
        row("192.0.2.1", "10.0.0.6", 51000, 3389),  # RDP from outside
        row("10.0.0.5", "203.0.113.9", 1500, 1177),  # ports say nothing: internal = client
        row("203.0.113.9", "10.0.0.5", 1177, 1500),  # (its reply)
    ]
    scoped = FlowScope(NetworkConfig()).apply(make_flows(rows))
    assert (
        endpoints(scoped.flows)
        == [("10.0.0.5", "203.0.113.9", 50000, 443)] * 2
        + [("10.0.0.5", "203.0.113.9", 1500, 1177)] * 2
    )
    assert scoped.ignored == {IgnoreReason.INBOUND_INITIATED: 3}
    assert scoped.flows.initiator.tolist() == [INITIATOR_UNKNOWN] * 4  # all inferred


def test_a_record_that_names_its_initiator_is_believed_over_the_ports() -> None:
    # Zeek's id.orig_h: whoever the ports make look like a server, the originator started it.
    rows = [
        row("10.0.0.5", "203.0.113.9", 443, 50000),  # outbound from port 443 (ports: inbound)
        row("203.0.113.9", "10.0.0.5", 50000, 443),  # inbound to an internal web server
        row("198.51.100.7", "10.0.0.5", 1177, 1500),  # inbound, ports say nothing
    ]
    scoped = FlowScope(NetworkConfig()).apply(with_initiator(make_flows(rows), INITIATOR_SRC))
    assert endpoints(scoped.flows) == [("10.0.0.5", "203.0.113.9", 443, 50000)]
    assert scoped.ignored == {IgnoreReason.INBOUND_INITIATED: 2}
    assert scoped.flows.initiator.tolist() == [INITIATOR_SRC]
    # A reply record that says its destination started the connection is turned round.
    reply = with_initiator(make_flows([row("203.0.113.9", "10.0.0.5", 50000, 443)]), INITIATOR_DST)
    assert endpoints(FlowScope(NetworkConfig()).apply(reply).flows) == [
        ("10.0.0.5", "203.0.113.9", 443, 50000)
    ]


def test_scoping_twice_changes_nothing() -> None:
    # The repartition stage scopes, and the detector scopes the same flows again.
    rng = np.random.default_rng(7)
    hosts = ["10.0.0.5", "10.0.0.6", "203.0.113.9", "198.51.100.7"]
    rows = [
        row(hosts[int(rng.integers(4))], hosts[int(rng.integers(4))],
            int(rng.choice([23, 443, 1177, 1500, 3389, 40000, 50000])),
            int(rng.choice([23, 443, 1177, 1500, 3389, 40000, 50000])))
        for _ in range(300)
    ]  # fmt: skip
    scope = FlowScope(NetworkConfig(track_internal_destinations=True))
    for flows in (make_flows(rows), with_initiator(make_flows(rows), INITIATOR_SRC)):
        once = scope.apply(flows).flows
        twice = scope.apply(once)
        assert not twice.ignored
        for name in FLOW_COLUMNS:
            assert np.array_equal(getattr(twice.flows, name), getattr(once, name)), name
