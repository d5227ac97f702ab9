"""The alert value object produced by the core and encoded for sinks (see `ecs.py`); its
statistics (`BeaconStats`) are defined by the table in `statistics.py`."""

from __future__ import annotations

from dataclasses import dataclass

from beaconwatch.alerting.statistics import BeaconStats

RULE_BEACON = "beacon"
RULE_LONG_CONNECTION = "long-connection"
# Three daily check-ins to a new destination: a hunting lead, severity low (`state.ingest`).
RULE_SPARSE_BEACON = "sparse-beacon"
CHANNEL_PAIR = "pair"  # one destination IP
CHANNEL_PREFIX = "prefix"  # a destination /24 (IPv6 /48) whose IP rotated (`core.channels`)
CHANNEL_NAME = "name"  # a destination name (TLS SNI, HTTP host) whose IP rotated


@dataclass(frozen=True, slots=True)
class Alert:
    event_id: str  # deterministic: pair + detection time (event time)
    series_id: str  # deterministic: pair + time of the pair's first alert; shared by updates
    lifecycle: str  # "new" (first crossing) or "update" (period or score changed materially)
    src_ip: str
    dst_ip: str
    dst_port: int
    proto: int  # IANA protocol number
    window_start_ms: int  # first connection in the scored window (event.start)
    window_end_ms: int  # last connection in the scored window (event.end)
    first_seen_ms: int  # first time the pair was seen while tracked
    detected_ms: int  # event time of the connection that made the pair alert
    severity: str  # low | medium | high | critical
    stats: BeaconStats
    # Kafka partition the pair's flows came from: set by the Kafka adapter, None for files.
    partition: int | None = None
    # RULE_BEACON, RULE_SPARSE_BEACON (3 daily connections, a hunting lead), or
    # RULE_LONG_CONNECTION: one connection open for duration_s so far to a rare destination
    # (then `stats` holds the score, prevalence and counts, no timing).
    rule: str = "beacon"
    duration_s: float = 0.0
    # CHANNEL_PAIR, or CHANNEL_PREFIX: scored over every IP of `dst_prefix` the source reached
    # on the port; `dst_ip` is the one it reached last, `dst_ips` how many it reached.
    channel: str = CHANNEL_PAIR
    dst_prefix: str = ""
    dst_ips: int = 1
    # CHANNEL_NAME: scored over every IP the source reached `dst_domain` at on the port;
    # `dst_ip` is the last, `dst_ips` how many (counted as changes of IP).
    dst_domain: str = ""

    @property
    def pair_key(self) -> bytes:
        """Kafka record key: the pair (or prefix channel), so all alerts of one pair land in
        one partition."""
        dst = self.dst_prefix if self.channel == CHANNEL_PREFIX else self.dst_ip
        if self.channel == CHANNEL_NAME:
            dst = self.dst_domain
        return f"{self.src_ip}>{dst}:{self.dst_port}/{self.proto}".encode()
