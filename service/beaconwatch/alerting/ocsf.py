"""Encode an `Alert` as an OCSF Detection Finding (class 2004, category Findings).

The optional alternative to ECS (`alerting.format = "ocsf"`), for SIEMs and data lakes that
take OCSF (Amazon Security Lake, Splunk's OCSF add-ons, ...). One alert series is one finding:
`finding_info.uid` is the series id, so an update (activity Update) revises the finding its
first alert created (activity Create); `metadata.uid` is the alert's own event id. What OCSF
has no attribute for (period, jitter, check-ins, ...) goes under `unmapped`, as ECS has it
under `beacon` / `long_connection`. Tests validate every document against JSON Schema
generated from the OCSF schema of `OCSF_VERSION` (tests/unit/ocsf_schema.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import orjson

from beaconwatch import __version__
from beaconwatch.alerting.alert import (
    CHANNEL_NAME,
    CHANNEL_PREFIX,
    RULE_LONG_CONNECTION,
    RULE_SPARSE_BEACON,
    Alert,
)
from beaconwatch.alerting.ecs import ATTACK_TACTIC, ATTACK_TECHNIQUE, rule_text
from beaconwatch.alerting.rules import SEVERITY_LEVELS, reason_sentence
from beaconwatch.alerting.statistics import encoded
from beaconwatch.domain.addresses import protocol_name

OCSF_VERSION = "1.8.0"  # the schema version the documents are validated against
CLASS_UID, CLASS_NAME = 2004, "Detection Finding"
CATEGORY_UID, CATEGORY_NAME = 2, "Findings"
ACTIVITY = {"new": (1, "Create"), "update": (2, "Update")}  # by Alert.lifecycle
# OCSF severity_id by our score bands (OCSF: 2 Low, 3 Medium, 4 High, 5 Critical).
SEVERITY = {"low": (2, "Low"), "medium": (3, "Medium"), "high": (4, "High"),
            "critical": (5, "Critical")}  # fmt: skip
assert set(SEVERITY) == set(SEVERITY_LEVELS)
# confidence_id (1 Low, 2 Medium, 3 High) by the same bands: the score is the confidence.
CONFIDENCE = {"low": (1, "Low"), "medium": (2, "Medium"), "high": (3, "High"),
              "critical": (3, "High")}  # fmt: skip
STATUS_NEW = (1, "New")  # the consumer moves a finding on (In Progress, Resolved, ...)
ANALYTIC_STATISTICAL, ANALYTIC_RULE = 3, 1  # analytic.type_id
KILL_CHAIN_C2 = (6, "Command & Control")
OBSERVABLE_IP, OBSERVABLE_PORT = 2, 11  # observable.type_id
# The source is always internal (`core.scope`); the destination is external unless it is in
# network.internal_cidrs (network.track_internal_destinations).
OUTBOUND = {"direction_id": 2, "direction": "Outbound", "boundary_id": 3, "boundary": "External"}
LATERAL = {"direction_id": 3, "direction": "Lateral", "boundary_id": 2, "boundary": "Internal"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def to_ocsf(alert: Alert, internal_networks: Sequence[Network] = ()) -> dict[str, Any]:
    """The finding for ``alert``; ``internal_networks`` tell a lateral pair from an outbound
    one (none given: every destination is taken as external)."""
    activity_id, activity = ACTIVITY[alert.lifecycle]
    severity_id, severity = SEVERITY[alert.severity]
    confidence_id, confidence = CONFIDENCE[alert.severity]
    reason = reason_sentence(alert)
    return {
        "activity_id": activity_id,
        "activity_name": activity,
        "category_uid": CATEGORY_UID,
        "category_name": CATEGORY_NAME,
        "class_uid": CLASS_UID,
        "class_name": CLASS_NAME,
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": f"{CLASS_NAME}: {activity}",
        "time": alert.detected_ms,
        "timezone_offset": 0,  # every time is epoch milliseconds, UTC
        "start_time": alert.window_start_ms,
        "end_time": alert.window_end_ms,
        "duration": alert.window_end_ms - alert.window_start_ms,
        "count": alert.stats.connections,
        "message": f"{alert.src_ip} -> {alert.dst_ip}: {reason}",
        "severity_id": severity_id,
        "severity": severity,
        "confidence_id": confidence_id,
        "confidence": confidence,
        "confidence_score": round(alert.stats.score * 100),
        "status_id": STATUS_NEW[0],
        "status": STATUS_NEW[1],
        "is_alert": True,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": alert.event_id,
            "event_code": rule_text(alert)[0],
            "product": {
                "name": "beaconwatch",
                "vendor_name": "beaconwatch",
                "version": __version__,
            },
        },
        "finding_info": _finding_info(alert, reason),
        "evidences": [_evidence(alert, internal_networks)],
        "observables": _observables(alert),
        "unmapped": _unmapped(alert),
    }


def _finding_info(alert: Alert, reason: str) -> dict[str, Any]:
    long = alert.rule == RULE_LONG_CONNECTION
    gated = long or alert.rule == RULE_SPARSE_BEACON  # rules of thresholds, not statistics
    transport = f"{protocol_name(alert.proto)}/{alert.dst_port}"
    kind = "C2 long connection" if long else "C2 beaconing"
    if alert.rule == RULE_SPARSE_BEACON:
        kind = "C2 beaconing lead"
    rule_id, rule_name, rule_description = rule_text(alert)
    info: dict[str, Any] = {
        "uid": alert.series_id,
        "title": f"{kind}: {alert.src_ip} -> {alert.dst_ip} {transport}",
        "desc": reason,
        "types": [kind],
        "first_seen_time": alert.first_seen_ms,
        "last_seen_time": alert.window_end_ms,
        "data_sources": ["network flows"],
        "analytic": {
            "uid": rule_id,
            "name": rule_name,
            "desc": rule_description,
            # Beacons are told by statistics of the intervals; long connections and sparse
            # beacons by thresholds.
            "type_id": ANALYTIC_RULE if gated else ANALYTIC_STATISTICAL,
            "type": "Rule" if gated else "Statistical",
            "version": __version__,
        },
        "attacks": [
            {
                "tactic": {"uid": ATTACK_TACTIC[0], "name": ATTACK_TACTIC[1]},
                "technique": {"uid": ATTACK_TECHNIQUE[0], "name": ATTACK_TECHNIQUE[1]},
            }
        ],
        "kill_chain": [{"phase_id": KILL_CHAIN_C2[0], "phase": KILL_CHAIN_C2[1]}],
    }
    # A finding is created by its series' first alert and modified by each update.
    info["created_time" if alert.lifecycle == "new" else "modified_time"] = alert.detected_ms
    return info


def _evidence(alert: Alert, internal_networks: Sequence[Network]) -> dict[str, Any]:
    dst = ipaddress.ip_address(alert.dst_ip)
    lateral = any(dst in net for net in internal_networks if net.version == dst.version)
    return {
        "src_endpoint": {"ip": alert.src_ip},
        "dst_endpoint": {"ip": alert.dst_ip, "port": alert.dst_port},
        "connection_info": {
            "protocol_num": alert.proto,
            "protocol_name": protocol_name(alert.proto),
            **(LATERAL if lateral else OUTBOUND),
        },
    }


def _observables(alert: Alert) -> list[dict[str, Any]]:
    return [
        {"name": "evidences.src_endpoint.ip", "type_id": OBSERVABLE_IP,
         "type": "IP Address", "value": alert.src_ip},
        {"name": "evidences.dst_endpoint.ip", "type_id": OBSERVABLE_IP,
         "type": "IP Address", "value": alert.dst_ip},
        {"name": "evidences.dst_endpoint.port", "type_id": OBSERVABLE_PORT,
         "type": "Port", "value": str(alert.dst_port)},
    ]  # fmt: skip


def _unmapped(alert: Alert) -> dict[str, Any]:
    """Beacon-specific figures OCSF has no attribute for, under the names ECS uses."""
    s = alert.stats
    out: dict[str, Any] = {"rule": alert.rule, "lifecycle": alert.lifecycle}
    if alert.partition is not None:
        out["kafka_partition"] = alert.partition
    if alert.rule == RULE_LONG_CONNECTION:
        out["long_connection"] = {
            "duration_s": alert.duration_s,
            "sessions": s.connections,  # long sessions so far: the rule's own count
            **encoded(s, "ocsf", long_connection=True),
        }
        return out
    out["beacon"] = encoded(s, "ocsf")  # every statistic of `alerting.statistics`
    out["beacon"]["channel"] = alert.channel
    if alert.channel == CHANNEL_PREFIX:  # the destination IP rotated within a prefix
        out["beacon"]["destination_prefix"] = alert.dst_prefix
        out["beacon"]["destination_ips"] = alert.dst_ips
    if alert.channel == CHANNEL_NAME:  # the destination IP rotated under one name
        out["beacon"]["destination_domain"] = alert.dst_domain
        out["beacon"]["destination_ips"] = alert.dst_ips
    return out


class OcsfEncoder:
    """`Alert` -> OCSF JSON bytes, knowing the internal networks (lateral vs outbound)."""

    def __init__(self, internal_cidrs: Sequence[str] = ()) -> None:
        self._networks = [ipaddress.ip_network(c, strict=False) for c in internal_cidrs]

    def __call__(self, alert: Alert) -> bytes:
        return orjson.dumps(to_ocsf(alert, self._networks))
