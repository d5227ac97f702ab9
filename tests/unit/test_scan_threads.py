"""The JSON scanner under other threads' allocations: its scratch memory stays its own.

Regression test of the demo's intermittent SIGSEGV (see ``raw_pointer.keep_alive``): before
the fix this crashed in every run of a few seconds (3 of 3 with one malloc arena and 4
threads; 4 of 4 with 32 threads and glibc's default arenas on 2 cores), never with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_json_scan_gives_the_same_columns_while_8_threads_allocate() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    # One malloc arena for every thread, on any number of cores: the threads then take over
    # whatever block the scanner frees (glibc gives 8 arenas per core otherwise).
    env["MALLOC_ARENA_MAX"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "tests.harness.scan_under_allocation", "3", "8"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-3000:])
    assert "differing 0" in done.stdout
