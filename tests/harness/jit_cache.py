"""Drop numba's cached kernels when the code they were compiled from has changed.

numba's ``cache=True`` checks only the source file of the function it compiles, not its
callees or the module constants it froze in: after an edit to a callee (say a scoring kernel
that the ingest kernel calls) the stale machine code keeps running, and tests pass or fail
for code that is not there. So the whole cache is dropped when any module kernels may read
changes (a fingerprint of their sources, kept beside the package). The adapters (cli,
runtime, sinks, metrics, embedded, simulate) hold no kernel code, so editing them costs no
recompilation. Run by tests/conftest.py and `make jit-fresh`.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "service" / "beaconwatch"
# Packages and modules kernels are compiled from, or take constants from.
KERNEL_SOURCES = (
    "domain",
    "decode",
    "state",
    "scoring",
    "alerting",
    "core",
    "sources",
    "config.py",
)
FINGERPRINT = PACKAGE / "__pycache__" / "kernel-sources.sha256"


def fingerprint(package: Path = PACKAGE) -> str:
    digest = hashlib.sha256()
    for name in KERNEL_SOURCES:
        root = package / name
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            digest.update(str(path.relative_to(package)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def drop_stale(package: Path = PACKAGE) -> int:
    """Delete every cached kernel under ``package`` if the sources changed since the last
    call; returns how many cache files were deleted."""
    stamp = package / "__pycache__" / FINGERPRINT.name
    now = fingerprint(package)
    if stamp.is_file() and stamp.read_text().strip() == now:
        return 0
    dropped = 0
    roots = [package]
    if os.environ.get("NUMBA_CACHE_DIR"):  # numba keeps the cache there instead
        roots.append(Path(os.environ["NUMBA_CACHE_DIR"]))
    for pattern in ("*.nbi", "*.nbc"):
        for cached in (c for root in roots if root.is_dir() for c in root.rglob(pattern)):
            cached.unlink(missing_ok=True)
            dropped += 1
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(now + "\n")
    return dropped


if __name__ == "__main__":
    n = drop_stale()
    if n:
        print(f"kernel sources changed: dropped {n} cached kernel files", file=sys.stderr)
