"""Why a record could not be used: the reason labels and the per-record `Rejection`.

Value types of the domain: decoders make them, the engine adds its event-time verdicts
(too late, too far in the future), and the runtime counts them and dead-letters the records.
"""

from __future__ import annotations

from typing import NamedTuple


class RejectReason:
    """Stable reason labels. Keep them few: each is a Prometheus label value."""

    INVALID_JSON = "invalid_json"
    INVALID_PROTOBUF = "invalid_protobuf"  # malformed wire data or length prefix
    INVALID_UTF8 = "invalid_utf8"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"  # wrong type, out of range, NaN, negative, ...
    INVALID_ADDRESS = "invalid_address"
    OVERSIZED = "oversized"
    TOO_LATE = "too_late"  # event time older than the watermark minus the allowed lateness
    TOO_FAR_FUTURE = "too_far_future"  # event time beyond the wall clock plus max_future_s
    TOMBSTONE = "tombstone"  # a Kafka record without a value
    UNKNOWN_FORMAT = "unknown_format"  # `auto` could not tell which format the record is
    INVALID_FLOW_BATCH = "invalid_flow_batch"  # an internal-topic record that is not one


class Rejection(NamedTuple):
    """One unusable record. A named tuple, not a dataclass: a storm of bad records makes one
    per record, and a tuple of ints and strings is built 3x faster and leaves the garbage
    collector's tracking at its first pass (a dataclass is tracked until it dies, which makes
    full collections over the whole heap more frequent)."""

    record_index: int  # index of the record in the input sequence
    reason: str  # one of RejectReason
    detail: str  # short human-readable explanation (goes to the dead-letter headers)
    # What to dead-letter instead of the whole record: the rejected flows alone, when the
    # record carries many (`beaconwatch-flows`). None: the record as it came.
    value: bytes | None = None
