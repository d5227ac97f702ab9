"""Alert rules: severity bands, deterministic ids, allowlists and the plain-words reason.

Whether a pair alerts at all (threshold, prevalence, lifecycle and cooldown in event time) is
decided in the ingest kernel, where the pair's state is; this module turns a kernel alert row
into an `Alert` and applies the allowlist, which is rare enough to check in Python.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from beaconwatch.alerting.alert import (
    CHANNEL_NAME,
    CHANNEL_PAIR,
    CHANNEL_PREFIX,
    RULE_BEACON,
    RULE_LONG_CONNECTION,
    RULE_SPARSE_BEACON,
    Alert,
)
from beaconwatch.alerting.statistics import AlertRow, BeaconStats, read_statistics
from beaconwatch.config import AlertingConfig, AllowRule
from beaconwatch.domain.addresses import halves_to_ip, prefix_text, protocol_name
from beaconwatch.domain.dtypes import F64
from beaconwatch.domain.networks import NetworkSet
from beaconwatch.scoring.shape_names import shape_of
from beaconwatch.scoring.sleep_range import described_range
from beaconwatch.state import ingest as k
from beaconwatch.state.levels import NAME_LEVEL, PORT_PROTO_MASK, PREFIX_LEVEL
from beaconwatch.state.pair_table import PairTable

SEVERITY_LEVELS = ("low", "medium", "high", "critical")
ALLOWLIST = "allowlist"


@dataclass(frozen=True)
class _CompiledRule:
    destination: NetworkSet
    ports: frozenset[int]
    sources: NetworkSet | None
    expires_ms: int | None  # end of the expiry day, UTC

    @classmethod
    def of(cls, rule: AllowRule) -> _CompiledRule:
        expires_ms = None
        if rule.expires is not None:
            end = datetime.datetime.combine(
                rule.expires + datetime.timedelta(days=1), datetime.time(), datetime.UTC
            )
            expires_ms = int(end.timestamp() * 1000)
        sources = NetworkSet.of(rule.sources) if rule.sources else None
        return cls(NetworkSet.of([rule.destination]), frozenset(rule.ports), sources, expires_ms)

    def matches(self, alert: Alert) -> bool:
        if self.expires_ms is not None and alert.detected_ms >= self.expires_ms:
            return False  # expiry is judged on event time, so scan and service agree
        if self.ports and alert.dst_port not in self.ports:
            return False
        if alert.dst_ip not in self.destination:
            return False
        return self.sources is None or alert.src_ip in self.sources


class AlertRules:
    def __init__(self, config: AlertingConfig, allowlist: list[AllowRule] | None = None) -> None:
        self.config = config
        self._allow = [_CompiledRule.of(rule) for rule in allowlist or []]

    def severity(self, score: float) -> str:
        c = self.config
        if score >= c.severity_critical:
            return "critical"
        if score >= c.severity_high:
            return "high"
        if score >= c.severity_medium:
            return "medium"
        return "low"

    @staticmethod
    def stable_id(pair_key: bytes, time_ms: int) -> str:
        # Event time only: a replayed or re-delivered alert gets the same id.
        return hashlib.blake2b(pair_key + b"@" + str(time_ms).encode(), digest_size=16).hexdigest()

    def suppressed_by(self, alert: Alert) -> str | None:
        """The policy that withholds this alert, or None."""
        if any(rule.matches(alert) for rule in self._allow):
            return ALLOWLIST
        return None

    def make_alert(
        self,
        table: PairTable,
        row: int,
        stats: F64,
        times_ms: npt.NDArray[np.int64],
        extra: F64,
    ) -> Alert:
        keys = table.keys[row]
        pp = int(table.port_proto[row])
        beacon = read_statistics(AlertRow(stats, extra, table, row))
        src_ip = halves_to_ip(keys[0], keys[1])
        dst_ip = halves_to_ip(keys[2], keys[3])
        # A prefix row: its destination is the prefix; `core.channels` names the member IP.
        channel = CHANNEL_PREFIX if pp & PREFIX_LEVEL else CHANNEL_PAIR
        dst_prefix = prefix_text(int(keys[2]), int(keys[3])) if channel == CHANNEL_PREFIX else ""
        # A name row: its destination is the name's hash (`core.channels` names the last IP).
        dst_domain = domain_text(table, int(keys[2])) if pp & NAME_LEVEL else ""
        channel = CHANNEL_NAME if dst_domain else channel
        pp &= PORT_PROTO_MASK
        dst_port, proto = pp >> 8, pp & 0xFF
        detected_ms = int(times_ms[k.AT_DETECTED_MS])
        pair_key = f"{src_ip}>{dst_domain or dst_prefix or dst_ip}:{dst_port}/{proto}".encode()
        lifecycle = int(extra[k.EXTRA_LIFECYCLE])
        kind = int(extra[k.EXTRA_KIND])
        long = kind == k.KIND_LONG_CONNECTION
        rule = RULE_LONG_CONNECTION if long else RULE_BEACON
        if kind == k.KIND_SPARSE_BEACON:
            rule = RULE_SPARSE_BEACON
        return Alert(
            event_id=self.stable_id(pair_key, detected_ms),
            series_id=self.stable_id(pair_key, int(times_ms[k.AT_FIRST_ALERT_MS])),
            lifecycle="new" if lifecycle == k.LIFECYCLE_NEW else "update",
            src_ip=src_ip,
            dst_ip=dst_ip,
            dst_port=dst_port,
            proto=proto,
            window_start_ms=int(times_ms[k.AT_WINDOW_START_MS]),
            window_end_ms=int(times_ms[k.AT_WINDOW_END_MS]),
            first_seen_ms=int(times_ms[k.AT_FIRST_SEEN_MS]),
            detected_ms=detected_ms,
            severity="low" if rule == RULE_SPARSE_BEACON else self.severity(beacon.score),
            stats=beacon,
            rule=rule,
            duration_s=round(float(extra[k.EXTRA_DURATION_S]), 3) if long else 0.0,
            channel=channel,
            dst_prefix=dst_prefix,
            dst_domain=dst_domain,
        )


def domain_text(table: PairTable, name: int) -> str:
    """A name row's destination name; its hash in hex when the text was not kept (a name
    book over its bound, a snapshot of an older version)."""
    text = table.names.get(name)
    return text if text is not None else f"name-{name:016x}"


def duration_words(seconds: float) -> str:
    """60 -> "60 s", 5400 -> "90 min", 25200 -> "7 h", 27000 -> "7.5 h"."""
    if seconds < 120:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    hours = seconds / 3600
    return f"{hours:.0f} h" if abs(hours - round(hours)) < 0.05 else f"{hours:.1f} h"


def sleep_words(stats: BeaconStats) -> str:
    """The sleep range the alert describes, one way for one range: "60 s", "45-60 s",
    "2.5-7.5 min", "3-5 h". No C2 framework is named: the shape of a jitter range does not
    tell which tool drew it, and the name was wrong more often than right (demo beacons,
    benign telemetry). `beacon.jitter_shape` keeps the reading for hunters."""
    shape = int(shape_of(stats.jitter_shape))
    low, high = described_range(stats.period_s, stats.jitter_ratio, shape)
    if high - low < 0.05 * max(high, 1e-9):
        return duration_words(0.5 * (low + high))
    if high < 120:
        scale, unit = 1.0, "s"
    elif high < 7200:
        scale, unit = 60.0, "min"
    else:
        scale, unit = 3600.0, "h"
    return f"{_number(low / scale)}-{_number(high / scale)} {unit}"


def _number(x: float) -> str:
    """2 significant figures at most, no trailing zeros: 4.25 -> "4.2", 45.0 -> "45"."""
    if x >= 10:
        return f"{x:.0f}"
    return f"{x:.1f}".rstrip("0").rstrip(".")


# Appended to the reason of an alert whose pair's direction came from the ports (`core.scope`).
INFERRED_DIRECTION_WORDS = "; who connects to whom inferred from the ports"


def reason_sentence(alert: Alert) -> str:
    """E.g. "tcp/443 every 45-60 s, 412 connections over 7 h, 3 % missed"."""
    s = alert.stats
    if alert.rule == RULE_LONG_CONNECTION:
        return long_connection_sentence(alert)
    if alert.rule == RULE_SPARSE_BEACON:
        return sparse_beacon_sentence(alert)
    span_s = max(0.0, (alert.detected_ms - alert.first_seen_ms) / 1000)
    words = (
        f"{protocol_name(alert.proto)}/{alert.dst_port} every {sleep_words(s)}, "
        f"{s.check_ins} connections over {duration_words(span_s)}, "
        f"{round(s.missed_ratio * 100)} % missed"
    )
    if alert.channel == CHANNEL_PREFIX:
        words += f"; to {alert.dst_ips} rotating IPs of {alert.dst_prefix} (CDN or DNS round-robin)"
    if alert.channel == CHANNEL_NAME:
        words += f"; to {alert.dst_domain} at {alert.dst_ips} rotating IPs (CDN or DNS round-robin)"
    if s.connections_per_check_in > 1.0:
        words += f"; check-ins of {s.connections_per_check_in:g} connections each"
    if s.prevalence_sources > 1:
        where = {CHANNEL_PREFIX: "prefix", CHANNEL_NAME: "name"}.get(alert.channel, "destination")
        words += f"; {s.prevalence_sources} internal hosts contact this {where}"
    if s.sampling_rate > 1:
        words += f"; flows sampled 1:{s.sampling_rate}, so missed check-ins cost nothing"
    if s.direction_inferred:
        words += INFERRED_DIRECTION_WORDS
    return words


def sparse_beacon_sentence(alert: Alert) -> str:
    """E.g. "tcp/443 3 connections about 24 h apart to a destination no other internal host
    contacts: a daily beacon's first check-ins, or a scheduled task (hunting lead)"."""
    s = alert.stats
    words = (
        f"{protocol_name(alert.proto)}/{alert.dst_port} 3 connections about "
        f"{duration_words(s.mean_interval_s)} apart to a destination no other internal host "
        "contacts: a daily beacon's first check-ins, or a scheduled task (hunting lead)"
    )
    if s.direction_inferred:
        words += INFERRED_DIRECTION_WORDS
    return words


def long_connection_sentence(alert: Alert) -> str:
    """E.g. "tcp/4444 one connection open for 5.2 h; no other internal host contacts this
    destination"."""
    s = alert.stats
    words = (
        f"{protocol_name(alert.proto)}/{alert.dst_port} one connection open for "
        f"{duration_words(alert.duration_s)}"
    )
    others = s.prevalence_sources - 1
    if others <= 0:
        words += "; no other internal host contacts this destination"
    else:
        words += f"; {others} other internal host{'s' if others > 1 else ''} contact it"
    if s.direction_inferred:
        words += INFERRED_DIRECTION_WORDS
    return words
