"""The labelled third-party captures in ``../shared/data`` (see its README.md), replayed.

Each log is decoded with the ``zeek-tsv`` decoder, sorted by start time (Zeek writes conn.log
lines when connections end, so the file is not in start order) and fed to the detector with
the dataset's internal network. Per alerted pair we report the labels of its records and how
regular it is, so every alert can be checked by hand.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beaconwatch.alerting.alert import CHANNEL_PREFIX
from beaconwatch.config import Config, with_overrides
from beaconwatch.domain.addresses import halves_to_ip
from evaluation.runner import run_detector


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    path: str  # relative to the data directory
    internal_cidrs: tuple[str, ...]
    expect: str  # what a correct detector does on it
    must_alert: tuple[str, str, int, int] | None = None  # (src, dst, port, proto)
    focus_host: str | None = None  # only alerts of this source are judged


DATASETS = (
    Dataset(
        "NjRAT (Stratosphere CTU-Malware-Capture-Botnet-230-1, first 1,000 lines)",
        "stratosphere-njrat/conn.log.labeled",
        ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
        "alert on the C2 channel 192.168.1.115 -> 41.108.179.197:1177/tcp",
        must_alert=("192.168.1.115", "41.108.179.197", 1177, 6),
    ),
    Dataset(
        "Benign Windows host (Stratosphere CTU-Normal-40, day 1)",
        "stratosphere-windows-benign/conn.log.labeled",
        ("147.32.0.0/16",),
        "no alert on 147.32.81.167's outbound pairs, unless periodic and benign",
        focus_host="147.32.81.167",
    ),
    Dataset(
        "Philips Hue bridge (IoT-23 CTU-Honeypot-Capture-4-1)",
        "iot23-philips-hue/CTU-Honeypot-Capture-4-1-labeled.csv",
        ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
        "benign; periodic NTP and hourly cloud check-ins may alert (benign periodic)",
    ),
)


@dataclass(frozen=True, slots=True)
class PairReport:
    src: str
    dst: str
    dst_port: int
    proto: int
    alerts: int
    first_score: float
    period_s: float
    connections: int
    labels: dict[str, int]  # label -> records of the pair (either direction)
    long_connection_s: float = 0.0  # the first alert was a long connection (its duration)
    via: str = ""  # a prefix channel's first alert: "203.0.113.0/24, 3 IPs" (dst: its last IP)


@dataclass(frozen=True, slots=True)
class DatasetResult:
    dataset: Dataset
    records: int
    flows: int
    rejected: int
    alerts: list[PairReport]
    must_alert_hit: bool | None
    pair_count: int


def evaluate_dataset(ds: Dataset, data_dir: Path, config: Config) -> DatasetResult:
    from beaconwatch.decode.zeek.zeek_tsv import ZeekTsvDecoder, read_zeek_labels, read_zeek_log

    path = data_dir / ds.path
    log = read_zeek_log(path)
    decoded = ZeekTsvDecoder(log.header).decode(log.records)
    labels = read_zeek_labels(path)
    flows = decoded.flows
    flows = flows.take(np.argsort(flows.start_ms, kind="stable"))
    cfg = with_overrides(config, network={"internal_cidrs": list(ds.internal_cidrs)})
    run = run_detector(flows, cfg, final_scores=False)

    # Records by unordered host pair + port, to attach labels to an (oriented) alert pair.
    by_pair: dict[tuple[str, str, int], Counter[str]] = {}
    for i in range(len(flows)):
        a = halves_to_ip(flows.src_hi[i], flows.src_lo[i])
        b = halves_to_ip(flows.dst_hi[i], flows.dst_lo[i])
        port = int(flows.dst_port[i])
        label = labels[int(flows.record_index[i])] or "(none)"
        by_pair.setdefault((a, b, port), Counter())[label] += 1
    grouped: dict[tuple[str, str, int, int], list[float]] = {}
    firsts: dict[tuple[str, str, int, int], tuple[float, float, int, float]] = {}
    via: dict[tuple[str, str, int, int], str] = {}
    for alert in run.alerts:
        key = (alert.src_ip, alert.dst_ip, alert.dst_port, alert.proto)
        grouped.setdefault(key, []).append(alert.stats.score)
        firsts.setdefault(
            key,
            (alert.stats.score, alert.stats.period_s, alert.stats.connections, alert.duration_s),
        )
        if alert.channel == CHANNEL_PREFIX:
            via.setdefault(key, f"{alert.dst_prefix}, {alert.dst_ips} IPs")
    reports = []
    for key, scores in grouped.items():
        src, dst, port, proto = key
        if ds.focus_host is not None and ds.focus_host not in (src, dst):
            continue
        score, period, conns, long_s = firsts[key]
        lab = by_pair.get((src, dst, port), Counter()) + by_pair.get((dst, src, port), Counter())
        figures = (len(scores), score, period, conns, dict(lab), long_s, via.get(key, ""))
        reports.append(PairReport(src, dst, port, proto, *figures))
    reports.sort(key=lambda r: (-r.alerts, r.src, r.dst))
    hit = None
    if ds.must_alert is not None:
        hit = any(
            (r.src, r.dst, r.dst_port, r.proto) == ds.must_alert or _same(r, ds.must_alert)
            for r in reports
        )
    return DatasetResult(
        ds, len(log.records), len(flows), len(decoded.rejections), reports, hit, len(by_pair)
    )


def _same(r: PairReport, key: tuple[str, str, int, int]) -> bool:
    src, dst, port, proto = key
    return (
        ipaddress.ip_address(r.src) == ipaddress.ip_address(src)
        and ipaddress.ip_address(r.dst) == ipaddress.ip_address(dst)
        and r.dst_port == port
        and r.proto == proto
    )
