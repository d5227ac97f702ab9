"""Alert rules: severity bands, deterministic ids, allowlists and the plain-words reason.

Whether a pair alerts at all (threshold, prevalence, lifecycle and cooldown in event time) is
decided in the ingest kernel, where the pair's state is; this module turns a kernel alert row
(`domain.alert_rows`, the pair's columns filled by the core) into an `Alert` and applies the
allowlist, which is rare enough to check in Python.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

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
from beaconwatch.domain.alert_rows import (
    KIND_LONG_CONNECTION,
    KIND_SPARSE_BEACON,
    LIFECYCLE_NEW,
    AlertRows,
)
from beaconwatch.domain.networks import NetworkSet
from beaconwatch.scoring.shape_names import shape_of
from beaconwatch.scoring.sleep_range import described_range

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

    def make_alert(self, alerts: AlertRows, i: int) -> Alert:
        """The `Alert` of row ``i`` of a batch's alert rows."""
        beacon = read_statistics(AlertRow(alerts, i))
        src_ip = halves_to_ip(int(alerts.src_hi[i]), int(alerts.src_lo[i]))
        dst_ip = halves_to_ip(int(alerts.dst_hi[i]), int(alerts.dst_lo[i]))
        # A prefix row: its destination is the prefix; `core.channels` names the member IP.
        channel = CHANNEL_PREFIX if alerts.prefix[i] else CHANNEL_PAIR
        dst_prefix = (
            prefix_text(int(alerts.dst_hi[i]), int(alerts.dst_lo[i]))
            if channel == CHANNEL_PREFIX
            else ""
        )
        # A name row: its destination is the name's hash (`core.channels` names the last IP).
        dst_domain = str(alerts.dst_domain[i])
        channel = CHANNEL_NAME if dst_domain else channel
        pp = int(alerts.dst_port_proto[i])
        dst_port, proto = pp >> 8, pp & 0xFF
        detected_ms = int(alerts.detected_ms[i])
        pair_key = f"{src_ip}>{dst_domain or dst_prefix or dst_ip}:{dst_port}/{proto}".encode()
        kind = int(alerts.kind[i])
        long = kind == KIND_LONG_CONNECTION
        rule = RULE_LONG_CONNECTION if long else RULE_BEACON
        if kind == KIND_SPARSE_BEACON:
            rule = RULE_SPARSE_BEACON
        return Alert(
            event_id=self.stable_id(pair_key, detected_ms),
            series_id=self.stable_id(pair_key, int(alerts.first_alert_ms[i])),
            lifecycle="new" if int(alerts.lifecycle[i]) == LIFECYCLE_NEW else "update",
            src_ip=src_ip,
            dst_ip=dst_ip,
            dst_port=dst_port,
            proto=proto,
            window_start_ms=int(alerts.window_start_ms[i]),
            window_end_ms=int(alerts.window_end_ms[i]),
            first_seen_ms=int(alerts.first_seen_ms[i]),
            detected_ms=detected_ms,
            severity="low" if rule == RULE_SPARSE_BEACON else self.severity(beacon.score),
            stats=beacon,
            rule=rule,
            duration_s=round(float(alerts.duration_s[i]), 3) if long else 0.0,
            channel=channel,
            dst_prefix=dst_prefix,
            dst_domain=dst_domain,
        )


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
