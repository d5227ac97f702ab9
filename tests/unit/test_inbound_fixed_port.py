"""The fixed-port heuristic (`core.scope`, `state.ingest`): a pair whose turned-round TCP
records keep the internal host's port from one connection to the next is inbound-initiated."""

from __future__ import annotations

import numpy as np

from beaconwatch.config import Config
from beaconwatch.core.detector import Detector
from beaconwatch.core.scope import FlowScope
from beaconwatch.domain.flows import INITIATOR_TURNED, INITIATOR_UNKNOWN
from beaconwatch.state.pair_table import INFERRED, SERVER_SIDE
from tests.unit.flowgen import T0_MS, WALL_MS, FullRow, make_flows

INTERNAL, EXTERNAL = "10.0.0.5", "203.0.113.9"


def probes(*, src_port: int | None, dst_port: int, proto: int = 6, inbound: bool = True,
           count: int = 40, period_s: float = 300.0) -> list[FullRow]:  # fmt: skip
    """``count`` connections every ``period_s`` +/- 1 % between two high ports; ``src_port``
    None: the initiator takes a fresh ephemeral port each time. ``inbound``: the external end
    starts them (and the record says external -> internal), else the internal end does."""
    rng = np.random.default_rng(3)
    rows: list[FullRow] = []
    t = float(T0_MS)
    for i in range(count):
        t += period_s * 1000 * rng.uniform(0.99, 1.01)
        port = 33_000 + 7 * i if src_port is None else src_port
        src, dst = (EXTERNAL, INTERNAL) if inbound else (INTERNAL, EXTERNAL)
        rows.append((int(t), src, dst, dst_port, proto, 44, port, int(t)))
    return rows


def replay(rows: list[FullRow]) -> tuple[Detector, list[str]]:
    det = Detector(Config(), wall_clock_ms=lambda: WALL_MS)
    alerts = det.process(make_flows(rows)).alerts
    return det, [f"{a.src_ip}>{a.dst_ip}:{a.dst_port}/{a.proto}" for a in alerts]


def pair_flags(det: Detector) -> list[int]:
    t = det.table
    return [int(f) for f, used in zip(t.direction_inferred, t.used, strict=True) if used]


def test_scope_marks_inferred_records_it_turned_round() -> None:
    rows = probes(src_port=40_000, dst_port=50_050, count=1)
    rows += probes(src_port=None, dst_port=4444, inbound=False, count=1)
    scoped = FlowScope(Config().network).apply(make_flows(rows))
    assert scoped.flows.initiator.tolist() == [INITIATOR_TURNED, INITIATOR_UNKNOWN]
    again = FlowScope(Config().network).apply(scoped.flows)  # the detector scopes again
    assert again.flows.initiator.tolist() == [INITIATOR_TURNED, INITIATOR_UNKNOWN]
    assert np.array_equal(again.flows.src_port, scoped.flows.src_port)


def test_a_scan_from_a_fixed_port_without_flags_is_not_the_internal_hosts_beacon() -> None:
    det, alerts = replay(probes(src_port=40_000, dst_port=50_050))
    assert alerts == []
    assert pair_flags(det) == [INFERRED | SERVER_SIDE]


def test_a_beacon_seen_only_in_reply_records_still_alerts() -> None:
    # Ingress-only export of an outbound beacon to :4444: every record is external ->
    # internal, turned round, but the client's port changes with each connection.
    rows = probes(src_port=None, dst_port=4444, inbound=True)
    reply = [(t, s, d, sport, p, b, dport, e) for t, s, d, dport, p, b, sport, e in rows]
    det, alerts = replay(reply)
    assert alerts == [f"{INTERNAL}>{EXTERNAL}:4444/6"]
    assert pair_flags(det) == [INFERRED]


def test_a_fixed_port_on_outbound_records_or_udp_says_nothing() -> None:
    # The internal host's own records (not turned round) from a fixed port: still a client.
    _, alerts = replay(probes(src_port=40_000, dst_port=50_050, inbound=False))
    assert alerts == [f"{INTERNAL}>{EXTERNAL}:50050/6"]
    # UDP peers keep both ports either way (WireGuard 51820 <-> 51820): not inferred.
    det, alerts = replay(probes(src_port=51_820, dst_port=51_820, proto=17))
    assert alerts == [f"{INTERNAL}>{EXTERNAL}:51820/17"]
    assert pair_flags(det) == [INFERRED]


def test_a_port_that_changes_again_clears_the_server_side_mark() -> None:
    # Two connections on one internal port by chance, then fresh ports: scored again.
    rows = probes(src_port=None, dst_port=4444, inbound=True)
    reply = [(t, s, d, sport, p, b, dport, e) for t, s, d, dport, p, b, sport, e in rows]
    reply[1] = (*reply[1][:3], reply[0][3], *reply[1][4:])
    det, alerts = replay(reply)
    assert alerts == [f"{INTERNAL}>{EXTERNAL}:4444/6"]
    assert pair_flags(det) == [INFERRED]
