"""Scan goflow2 JSON with the numba scanner while many Python threads allocate and free.

``python -m tests.harness.scan_under_allocation SECONDS THREADS`` exits 0 when every scan
gave the same columns as a scan made before the threads started, 1 when one differed; a
crash is the failure it exists for. The scanner releases the GIL, so the other threads run
during the scan; sharing the scanner's malloc arena (``MALLOC_ARENA_MAX=1``, or more threads
than glibc's 8 arenas per core) they take over any block it frees. Lists of ~300 items are
malloc'ed at the size of the scanner's largest scratch array: before
`raw_pointer.keep_alive`, numba freed that array once its pointer was taken, a list's item
pointers landed in it, and the scanner stored through one of them (the demo's intermittent
SIGSEGV).
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from beaconwatch.decode.scan.batch_scan import join_records
from beaconwatch.decode.scan.goflow2_json import Goflow2JsonDecoder
from beaconwatch.decode.scan.json_scan import OK, scan_batch
from beaconwatch.simulate.encoders import goflow2_json
from beaconwatch.simulate.model import SimFlow

T0_MS = 1_700_000_000_000


def goflow2_records(count: int) -> list[bytes]:
    """Records as the demo's simulator writes them (same keys in the same order: the
    scanner's key-template path)."""
    flows = [
        SimFlow(
            start_ms=T0_MS + i * 1000, end_ms=T0_MS + i * 2000,
            src_ip=f"10.0.{i // 256 % 256}.{i % 256}", dst_ip=f"203.0.113.{i % 200}",
            src_port=1024 + i % 60000, dst_port=443, proto="TCP", bytes=100 + i,
            packets=1 + i % 7, tcp_flags=2 if i % 3 else 18,
        )
        for i in range(count)
    ]  # fmt: skip
    return goflow2_json(flows)


def _allocate_and_free(stop: threading.Event, seed: int) -> None:
    rng = np.random.default_rng(seed)
    while not stop.is_set():
        for n in rng.integers(250, 360, size=50).tolist():
            items = list(range(1000, 1000 + n))
            del items
        time.sleep(0)


def main(seconds: float, threads: int) -> int:
    decoder = Goflow2JsonDecoder()
    joined = join_records(goflow2_records(4000), 1 << 16)
    args = (
        joined.buf, joined.starts, joined.ends, decoder._keys, decoder._key_lens,
        decoder._names, decoder._name_lens, decoder._name_nums,
    )  # fmt: skip
    expected = [np.asarray(column).copy() for column in scan_batch(*args)]
    assert (expected[0] == OK).all(), "every record is plain goflow2 JSON"
    stop = threading.Event()
    workers = [
        threading.Thread(target=_allocate_and_free, args=(stop, seed)) for seed in range(threads)
    ]
    for worker in workers:
        worker.start()
    scans = differing = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            got = scan_batch(*args)
            scans += 1
            differing += any(not np.array_equal(a, b) for a, b in zip(expected, got, strict=True))
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    print(f"scans {scans}, differing {differing}")
    return 1 if differing or scans == 0 else 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]), int(sys.argv[2])))
