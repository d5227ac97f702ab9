"""The pure, synchronous pipeline: raw records -> decode -> detector -> alerts.

Both the Kafka service and the offline `scan` command drive this one object, so a file scanned
offline and the same flows streamed through Kafka produce the same alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from beaconwatch.alerting.alert import Alert
from beaconwatch.config import Config
from beaconwatch.core.clock import EventClock
from beaconwatch.core.detector import Detector
from beaconwatch.core.stats import DetectorStats
from beaconwatch.decode.base import Decoder, Rejection, RejectReason
from beaconwatch.decode.registry import get_decoder


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    alerts: list[Alert]
    rejections: list[Rejection]  # record_index refers to the `records` passed in
    flows_accepted: int


class Pipeline:
    def __init__(
        self,
        config: Config,
        *,
        decoder: Decoder | None = None,
        clock: EventClock | None = None,
        stats: DetectorStats | None = None,
        wall_clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self.decoder = decoder if decoder is not None else get_decoder(config.kafka.input_format)
        self.stats = stats if stats is not None else DetectorStats()
        self.detector = Detector(config, clock=clock, stats=self.stats, wall_clock_ms=wall_clock_ms)

    def process_records(self, records: Sequence[bytes | None], partition: int = 0) -> BatchOutcome:
        """Decode and process one batch of raw records from one partition.

        A ``None`` record (a Kafka tombstone) is rejected like any other unusable record.
        Rejections come back in input order, indexed into ``records``.
        """
        values, positions, rejections = _split_tombstones(records)
        decoded = self.decoder.decode(values)
        result = self.detector.process(decoded.flows, partition=partition)
        for rejection in (*rejections, *decoded.rejections):  # the detector counts its own
            self.stats.rejected_by_reason[rejection.reason] += 1
        for r in (*decoded.rejections, *result.rejections):
            index = r.record_index if positions is None else positions[r.record_index]
            rejections.append(Rejection(index, r.reason, r.detail))
        rejections.sort(key=lambda r: r.record_index)
        return BatchOutcome(
            alerts=result.alerts, rejections=rejections, flows_accepted=result.flows_accepted
        )

    def drop_partitions(self, partitions: Sequence[int]) -> int:
        """Forget the state of revoked partitions; returns the number of pairs dropped."""
        return self.detector.drop_partitions(partitions)


def _split_tombstones(
    records: Sequence[bytes | None],
) -> tuple[Sequence[bytes], list[int] | None, list[Rejection]]:
    """(values to decode, their indexes in ``records`` or None if all are values, tombstones)."""
    if all(r is not None for r in records):
        return cast(Sequence[bytes], records), None, []
    values: list[bytes] = []
    positions: list[int] = []
    tombstones: list[Rejection] = []
    for i, record in enumerate(records):
        if record is None:
            tombstones.append(
                Rejection(i, RejectReason.TOMBSTONE, "record has no value (tombstone)")
            )
        else:
            values.append(record)
            positions.append(i)
    return values, positions, tombstones
