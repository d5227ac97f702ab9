"""The repartition stage's core: collectors' records -> flows keyed by internal host.

Collectors spread records over their topic's partitions at random (goflow2 and nfacctd by
default), so one pair's connections land on several partitions and no single partition's state
sees the whole pair. This stage decodes the records, scopes and orients the flows (so the
source is the internal host) and groups them by `host_partitions` of the internal topic; the
detector stage then reads each host's every flow from one partition, wherever it came from.
Each group goes out as few `beaconwatch-flows` records (`decode/flow_columns.py`), in input
order. Pure and synchronous, like the `Pipeline` the detector stage runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from beaconwatch.config import Config
from beaconwatch.core.host_owners import host_hash
from beaconwatch.core.pipeline import split_tombstones
from beaconwatch.core.scope import FlowScope
from beaconwatch.decode.base import Decoder, DecodeResult
from beaconwatch.decode.flow_columns import BYTES_PER_FLOW, HEADER_BYTES, encode_flows
from beaconwatch.decode.scan.batch_scan import join_columns
from beaconwatch.decode.scan.goflow2_json import Goflow2JsonDecoder
from beaconwatch.decode.scan.goflow2_pb import Goflow2PbDecoder
from beaconwatch.decode.topic_decoders import TopicDecoders
from beaconwatch.domain.dtypes import I64
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.domain.rejections import Rejection
from beaconwatch.domain.stats import DetectorStats


def host_partitions(
    hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64], partitions: int
) -> npt.NDArray[np.int32]:
    """The internal-topic partition of each host: a fixed 64-bit mix of its address, modulo
    ``partitions``. Every process and version computes the same (it decides where state is)."""
    z = host_hash(hi, lo)
    return (z % np.uint64(partitions)).astype(np.int32)


@dataclass(frozen=True, slots=True)
class Scoped:
    flows: FlowBatch  # oriented flows in scope, in input order
    rejections: list[Rejection]  # record_index refers to the `records` passed in


class Repartitioner:
    def __init__(
        self,
        config: Config,
        *,
        partitions: int,
        max_record_bytes: int,
        stats: DetectorStats | None = None,
        decoder: Decoder | None = None,
    ) -> None:
        """``partitions``: of the internal topic; ``max_record_bytes``: the largest record to
        write (below the producer's batch and request limits)."""
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.config = config
        self.partitions = partitions
        self.flows_per_record = max(1, (max_record_bytes - HEADER_BYTES) // BYTES_PER_FLOW)
        self.stats = stats if stats is not None else DetectorStats()
        self.scope = FlowScope(config.network)
        self.decoders = TopicDecoders(config.kafka, decoder)

    def scope_records(self, records: Sequence[bytes | None], topic: str) -> Scoped:
        """Decode one partition's batch of collector records; keep the oriented flows in
        scope. Rejections come back in input order, indexed into ``records``; flows out of
        scope are counted in ``stats.ignored_by_reason``."""
        values, positions, rejections = split_tombstones(records)
        decoded = self.decoders.for_topic(topic).decode(values)
        return self._scoped(decoded, positions, rejections)

    def scope_buffer(self, data: bytes, starts: I64, lengths: I64, topic: str) -> Scoped:
        """`scope_records` of records lying back to back in ``data`` (a Kafka fetch): record
        i is data[starts[i]:starts[i] + lengths[i]], length -1 for no value. The scanning
        decoders read them where they lie; other formats get them as bytes."""
        decoder = self.decoders.for_topic(topic)
        if not isinstance(decoder, Goflow2JsonDecoder | Goflow2PbDecoder) or (lengths < 0).any():
            values = [
                None if n < 0 else data[s : s + n]
                for s, n in zip(starts.tolist(), lengths.tolist(), strict=True)
            ]
            return self.scope_records(values, topic)
        joined = join_columns(data, starts, lengths, decoder.max_record_bytes)
        return self._scoped(decoder.decode_joined(joined), None, [])

    def _scoped(
        self, decoded: DecodeResult, positions: list[int] | None, rejections: list[Rejection]
    ) -> Scoped:
        if positions is None:
            rejections.extend(decoded.rejections)
        else:
            rejections.extend(
                r._replace(record_index=positions[r.record_index]) for r in decoded.rejections
            )
            rejections.sort(key=lambda r: r.record_index)
        self.stats.rejected_by_reason.update(r.reason for r in rejections)
        scoped = self.scope.apply(decoded.flows)
        self.stats.ignored_by_reason.update(scoped.ignored)
        return Scoped(scoped.flows, rejections)

    def group(self, batches: Sequence[FlowBatch]) -> dict[int, list[bytes]]:
        """Flows of one poll (every input partition's) -> internal partition -> records.

        Each partition's flows go out in start-time order (stable): a poll holds a run of
        records from each input partition, and written one partition's run after another, a
        backlog's later runs would reach the detector older than its watermark allows.
        """
        flows = FlowBatch.concat(list(batches))
        if len(flows) == 0:
            return {}
        by_time = np.argsort(flows.start_ms, kind="stable")
        partition = host_partitions(flows.src_hi[by_time], flows.src_lo[by_time], self.partitions)
        order = by_time[np.argsort(partition, kind="stable")]
        ordered = np.sort(partition)
        bounds = np.flatnonzero(np.diff(ordered)) + 1
        out: dict[int, list[bytes]] = {}
        step = self.flows_per_record
        for first, rows in zip(np.concatenate(([0], bounds)), np.split(order, bounds), strict=True):
            out[int(ordered[first])] = [
                encode_flows(flows.take(rows[i : i + step])) for i in range(0, len(rows), step)
            ]
        return out
