"""Orientation and scope of flows: (internal -> external) pairs, special addresses, NTP."""

from __future__ import annotations

import ipaddress

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from beaconwatch.config import NetworkConfig
from beaconwatch.core.addresses import halves_to_ip, ip_to_halves
from beaconwatch.core.flows import FlowBatch
from beaconwatch.core.networks import NetworkSet
from beaconwatch.core.scope import FlowScope, IgnoreReason
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
