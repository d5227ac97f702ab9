"""The alert value object produced by the core and encoded for sinks (see `ecs.py`)."""

from __future__ import annotations

from dataclasses import dataclass

RULE_BEACON = "beacon"
RULE_LONG_CONNECTION = "long-connection"
CHANNEL_PAIR = "pair"  # one destination IP
CHANNEL_PREFIX = "prefix"  # a destination /24 (IPv6 /48) whose IP rotated (`core.channels`)
JITTER_SHAPES = ("none", "subtractive", "symmetric", "additive")  # by Stat.JITTER_SHAPE code


@dataclass(frozen=True, slots=True)
class BeaconStats:
    """What the scoring kernels measured over one pair's window (times in seconds)."""

    score: float  # final score in [0, 1], after prevalence
    raw_score: float  # score before prevalence down-ranking
    period_s: float  # nominal sleep: the upper edge, lower edge or centre of the jitter range
    mean_interval_s: float  # mean time between check-ins, missed ones folded
    jitter_ratio: float  # width of the jitter range relative to the period
    jitter_shape: str  # none | subtractive (Cobalt-Strike-like) | symmetric | additive
    missed_ratio: float  # share of expected check-ins that did not happen
    connections: int  # connections in the scored window
    check_ins: int  # connections since the pair was first seen (beyond the window, too)
    confidence: float  # 1 - p-value that the pair is periodic at all (vs Poisson arrivals)
    size_regularity: float  # in [0, 1]; tolerates padding of a few hundred bytes
    timing_score: float  # regularity of the folded intervals, in [0, 1]
    bytes_median: float
    prevalence: float  # share of internal sources that contact the destination
    prevalence_sources: int  # how many
    # Highest packet-sampling rate among the pair's flows (1 = unsampled; capped at 65535).
    # Above 1, missed check-ins and byte counts are not scored (scoring.sampled_scoring_params).
    sampling_rate: int = 1
    # Whether the direction (which end started the connections) was inferred from the ports
    # for any of the pair's flows, rather than read from the records (`core.scope`).
    direction_inferred: bool = False
    # Connections per check-in in the scored window: above 1 when check-ins come as bursts
    # (SYN retransmissions, parallel connections) and were scored as one each.
    connections_per_check_in: float = 1.0


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
    # RULE_BEACON, or RULE_LONG_CONNECTION: one connection open for duration_s so far to a
    # rare destination (then `stats` holds the score, prevalence and counts, no timing).
    rule: str = "beacon"
    duration_s: float = 0.0
    # CHANNEL_PAIR, or CHANNEL_PREFIX: scored over every IP of `dst_prefix` the source reached
    # on the port; `dst_ip` is the one it reached last, `dst_ips` how many it reached.
    channel: str = CHANNEL_PAIR
    dst_prefix: str = ""
    dst_ips: int = 1

    @property
    def pair_key(self) -> bytes:
        """Kafka record key: the pair (or prefix channel), so all alerts of one pair land in
        one partition."""
        dst = self.dst_prefix if self.channel == CHANNEL_PREFIX else self.dst_ip
        return f"{self.src_ip}>{dst}:{self.dst_port}/{self.proto}".encode()
