"""The decoder contract: raw records (bytes) in, a FlowBatch plus per-record rejections out.

A decoder never raises on bad input: every record it cannot turn into a flow is reported as a
`Rejection` with a stable, low-cardinality `reason` (used as a metric label and a dead-letter
header) and a human-readable `detail`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from beaconwatch.domain.flows import FlowBatch
from beaconwatch.domain.rejections import Rejection


@dataclass(frozen=True, slots=True)
class DecodeResult:
    flows: FlowBatch  # flows.record_index maps each flow back to its input record
    rejections: list[Rejection]


class Decoder(Protocol):
    """Turns a batch of raw records into flows. Implementations are pure and synchronous."""

    name: str

    def decode(self, records: Sequence[bytes]) -> DecodeResult: ...
