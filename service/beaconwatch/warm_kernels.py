"""Compile every numba kernel into numba's cache ahead of time (the container image's build).

Run as ``python -m beaconwatch.warm_kernels``.

numba compiles a kernel on its first call (30-60 s for all of ours) and, with ``cache=True``,
keeps the machine code in ``NUMBA_CACHE_DIR``. The container image runs this at build time so a
container loads its kernels from that cache and is ready in seconds. It runs what the service
runs: the service's own warm-up, then a few simulated hours with planted beacons through the
decoder of every input format and the detector (scoring and alerting included), and through
the repartition stage to the detector stage (read-only arrays: other signatures), so kernels
first called on real traffic are compiled too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import numpy as np
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from beaconwatch.config import Config
from beaconwatch.core.pipeline import Pipeline
from beaconwatch.core.repartition import Repartitioner
from beaconwatch.decode.registry import ENCODED_FORMATS, get_decoder
from beaconwatch.simulate.encoders import encoder
from beaconwatch.simulate.generator import SimulationSpec, TrafficSimulator
from beaconwatch.sources.record_batches import index_fetch

# Small but long enough for the planted beacons to be scored and alerted: every kernel runs.
_SPEC = SimulationSpec(seed=1, start_ms=1_700_000_000_000, duration_s=4 * 3600.0, hosts=20)


def compile_kernels(spec: SimulationSpec = _SPEC) -> dict[str, int]:
    """Run every kernel once; return the alerts raised per input format (a sanity check:
    each format must have seen the planted beacons)."""
    config = Config()
    Pipeline(config).warm_up()  # exactly what the service loads before it reads records
    flows = [f for _, chunk in TrafficSimulator(spec).flow_chunks() for f in chunk]
    alerts: dict[str, int] = {}
    for name in ENCODED_FORMATS:
        records = encoder(name)(flows)
        for decoder_name in (name, "auto"):
            pipeline = Pipeline(config, decoder=get_decoder(decoder_name))
            outcome = pipeline.process_records(records)
            alerts[f"{name} as {decoder_name}"] = len(outcome.alerts)
    # The service's two stages: collectors' records -> internal topic -> detector. One
    # internal partition keeps the flows in time order for the one detector here.
    repartitioner = Repartitioner(config, partitions=1, max_record_bytes=512 * 1024)
    # As the service reads them: Kafka record batches indexed in place (sources/raw_fetch.py).
    fetched = record_batches(encoder(config.kafka.input_format)(flows))
    index = index_fetch(np.frombuffer(fetched, dtype=np.uint8), 0)
    scoped = repartitioner.scope_buffer(fetched, index.value_starts, index.value_lengths, "flows")
    internal = [r for records in repartitioner.group([scoped.flows]).values() for r in records]
    pipeline = Pipeline(config, decoder=get_decoder("beaconwatch-flows"))
    alerts["repartitioned"] = len(pipeline.process_records(internal).alerts)
    return alerts


def record_batches(values: Sequence[bytes]) -> bytes:
    """``values`` as a broker sends them in a fetch: record batches (format v2) back to back."""
    out, offset = bytearray(), 0
    while offset < len(values):
        builder = DefaultRecordBatchBuilder(
            magic=2, compression_type=0, is_transactional=False, producer_id=-1,
            producer_epoch=-1, base_sequence=-1, batch_size=1 << 20,
        )  # fmt: skip
        count = 0
        while offset + count < len(values) and builder.append(
            count, timestamp=None, key=None, value=values[offset + count], headers=[]
        ):
            count += 1
        batch = bytearray(builder.build())
        batch[0:8] = offset.to_bytes(8, "big")  # the batch's base offset
        out += batch
        offset += count
    return bytes(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beaconwatch.warm_kernels", description=__doc__)
    parser.parse_args(argv)
    started_s = time.monotonic()
    alerts = compile_kernels()
    where = os.environ.get("NUMBA_CACHE_DIR", "numba's default cache directories")
    print(f"kernels compiled into {where} in {time.monotonic() - started_s:.0f} s")
    silent = [name for name, n in alerts.items() if n == 0]
    if silent:  # a path that raised no alert may have skipped the scoring kernels
        print(f"no alert from {', '.join(silent)}: kernels may be missing", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
