"""The pure, synchronous pipeline: raw records -> decode -> detector -> alerts.

Both the Kafka service and the offline `scan` command drive this one object, so a file scanned
offline and the same flows streamed through Kafka produce the same alerts.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from beaconwatch.alerting.alert import Alert
from beaconwatch.config import Config
from beaconwatch.core.detector import Detector, warm_up
from beaconwatch.decode.base import Decoder
from beaconwatch.decode.topic_decoders import TopicDecoders
from beaconwatch.domain.clock import EventClock
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.domain.rejections import Rejection, RejectReason
from beaconwatch.domain.stats import DetectorStats


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    alerts: list[Alert]
    rejections: list[Rejection]  # record_index refers to the `records` passed in
    flows_accepted: int
    source_hosts: np.ndarray  # `host_hash` of the batch's internal hosts (when reported)


class Pipeline:
    def __init__(
        self,
        config: Config,
        *,
        decoder: Decoder | None = None,
        clock: EventClock | None = None,
        stats: DetectorStats | None = None,
        wall_clock_ms: Callable[[], int] | None = None,
        report_source_hosts: bool = False,
    ) -> None:
        """``decoder``: one decoder for every input; by default each topic gets the decoder of
        its format in config (`kafka.topic_formats`, else `kafka.input_format`).
        ``report_source_hosts``: see `Detector`."""
        self.config = config
        self._decoders = TopicDecoders(config.kafka, decoder)
        self.stats = stats if stats is not None else DetectorStats()
        # State and watermarks are kept per input: (topic, partition), or the partition alone.
        self.detector = Detector(
            config,
            clock=clock,
            stats=self.stats,
            wall_clock_ms=wall_clock_ms,
            report_source_hosts=report_source_hosts,
        )

    def decoder_for(self, topic: str | None) -> Decoder:
        return self._decoders.for_topic(topic)

    def warm_up(self) -> None:
        """Build the decoders of every configured format and load (or compile) all kernels,
        so the first records do not wait 30-60 s for numba on a fresh install."""
        self._decoders.build_all()
        warm_up(self.config)

    def process_records(
        self, records: Sequence[bytes | None], partition: int = 0, topic: str | None = None
    ) -> BatchOutcome:
        """Decode and process one batch of raw records from one partition of one topic.

        A ``None`` record (a Kafka tombstone) is rejected like any other unusable record.
        Rejections come back in input order, indexed into ``records``. Without a topic (files)
        the partition number alone identifies the input.
        """
        values, positions, rejections = split_tombstones(records)
        decoder = self.decoder_for(topic)
        decoded = decoder.decode(values)
        key = partition if topic is None else (topic, partition)
        result = self.detector.process(decoded.flows, partition=key)
        # The detector counts its own. Per rejection only C loops here (a storm of bad records).
        counts = self.stats.rejected_by_reason
        counts.update(map(_reason, rejections))
        counts.update(map(_reason, decoded.rejections))
        late = result.rejections
        if late and getattr(decoder, "many_flows_per_record", False):
            late = _per_record(late, result.rejected_flows)
        if positions is None:  # indexes are already those of `records`
            rejections.extend(decoded.rejections)
            rejections.extend(late)
        else:
            for r in (*decoded.rejections, *late):
                rejections.append(r._replace(record_index=positions[r.record_index]))
        rejections.sort(key=_record_index)  # a C key; mostly sorted already: near linear
        return BatchOutcome(
            alerts=result.alerts,
            rejections=rejections,
            flows_accepted=result.flows_accepted,
            source_hosts=result.source_hosts,
        )

    def drop_topic_partitions(self, revoked: Sequence[tuple[str, int]]) -> int:
        """Forget the state of revoked (topic, partition)s; returns the number of pairs dropped."""
        return self.detector.drop_partitions(revoked)


_record_index = operator.itemgetter(0)  # Rejection is a named tuple
_reason = operator.itemgetter(1)


def _per_record(rejections: list[Rejection], flows: FlowBatch) -> list[Rejection]:
    """Flow rejections of many-flow records, one per (record, reason), each carrying just its
    flows as the value to dead-letter (not the whole record, nor it once per flow)."""
    from beaconwatch.decode.flow_columns import encode_flows

    groups: dict[tuple[int, str], list[int]] = {}
    for i, r in enumerate(rejections):
        groups.setdefault((r.record_index, r.reason), []).append(i)
    out = []
    for (record_index, reason), rows in groups.items():
        first = rejections[rows[0]].detail
        detail = first if len(rows) == 1 else f"{len(rows)} flows of the record, first: {first}"
        value = encode_flows(flows.take(np.asarray(rows, dtype=np.intp)))
        out.append(Rejection(record_index, reason, detail, value))
    return out


def split_tombstones(
    records: Sequence[bytes | None],
) -> tuple[Sequence[bytes], list[int] | None, list[Rejection]]:
    """(values to decode, their indexes in ``records`` or None if all are values, tombstones)."""
    if None not in records:  # a C loop: tombstones are rare
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
