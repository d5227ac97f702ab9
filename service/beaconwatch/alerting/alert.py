"""The alert value object produced by the core and encoded for sinks (see `ecs.py`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BeaconStats:
    """What the scoring kernels measured over one pair's window (times in seconds)."""

    score: float  # combined score in [0, 1]
    period_s: float  # median inter-arrival interval
    interval_mad_s: float  # median absolute deviation of intervals
    interval_bowley: float  # Bowley (quartile) skewness of intervals, in [-1, 1]
    interval_cv: float  # coefficient of variation (std / mean) of intervals
    connections: int  # connections in the scored window
    bytes_median: float
    bytes_mad: float
    interval_score: float  # the parts the combined score is made of, each in [0, 1]
    size_score: float
    count_score: float


@dataclass(frozen=True, slots=True)
class Alert:
    event_id: str  # deterministic: same pair and alert window -> same id
    src_ip: str
    dst_ip: str
    dst_port: int
    proto: int  # IANA protocol number
    window_start_ms: int  # first connection in the scored window (event.start)
    window_end_ms: int  # last connection in the scored window (event.end)
    first_seen_ms: int  # first time the pair was seen while tracked
    detected_ms: int  # event-time watermark when the alert fired
    severity: str  # low | medium | high | critical
    stats: BeaconStats
    partition: int = 0  # Kafka partition the pair's flows came from

    @property
    def pair_key(self) -> bytes:
        """Kafka record key: the pair, so all alerts of one pair land in one partition."""
        return f"{self.src_ip}>{self.dst_ip}:{self.dst_port}/{self.proto}".encode()
