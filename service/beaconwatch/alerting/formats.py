"""Which document an alert becomes: `alerting.format` picks ECS or OCSF."""

from __future__ import annotations

from collections.abc import Callable

from beaconwatch.alerting.alert import Alert
from beaconwatch.alerting.ecs import encode_alert
from beaconwatch.alerting.ocsf import OcsfEncoder
from beaconwatch.config import Config

ALERT_FORMATS = ("ecs", "ocsf")


def alert_encoder(config: Config, alert_format: str | None = None) -> Callable[[Alert], bytes]:
    """The encoder of ``alert_format`` (default: the config's ``alerting.format``)."""
    fmt = alert_format or config.alerting.format
    if fmt == "ecs":
        return encode_alert
    if fmt == "ocsf":
        return OcsfEncoder(config.network.internal_cidrs)
    raise ValueError(f"unknown alert format {fmt!r} (one of {', '.join(ALERT_FORMATS)})")
