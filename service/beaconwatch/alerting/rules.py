"""Alert rules: severity bands, deterministic ids and the plain-words reason.

Whether a pair alerts at all (threshold and per-pair cooldown in event time) is decided in the
ingest kernel, where the pair's state is; this module turns a kernel alert row into an `Alert`.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from beaconwatch.alerting.alert import Alert, BeaconStats
from beaconwatch.config import AlertingConfig
from beaconwatch.core.addresses import halves_to_ip, protocol_name
from beaconwatch.scoring.window_score import Stat
from beaconwatch.state.pair_table import PairTable

SEVERITY_LEVELS = ("low", "medium", "high", "critical")


class AlertRules:
    def __init__(self, config: AlertingConfig) -> None:
        self.config = config
        # Deterministic ids bucket event time by the cooldown: two alerts of one pair are always
        # at least one cooldown apart, so they never share a bucket, while a re-delivered or
        # replayed alert of the same pair and window gets the same id.
        self._id_bucket_ms = max(1, int(config.cooldown_s * 1000))

    def severity(self, score: float) -> str:
        c = self.config
        if score >= c.severity_critical:
            return "critical"
        if score >= c.severity_high:
            return "high"
        if score >= c.severity_medium:
            return "medium"
        return "low"

    def event_id(self, pair_key: bytes, detected_ms: int) -> str:
        bucket = detected_ms // self._id_bucket_ms
        digest = hashlib.blake2b(pair_key + b"@" + str(bucket).encode(), digest_size=16)
        return digest.hexdigest()

    def make_alert(
        self,
        table: PairTable,
        row: int,
        stats: npt.NDArray[np.float64],
        times_ms: npt.NDArray[np.int64],
        partition: int,
    ) -> Alert:
        keys = table.keys[row]
        pp = int(table.port_proto[row])
        beacon = BeaconStats(
            score=round(float(stats[Stat.SCORE]), 4),
            period_s=round(float(stats[Stat.PERIOD_S]), 3),
            interval_mad_s=round(float(stats[Stat.INTERVAL_MAD_S]), 3),
            interval_bowley=round(float(stats[Stat.INTERVAL_BOWLEY]), 4),
            interval_cv=round(float(stats[Stat.INTERVAL_CV]), 4),
            connections=int(stats[Stat.CONNECTIONS]),
            bytes_median=float(stats[Stat.BYTES_MEDIAN]),
            bytes_mad=float(stats[Stat.BYTES_MAD]),
            interval_score=round(float(stats[Stat.INTERVAL_SCORE]), 4),
            size_score=round(float(stats[Stat.SIZE_SCORE]), 4),
            count_score=round(float(stats[Stat.COUNT_SCORE]), 4),
        )
        src_ip = halves_to_ip(keys[0], keys[1])
        dst_ip = halves_to_ip(keys[2], keys[3])
        dst_port, proto = pp >> 8, pp & 0xFF
        detected_ms = int(times_ms[0])
        pair_key = f"{src_ip}>{dst_ip}:{dst_port}/{proto}".encode()
        return Alert(
            event_id=self.event_id(pair_key, detected_ms),
            src_ip=src_ip,
            dst_ip=dst_ip,
            dst_port=dst_port,
            proto=proto,
            window_start_ms=int(times_ms[1]),
            window_end_ms=int(times_ms[2]),
            first_seen_ms=int(table.first_seen_ms[row]),
            detected_ms=detected_ms,
            severity=self.severity(beacon.score),
            stats=beacon,
            partition=partition,
        )


def _duration_words(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def reason_sentence(alert: Alert) -> str:
    """E.g. "tcp/443 connections every 60.2 s (MAD 2.9 s), 32 in 31 min, ~410 bytes each"."""
    s = alert.stats
    span_s = (alert.window_end_ms - alert.window_start_ms) / 1000
    return (
        f"{protocol_name(alert.proto)}/{alert.dst_port} connections every "
        f"{_duration_words(s.period_s)} (MAD {s.interval_mad_s:.1f} s), "
        f"{s.connections} in {_duration_words(span_s)}, ~{s.bytes_median:.0f} bytes each; "
        f"beacon score {s.score:.2f}"
    )
