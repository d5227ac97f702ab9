"""One structured log line per published alert, through the service's logging.

So alerts show up where the service's logs already go (journald, a container log shipper,
Splunk or Elastic's log inputs) without a Kafka consumer of one's own. The line carries the
key fields as ``key=value`` pairs (logfmt), not the whole ECS document, e.g.::

    alert rule=beacon lifecycle=new severity=high score=0.949 src=10.0.15.183
    dst=198.51.100.11:8443/tcp period_s=90 check_ins=8 event.id=d7499c50... reason="tcp/8443 ..."

(one line). deploy/splunk's ``beaconwatch:log`` sourcetype extracts the pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from beaconwatch.alerting.alert import RULE_LONG_CONNECTION, Alert
from beaconwatch.alerting.rules import reason_sentence
from beaconwatch.alerting.statistics import STATISTIC
from beaconwatch.domain.addresses import protocol_name

# Its own logger, so a log pipeline can route or silence alert lines by name.
log = logging.getLogger("beaconwatch.alerts")
# The statistics the line carries, under their ECS keys (`alerting.statistics`).
_SCORE, _PERIOD, _CHECK_INS = (STATISTIC[name].ecs for name in ("score", "period_s", "check_ins"))


def endpoint(ip: str, port: int) -> str:
    """``ip:port``, with an IPv6 address in brackets so the port stays unambiguous."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def alert_log_line(alert: Alert) -> str:
    s = alert.stats
    pairs = [
        ("rule", alert.rule),
        ("lifecycle", alert.lifecycle),
        ("severity", alert.severity),
        (_SCORE, f"{s.score:.3f}"),
        ("src", alert.src_ip),
        ("dst", f"{endpoint(alert.dst_ip, alert.dst_port)}/{protocol_name(alert.proto)}"),
    ]
    if alert.rule == RULE_LONG_CONNECTION:
        pairs.append(("duration_s", f"{alert.duration_s:.0f}"))
    else:
        pairs.append((_PERIOD, f"{s.period_s:.3g}"))
    pairs += [(_CHECK_INS, str(s.check_ins)), ("event.id", alert.event_id)]
    # Last and quoted: the one value with spaces (no quotes inside, so no escaping to undo).
    reason = reason_sentence(alert).replace('"', "'")
    return "alert " + " ".join(f"{k}={v}" for k, v in pairs) + f' reason="{reason}"'


def log_alerts(alerts: Sequence[Alert]) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    for alert in alerts:
        log.info("%s", alert_log_line(alert))
