"""The traffic hard cases run, and the ones the detector is built for come out right."""

from __future__ import annotations

import numpy as np
from evaluation.hard_cases import IMPLANT, PEER
from evaluation.traffic_cases import beacon, evaluate_traffic_cases, packet_sampled, syn_scan

from beaconwatch.config import Config, with_overrides
from beaconwatch.simulate.batch import to_batch
from beaconwatch.simulate.model import SimFlow

SCAN_FLAGS = "inbound SYN scan of :50050 every 5 min, one-direction export, TCP flags"
SCAN_BLIND = "inbound SYN scan of :50050 every 5 min, one-direction export, no flags"
MAIL = "mail polling: 20 hosts' IMAP/POP clients, one server, every 5 min"
VIDEO = "video segments: HLS/DASH, one every 2-10 s for 5-60 min"
DNS_FRESH_PORT = "DNS retries, a fresh source port per try: one flow per try"
SAMPLED_100 = "packet sampling 1:100: HTTPS beacon every 60 s"
SAMPLED_MAIL = "packet sampling 1:100: mail polling, 20 hosts, one server, every 5 min"
SAMPLED_VIDEO = "packet sampling 1:100: video segments, one every 2-10 s for 5-60 min"
SAMPLED_DNS = "packet sampling 1:10: DNS retries, a fresh source port per try"
SAMPLED_10 = "packet sampling 1:10: HTTPS beacon every 300 s"


def test_traffic_cases_with_the_detector_defaults() -> None:
    results = {c.name: c for c in evaluate_traffic_cases(Config(), runs=2)}
    assert len(results) == 13
    for name, case in results.items():
        assert case.runs == 2 and 0 <= case.alerted <= 2, name
        assert case.host_days and case.host_days > 0 and case.false_alerts is not None, name
    # The SYN scan's flows name the scanner as the initiator: never the internal host's pair.
    assert results[SCAN_FLAGS].alerted == 0 and results[SCAN_FLAGS].false_alerts == 0
    # The same scan without flags: the internal hosts' port stays fixed on turned-round
    # records, so they are the servers (`core.scope`, the fixed-port heuristic).
    assert results[SCAN_BLIND].alerted == 0 and results[SCAN_BLIND].false_alerts == 0
    assert results[MAIL].alerted == 0
    # Periodic segment fetching, but a bulk transfer (`scoring.window_score`).
    assert results[VIDEO].alerted == 0 and results[VIDEO].false_alerts == 0
    # Seed 1 alerted on the retries' 5 s timer before they were grouped (`scoring.bursts`).
    assert results[DNS_FRESH_PORT].alerted == 0 and results[DNS_FRESH_PORT].false_alerts == 0
    assert results[SAMPLED_10].alerted == 2 and results[SAMPLED_10].false_alerts == 0
    # 1:100 leaves ~11 % of the check-ins: found on their lattice (`scoring.lattice`).
    assert results[SAMPLED_100].alerted == 2 and results[SAMPLED_100].false_alerts == 0
    for name in (SAMPLED_MAIL, SAMPLED_DNS, SAMPLED_VIDEO):
        assert results[name].alerted == 0 and results[name].false_alerts == 0, name


def test_prevalence_is_what_holds_mail_polling_down() -> None:
    off = with_overrides(Config(), prevalence={"min_sources": 1000})
    results = {c.name: c for c in evaluate_traffic_cases(off, runs=1)}
    assert results[MAIL].alerted == 1


def test_the_scan_flows_carry_the_initiator_from_their_flags() -> None:
    rng = np.random.default_rng(0)
    flows = syn_scan(rng, 1, 300, 0x02)
    assert {f.src_ip for f in flows} == {PEER} and IMPLANT in {f.dst_ip for f in flows}
    assert set(to_batch(flows).initiator.tolist()) == {1}
    assert set(to_batch(syn_scan(rng, 1, 300, 0)).initiator.tolist()) == {0}


def test_packet_sampling_drops_whole_flows_and_keeps_sampled_counts() -> None:
    rng = np.random.default_rng(1)
    flows = beacon(rng, 60, 24)  # 12 packets per check-in
    sampled = packet_sampled(rng, flows, 100)
    share = len(sampled) / len(flows)
    assert abs(share - (1 - 0.99**12)) < 0.03  # P(at least one of 12 packets sampled)
    assert all(f.sampling_rate == 100 and 1 <= f.packets <= 12 for f in sampled)
    syn_only = [f for f in sampled if f.tcp_flags == 0x02]
    assert syn_only and all(f.packets >= 1 for f in syn_only)  # only the SYN was sampled
    one = SimFlow(0, 0, IMPLANT, PEER, 1, 2, "UDP", 100, 1)
    assert packet_sampled(rng, [one] * 1000, 1) == [one] * 1000  # 1:1 keeps everything
