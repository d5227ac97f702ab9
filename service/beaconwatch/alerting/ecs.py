"""Encode an `Alert` as an Elastic Common Schema (ECS 8.x) alert document.

The same bytes go to the Kafka alerts topic and to `scan --output`, so a SIEM sees one format.
"""

from __future__ import annotations

from datetime import UTC, datetime
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
from beaconwatch.alerting.rules import SEVERITY_LEVELS, reason_sentence
from beaconwatch.alerting.statistics import Group, encoded
from beaconwatch.domain.addresses import protocol_name

RULE_ID = "beaconwatch-beacon-interval-v1"
LONG_CONNECTION_RULE_ID = "beaconwatch-long-connection-v1"
# Rule names and descriptions, shared with the OCSF finding (`ocsf.py`).
RULE_NAME = "Periodic connections to one destination (C2 beaconing)"
RULE_DESCRIPTION = (
    "Connection start times of one source->destination pair are too "
    "regular to be human: a beacon calling home on a timer."
)
LONG_CONNECTION_RULE_NAME = "One connection open for hours to a rare destination (C2 session)"
LONG_CONNECTION_RULE_DESCRIPTION = (
    "A connection to a destination few internal hosts use stayed open for "
    "hours: C2 held in one session (a websocket, a reverse shell) rather than beacons."
)
SPARSE_BEACON_RULE_ID = "beaconwatch-sparse-beacon-v1"
SPARSE_BEACON_RULE_NAME = "Three daily connections to a new destination (hunting lead)"
SPARSE_BEACON_RULE_DESCRIPTION = (
    "A source's first three connections to a destination no other internal host contacts "
    "came about a day apart, evenly, with alike sizes: a daily beacon's first check-ins or a "
    "scheduled task. Too few for a statistical test; a lead to hunt, not a verdict."
)
# MITRE ATT&CK (id, name) of every rule.
ATTACK_TACTIC = ("TA0011", "Command and Control")
ATTACK_TECHNIQUE = ("T1071", "Application Layer Protocol")
ECS_VERSION = "8.11.0"
# ECS event.severity is numeric; map our bands onto a 0-100 style scale like Elastic's rules.
SEVERITY_NUMBER = {"low": 21, "medium": 47, "high": 73, "critical": 99}
assert set(SEVERITY_NUMBER) == set(SEVERITY_LEVELS)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def rule_text(alert: Alert) -> tuple[str, str, str]:
    """(id, name, description) of the alert's rule."""
    if alert.rule == RULE_LONG_CONNECTION:
        return LONG_CONNECTION_RULE_ID, LONG_CONNECTION_RULE_NAME, LONG_CONNECTION_RULE_DESCRIPTION
    if alert.rule == RULE_SPARSE_BEACON:
        return SPARSE_BEACON_RULE_ID, SPARSE_BEACON_RULE_NAME, SPARSE_BEACON_RULE_DESCRIPTION
    return RULE_ID, RULE_NAME, RULE_DESCRIPTION


def to_ecs(alert: Alert) -> dict[str, Any]:
    doc = _beacon_ecs(alert)
    if alert.rule == RULE_SPARSE_BEACON:
        doc["event"]["action"] = "sparse-beacon-detected"
        rule_id, name, description = rule_text(alert)
        doc["rule"].update(id=rule_id, name=name, description=description)
        return doc
    if alert.rule != RULE_LONG_CONNECTION:
        return doc
    doc["event"]["action"] = "long-connection-detected"
    doc["rule"] = {
        "id": LONG_CONNECTION_RULE_ID,
        "name": LONG_CONNECTION_RULE_NAME,
        "category": "Command and Control",
        "ruleset": "beaconwatch",
        "version": __version__,
        "description": LONG_CONNECTION_RULE_DESCRIPTION,
    }
    # Under `beacon.*` like the beacon rule's fields: the one custom namespace a SIEM maps.
    doc["beacon"] = {"duration_s": alert.duration_s, **_beacon(alert, long_connection=True)}
    return doc


def _beacon(alert: Alert, *, long_connection: bool) -> dict[str, Any]:
    """`beacon.*`: the statistics as `alerting.statistics` lays them out (a long connection's
    alone for that rule), with the alert's own fields after the score."""
    s = alert.stats
    return {
        **encoded(s, "ecs", group=Group.SCORE, long_connection=long_connection),
        "severity": alert.severity,
        "lifecycle": alert.lifecycle,
        "series_id": alert.series_id,
        **encoded(s, "ecs", group=Group.MEASURE, long_connection=long_connection),
        **encoded(s, "ecs", group=Group.SIGNIFICANCE, long_connection=long_connection),
        "first_seen": _iso(alert.first_seen_ms),
    }


def _beacon_ecs(alert: Alert) -> dict[str, Any]:
    s = alert.stats
    return {
        "@timestamp": _iso(alert.detected_ms),
        # One readable line for consoles that show `message` first.
        "message": f"{alert.src_ip} -> {alert.dst_ip}: {reason_sentence(alert)}",
        "ecs": {"version": ECS_VERSION},
        "event": {
            "kind": "alert",
            "category": ["network", "intrusion_detection"],
            # ECS allows these for both categories ("indicator" belongs to category threat).
            "type": ["connection", "info"],
            "id": alert.event_id,
            "action": "beacon-detected" if alert.lifecycle == "new" else "beacon-updated",
            "start": _iso(alert.window_start_ms),
            "end": _iso(alert.window_end_ms),
            "created": _iso(alert.detected_ms),
            "severity": SEVERITY_NUMBER[alert.severity],
            "risk_score": round(s.score * 100, 1),
            "reason": reason_sentence(alert),
            "module": "beaconwatch",
            "dataset": "beaconwatch.alert",
        },
        "rule": {
            "id": RULE_ID,
            "name": RULE_NAME,
            "category": "Command and Control",
            "ruleset": "beaconwatch",
            "version": __version__,
            "description": RULE_DESCRIPTION,
        },
        "threat": {
            "framework": "MITRE ATT&CK",
            # ECS normalises these to arrays (one alert may map to several techniques).
            "tactic": {
                "id": [ATTACK_TACTIC[0]],
                "name": [ATTACK_TACTIC[1]],
                "reference": [f"https://attack.mitre.org/tactics/{ATTACK_TACTIC[0]}/"],
            },
            "technique": {
                "id": [ATTACK_TECHNIQUE[0]],
                "name": [ATTACK_TECHNIQUE[1]],
                "reference": [f"https://attack.mitre.org/techniques/{ATTACK_TECHNIQUE[0]}/"],
            },
        },
        "source": {"ip": alert.src_ip},
        "destination": _destination(alert),
        "network": {"transport": protocol_name(alert.proto), "iana_number": str(alert.proto)},
        "observer": {"vendor": "beaconwatch", "product": "beaconwatch", "type": "ids"},
        "labels": _labels(alert),
        "beacon": {
            **_beacon(alert, long_connection=False),
            "last_seen": _iso(alert.window_end_ms),
            **_channel(alert),
        },
    }


def _channel(alert: Alert) -> dict[str, Any]:
    """Which level alerted: one pair, or a prefix or name whose IP rotated (`core.channels`)."""
    if alert.channel == CHANNEL_NAME:
        return {
            "channel": alert.channel,
            "destination_domain": alert.dst_domain,
            "destination_ips": alert.dst_ips,
        }
    if alert.channel != CHANNEL_PREFIX:
        return {"channel": alert.channel}
    return {
        "channel": alert.channel,
        "destination_prefix": alert.dst_prefix,
        "destination_ips": alert.dst_ips,
    }


def _destination(alert: Alert) -> dict[str, Any]:
    """ECS destination: the last IP, and the name of a name channel (`destination.domain`;
    not `tls.client.server_name`: the name may have come from an HTTP host or DNS field)."""
    destination: dict[str, Any] = {"ip": alert.dst_ip, "port": alert.dst_port}
    if alert.channel == CHANNEL_NAME:
        destination["domain"] = alert.dst_domain
    return destination


def encode_alert(alert: Alert) -> bytes:
    return orjson.dumps(to_ecs(alert))


def _labels(alert: Alert) -> dict[str, str]:
    """ECS labels are keyword strings; the input partition is known only from Kafka."""
    labels = {"severity": alert.severity}
    if alert.partition is not None:
        labels["kafka_partition"] = str(alert.partition)
    return labels
