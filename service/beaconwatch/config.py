"""Configuration: one TOML file plus ``BEACONWATCH_*`` environment overrides, validated at start-up.

``config/beaconwatch.toml`` documents every key with its default. An override names a key by
its section and name joined with a double underscore, e.g. ``BEACONWATCH_KAFKA__BOOTSTRAP_SERVERS``
or ``BEACONWATCH_SCORING__THRESHOLD=0.7``; values are parsed as TOML literals when they can be
(numbers, booleans, arrays) and taken as plain strings otherwise. Unknown keys are errors, so a
typo cannot silently fall back to a default.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from beaconwatch.config_security import KafkaSecurity

ENV_PREFIX = "BEACONWATCH_"


class ConfigError(Exception):
    """Raised for any invalid configuration; the message names the offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZeekTsvTopic(_Section):
    """``[kafka.zeek_tsv_topics.<topic>]``: what a `zeek-tsv` topic of header-less Zeek TSV
    lines (one log per topic, as Filebeat/Vector/fluent-bit ship them) carries."""

    log: Literal["conn", "ssl", "http"] = "conn"
    # The lines' columns in order, for sites that changed them (policy scripts, plugins);
    # unset = Zeek's default columns of `log` (decode/zeek/zeek_columns.py).
    fields: list[str] | None = None

    @model_validator(mode="after")
    def _readable_columns(self) -> ZeekTsvTopic:
        from beaconwatch.decode.zeek.zeek_columns import column_problem

        problem = None if self.fields is None else column_problem(self.log, self.fields)
        if problem is not None:
            raise ValueError(f"fields: {problem}")
        return self


class KafkaConfig(KafkaSecurity):  # TLS and SASL settings: config_security.py
    bootstrap_servers: str = "127.0.0.1:9092"
    input_topics: list[str] = Field(default_factory=lambda: ["flows"], min_length=1)
    # Record format of every input topic, unless `topic_formats` names one for the topic.
    input_format: str = "goflow2-json"
    topic_formats: dict[str, str] = Field(default_factory=dict)  # topic -> format
    # Header-less Zeek TSV lines on Kafka: which log (and columns) each zeek-tsv topic carries;
    # a zeek-tsv topic not named here carries conn.log lines with Zeek's default columns.
    zeek_tsv_topics: dict[str, ZeekTsvTopic] = Field(default_factory=dict)
    alerts_topic: str = Field("beaconwatch.alerts", min_length=1)
    dead_letter_topic: str = Field("beaconwatch.dead-letter", min_length=1)
    group_id: str = Field("beaconwatch", min_length=1)
    client_id: str = "beaconwatch"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    max_batch_records: int = Field(10_000, ge=1, le=1_000_000)
    poll_timeout_ms: int = Field(500, ge=1, le=60_000)
    max_partition_fetch_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    session_timeout_ms: int = Field(10_000, ge=1_000)  # group member considered dead after this
    heartbeat_interval_ms: int = Field(3_000, ge=100)  # must be well below session_timeout_ms
    create_topics: bool = True  # create missing output topics at start-up
    # Topics the service creates (alerts, dead letter, internal, state): their replication
    # factor, and the partitions of the alerts and dead-letter topics.
    topic_replication_factor: int = Field(1, ge=1, le=32)
    output_topic_partitions: int = Field(1, ge=1, le=10_000)
    # Output batches (alerts, dead letters): bytes per partition and wait before a send.
    # Within the broker's message.max.bytes (1 MiB by default).
    producer_batch_bytes: int = Field(512 * 1024, ge=1024, le=1024 * 1024)
    producer_linger_ms: int = Field(5, ge=0, le=10_000)
    # Idempotent producer: a retried send is never written twice (Apache Kafka >= 0.11; not
    # Tansu, not every managed service). Off, acks=all + commit-after-ack is at-least-once.
    idempotent_producer: bool = False
    # Checkpoints of each input partition's state (runtime/checkpoints.py) in a compacted
    # topic, every checkpoint_interval_s and on revoke and shutdown; a partition assigned to
    # any instance resumes from its latest one. 0 = no checkpoints (state is rebuilt from the
    # input: a restart forgets every pair's history).
    state_topic: str = Field("beaconwatch.state", min_length=1)
    state_topic_partitions: int = Field(16, ge=1, le=10_000)
    checkpoint_interval_s: float = Field(60.0, ge=0.0)
    # Keyed repartitioning (core/repartition.py): the collectors' records are decoded, scoped
    # and written keyed by internal host to internal_topic, which the detector stage reads, so
    # each host's flows meet in one partition's state however the collectors spread them.
    # Set input_keyed_by_host = true only if every collector keys its records by source
    # address (docs/operations.md); the detector then reads input_topics directly.
    input_keyed_by_host: bool = False
    internal_topic: str = Field("beaconwatch.flows", min_length=1)
    internal_topic_partitions: int = Field(16, ge=1, le=10_000)  # detector parallelism cap
    # The detector stage's consumer group on internal_topic ("" = group_id + ".detect");
    # group_id is the group reading input_topics (the repartition stage, or the detector).
    detect_group_id: str = ""
    # Retries: the Kafka client's fixed wait between attempts (aiokafka's retry_backoff_ms),
    # and the service's own retries of outputs and commits that failed in an outage (resent
    # after full-jitter exponential backoff from retry_backoff_ms up to retry_backoff_max_ms).
    retry_backoff_ms: int = Field(100, ge=10, le=60_000)
    retry_backoff_max_ms: int = Field(10_000, ge=10, le=600_000)
    # After SIGTERM: time to finish the batch, commit and checkpoint before exiting anyway
    # (status 1; with the broker away nothing more can be acknowledged). Keep Kubernetes'
    # terminationGracePeriodSeconds above it.
    shutdown_timeout_s: float = Field(30.0, gt=0, le=3_600)
    # Longest a fetch waits for data on an idle topic: the floor of alert latency at idle.
    fetch_max_wait_ms: int = Field(500, ge=0, le=60_000)
    # Settings of the topics the service creates (production values: docs/operations.md).
    # Retention in ms (-1 = forever; unset = the broker's log.retention.*): the alerts topic
    # is the record of what was found, the dead letters are for inspection, the internal
    # topic needs only the detector's lag plus a restart (checkpoints resume from it).
    alerts_retention_ms: int | None = Field(None, ge=-1)
    dead_letter_retention_ms: int | None = Field(None, ge=-1)
    internal_retention_ms: int | None = Field(None, ge=-1)
    # min.insync.replicas of every created topic (unset = the broker's default): with
    # acks=all, a write fails rather than land on fewer replicas. At most the replication.
    topic_min_insync_replicas: int | None = Field(None, ge=1, le=32)

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> KafkaConfig:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be below session_timeout_ms")
        return self

    @model_validator(mode="after")
    def _min_insync_within_replication(self) -> KafkaConfig:
        if (self.topic_min_insync_replicas or 1) > self.topic_replication_factor:
            raise ValueError("topic_min_insync_replicas must be at most topic_replication_factor")
        return self

    @model_validator(mode="after")
    def _known_formats(self) -> KafkaConfig:
        from beaconwatch.decode.registry import FORMAT_NAMES

        for name in (self.input_format, *self.topic_formats.values()):
            if name not in FORMAT_NAMES:
                raise ValueError(f"unknown input format {name!r}; known: {', '.join(FORMAT_NAMES)}")
        return self

    @model_validator(mode="after")
    def _zeek_tsv_topics_are_zeek_tsv(self) -> KafkaConfig:
        for topic in self.zeek_tsv_topics:
            if self.format_for(topic) != "zeek-tsv":
                raise ValueError(
                    f"zeek_tsv_topics names topic {topic!r}, whose format is "
                    f"{self.format_for(topic)!r}, not 'zeek-tsv' (see topic_formats)"
                )
        return self

    def format_for(self, topic: str) -> str:
        return self.topic_formats.get(topic, self.input_format)

    @property
    def detect_group(self) -> str:
        """The detector stage's consumer group."""
        if self.input_keyed_by_host:
            return self.group_id
        return self.detect_group_id or f"{self.group_id}.detect"

    @model_validator(mode="after")
    def _internal_topic_apart(self) -> KafkaConfig:
        outputs = {self.alerts_topic, self.dead_letter_topic, self.state_topic}
        if not self.input_keyed_by_host:
            if self.internal_topic in {*self.input_topics, *outputs}:
                raise ValueError("internal_topic must differ from the input and output topics")
            if self.detect_group == self.group_id:
                raise ValueError("detect_group_id must differ from group_id")
        return self


RFC1918_AND_ULA = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
# Public NTP services with stable anycast prefixes (Google, Cloudflare, Apple, NIST).
WELL_KNOWN_NTP = ["216.239.35.0/24", "162.159.200.0/24", "17.253.0.0/16", "129.6.15.0/24"]


class NetworkConfig(_Section):
    """Which addresses are ours: pairs are (internal source -> external destination)."""

    internal_cidrs: list[str] = Field(default_factory=lambda: list(RFC1918_AND_ULA))
    # Internal -> internal pairs (lateral movement, internal C2 relays) are tracked only if set.
    track_internal_destinations: bool = False
    # UDP/123 to these is never alerted (the fleet's configured time servers).
    ntp_servers: list[str] = Field(default_factory=lambda: list(WELL_KNOWN_NTP))
    # UDP/123 with NTP-sized packets (48-byte NTP + UDP + IP headers, a MAC) to any server is
    # never alerted either: pool.ntp.org gives each host other servers (see core/scope.py).
    ntp_any_server: bool = True
    ntp_max_packet_bytes: int = Field(128, ge=76, le=1500)

    @model_validator(mode="after")
    def _valid_cidrs(self) -> NetworkConfig:
        for cidr in (*self.internal_cidrs, *self.ntp_servers):
            _check_cidr(cidr)
        return self


def _check_cidr(cidr: str) -> None:
    try:
        ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise ValueError(f"not a CIDR network: {cidr!r}") from exc


class StateConfig(_Section):
    window_s: float = Field(86_400.0, gt=0)  # history kept per pair; idle pairs evicted after it
    # Slow pairs (fewer than history_events / 2 connections in window_s, e.g. 4 h beacons) are
    # scored on their last history_events / 2 connections, reaching back at most this far.
    long_window_s: float = Field(259_200.0, gt=0)
    history_events: int = Field(32, ge=4, le=1024)  # ring-buffer length per pair
    max_pairs: int = Field(1_000_000, ge=16)  # hard cap; least-recently-seen pairs evicted
    # Flows that ended more than this before their partition's watermark are rejected as late.
    allowed_lateness_s: float = Field(600.0, ge=0)
    max_future_s: float = Field(3_600.0, ge=0)  # flows starting after wall clock + this: rejected
    # Flows ahead of the wall clock by more than this come from an exporter whose clock is
    # fast: kept, counted and warned about, but they do not move event time (core/watermark.py).
    clock_tolerance_s: float = Field(60.0, ge=0)
    # A record on a known connection's 5-tuple starting within this of its start repeats it
    # (a second exporter, the reply direction); one starting up to continuation_gap_s after its
    # end continues it (active-timeout export). Neither is a new check-in.
    duplicate_tolerance_s: float = Field(1.0, ge=0, le=60)
    continuation_gap_s: float = Field(1.0, ge=0, le=60)
    # Under 1:N packet sampling an active-timeout piece with no sampled packet is not exported:
    # a sampled pair's record on the 5-tuple up to this after the known end still continues
    # it (else one long session became several "sessions" for the long-connection rule).
    sampled_continuation_gap_s: float = Field(3_600.0, ge=0, le=86_400)
    # Also score (source, destination /24 or IPv6 /48, port, protocol) channels: C2 behind a
    # CDN or DNS round-robin changes IP per check-in (`core.channels`). A channel takes a row
    # once its source reached a second IP in it (`state.channel_index`).
    prefix_channels: bool = True
    # Also score (source, destination name, port, protocol) channels where the input carries
    # names (TLS SNI, HTTP host: `core.channels`), promoted at a second IP of the name
    # (`state.name_channels`).
    name_channels: bool = True

    @model_validator(mode="after")
    def _long_window_covers_window(self) -> StateConfig:
        if self.long_window_s < self.window_s:
            raise ValueError("long_window_s must be at least window_s")
        # Ring times are u32 ms after an epoch re-based every ~25 days (state/pair_table.py).
        if self.long_window_s + self.allowed_lateness_s > 20 * 86_400:
            raise ValueError("long_window_s + allowed_lateness_s must stay below 20 days")
        return self


class ScoringConfig(_Section):
    threshold: float = Field(0.8, ge=0, le=1)  # alert when the combined score reaches this
    min_events: int = Field(8, ge=3)  # connections a pair needs before it is scored
    # ...or this many, for a slow pair (one connection per slow_interval_s or fewer since it
    # was first seen): a 4 h beacon has 7 check-ins in its first day, a 12 h one 6 in three.
    # Not 3: two intervals are no evidence against a benign scheduled task (scoring/sparse.py).
    min_events_slow: int = Field(4, ge=3)
    slow_interval_s: float = Field(3_600.0, gt=0)
    rescore_every_events: int = Field(4, ge=1)  # rescore after this many new connections...
    rescore_interval_s: float = Field(900.0, gt=0)  # ...or this much event time, if any arrived
    min_period_s: float = Field(1.0, ge=0)  # median intervals below this are not beacons
    # Connections this close after one another can form one check-in (SYN retransmissions,
    # parallel connections), when the pair's gaps fall in two clear groups (scoring/bursts.py).
    # 0 scores every connection as a check-in.
    burst_gap_s: float = Field(30.0, ge=0)
    weight_intervals: float = Field(0.6, ge=0)  # timing regularity (folded interval spread)
    weight_sizes: float = Field(0.25, ge=0)  # byte-count regularity (padding-tolerant)
    weight_count: float = Field(0.15, ge=0)  # connections in the window
    # Relative spread (b - a) / mean of the single-beat intervals: up to spread_free the timing
    # part is full (jitter up to about 60 % subtractive, +/-45 % symmetric or 100 % additive),
    # then it fades linearly to 0 at spread_tolerance (Poisson arrivals give about 2).
    spread_free: float = Field(0.9, ge=0)
    spread_tolerance: float = Field(2.2, gt=0)
    # The score is gated by the evidence of periodicity, log10(1/p) with p = 1 - confidence
    # (Poisson null): 0 at or below min_confidence, full at full_confidence (linear in log p).
    min_confidence: float = Field(0.98, ge=0, lt=1)
    full_confidence: float = Field(0.9999, gt=0, lt=1)
    # Share of missed check-ins that costs nothing; above it the score falls to 0 at 100 %.
    missed_allowance: float = Field(0.3, ge=0, lt=1)
    # Windows of 4 up to this many check-ins also get the closed-form test of scoring/sparse.py
    # (exact interval spacing, and near-constant sizes if sparse_size_density > 0); 0: off.
    sparse_max_connections: int = Field(7, ge=0, le=16)
    # Its size null: a benign pair's log byte counts have at most this density per unit of
    # ln(bytes); 0 (default) leaves sizes out. The synthetic browsing fits 0.37, but a real
    # host's automated clients repeat their sizes to the byte (30-40 on the benign Windows
    # capture), and there a size test alerts on scheduled tasks.
    sparse_size_density: float = Field(0.0, ge=0)
    sparse_min_bytes: float = Field(200.0, ge=0)  # smaller connections say nothing by size
    # Bulk transfer: a pair whose median connection carries more than this many bytes per
    # second of the median interval (segment streaming, backups) is down-ranked, linearly to
    # 0 at 4 times the rate (scoring/window_score.py). 0 turns it off.
    bulk_rate_bytes_s: float = Field(16_384.0, ge=0)

    @model_validator(mode="after")
    def _weights_sum_positive(self) -> ScoringConfig:
        if self.weight_intervals + self.weight_sizes + self.weight_count <= 0:
            raise ValueError("weight_intervals + weight_sizes + weight_count must be > 0")
        if self.full_confidence <= self.min_confidence:
            raise ValueError("full_confidence must be above min_confidence")
        if self.spread_tolerance <= self.spread_free:
            raise ValueError("spread_tolerance must be above spread_free")
        return self


class PrevalenceConfig(_Section):
    """Down-ranking of destinations that much of the fleet contacts (fleet-wide polling)."""

    min_sources: int = Field(3, ge=1)  # destinations with fewer sources are never down-ranked
    low_share: float = Field(0.1, ge=0, le=1)  # share of internal sources where it starts...
    high_share: float = Field(0.5, ge=0, le=1)  # ...and where the score reaches 0
    # P2P fan-out: a source keeping more than fanout_low_destinations destinations in one
    # 16-port block of high ports (BitTorrent's 6881-6889) is down-ranked there, linearly to
    # 0 at fanout_high_destinations. Service ports (< 1024) are never counted.
    fanout_low_destinations: int = Field(4, ge=1)
    fanout_high_destinations: int = Field(12, ge=2)

    @model_validator(mode="after")
    def _ordered(self) -> PrevalenceConfig:
        if self.high_share <= self.low_share:
            raise ValueError("high_share must be above low_share")
        if self.fanout_high_destinations <= self.fanout_low_destinations:
            raise ValueError("fanout_high_destinations must be above fanout_low_destinations")
        return self


class AllowRule(_Section):
    """Never alert on matching pairs: a known-good destination, optionally for some sources."""

    destination: str  # CIDR (a single address is a /32 or /128)
    ports: list[int] = Field(default_factory=list)  # empty = any destination port
    sources: list[str] = Field(default_factory=list)  # CIDRs; empty = any internal source
    expires: datetime.date | None = None  # the rule stops applying to traffic after this day
    comment: str = ""

    @model_validator(mode="after")
    def _valid(self) -> AllowRule:
        for cidr in (self.destination, *self.sources):
            _check_cidr(cidr)
        for port in self.ports:
            if not 0 <= port <= 65_535:
                raise ValueError(f"port out of range: {port}")
        return self


class AlertingConfig(_Section):
    # Event time after an alert before the same pair may alert again (an update, and only when
    # its period or score changed materially).
    cooldown_s: float = Field(3_600.0, ge=0)
    update_period_change: float = Field(0.1, gt=0)  # relative period change worth an update
    update_score_change: float = Field(0.2, gt=0)  # score rise worth an update
    # Connections open this long to a destination few internal hosts use alert (rule
    # beaconwatch-long-connection: C2 held in one session has too few starts to score) once
    # the pair has had long_connection_sessions of them, each within window_s of the last.
    # 0 turns the rule off.
    long_connection_s: float = Field(7_200.0, ge=0)
    long_connection_sessions: int = Field(3, ge=1, le=1000)
    # Rule "sparse-beacon" (a hunting lead, severity low): a pair's first three connections,
    # both intervals at least sparse_min_interval_s and within sparse_max_deviation of their
    # mean, two of the three sizes alike, to a destination no other internal host reaches: a
    # daily beacon in its first 72 h (scoring/daily.py). 0 turns the rule off.
    sparse_min_interval_s: float = Field(64_800.0, ge=0)
    sparse_max_deviation: float = Field(0.1, ge=0, le=1)
    severity_medium: float = Field(0.85, ge=0, le=1)  # score bands; below medium = low
    severity_high: float = Field(0.92, ge=0, le=1)
    severity_critical: float = Field(0.97, ge=0, le=1)
    # Alert documents on the alerts topic (and `scan` JSON lines): ECS 8.x, or OCSF 1.8.0
    # Detection Findings (alerting/ocsf.py). Same record key and headers either way.
    format: Literal["ecs", "ocsf"] = "ecs"


class MetricsConfig(_Section):
    host: str = "0.0.0.0"
    port: int = Field(9108, ge=0, le=65_535)  # 0 = pick a free port (tests)


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Config(_Section):
    kafka: KafkaConfig = KafkaConfig()
    network: NetworkConfig = NetworkConfig()
    state: StateConfig = StateConfig()
    scoring: ScoringConfig = ScoringConfig()
    prevalence: PrevalenceConfig = PrevalenceConfig()
    alerting: AlertingConfig = AlertingConfig()
    allowlist: list[AllowRule] = Field(default_factory=list)
    metrics: MetricsConfig = MetricsConfig()
    logging: LoggingConfig = LoggingConfig()


# Keys whose values are secrets: taken from the environment as they are (never parsed as TOML,
# so "12345" stays text) and never shown in a config error.
SECRET_KEYS = frozenset({"sasl_password", "ssl_key_password", "sasl_oauth_client_secret"})


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if len(path) != 2 or not all(path):
            raise ConfigError(f"environment variable {name}: expected {ENV_PREFIX}<SECTION>__<KEY>")
        section, key = path
        target = data.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"environment variable {name}: [{section}] is not a section")
        target[key] = raw if key in SECRET_KEYS else _parse_env_value(raw)


def _format_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"  {key}: {msg}{_shown(e['loc'], e.get('input'))}")
    return "\n".join(lines)


def _shown(loc: tuple[int | str, ...], value: object) -> str:
    """What a config error may show of the offending value: nothing of a secret, and nothing
    of a whole section (a check across keys gets the section, passwords included)."""
    if any(part in SECRET_KEYS for part in loc) or isinstance(value, dict | list):
        return ""
    return f" (got {value!r})"


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (TOML; None = defaults only), apply env overrides, validate.

    Raises ConfigError with a message naming each invalid key.
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    _apply_env(data, os.environ if env is None else env)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from None


def with_overrides(config: Config, **sections: Any) -> Config:
    """A copy of ``config`` with some keys replaced, validated (used by the CLI and tests)."""
    data = config.model_dump()
    for section, values in sections.items():
        current = data[section]
        data[section] = {**current, **values} if isinstance(current, dict) else values
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, "overrides")) from None
