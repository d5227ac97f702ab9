"""The stale-kernel guard (tests/harness/jit_cache.py) drops numba's cache exactly when a
source kernels read has changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.jit_cache import drop_stale


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    root = tmp_path / "beaconwatch"
    for name in ("scoring/kernels.py", "state/ingest.py", "cli/scan.py", "config.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"# {name}\n")
    return root


def _cache(package: Path) -> list[Path]:
    files = [
        package / "scoring" / "__pycache__" / "kernels.f-1.py311.nbi",
        package / "state" / "__pycache__" / "ingest.g-2.py311.1.nbc",
    ]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"machine code")
    return files


def test_unchanged_sources_keep_the_cache(package: Path) -> None:
    drop_stale(package)  # first sight: no fingerprint yet
    cached = _cache(package)
    assert drop_stale(package) == 0
    assert all(f.exists() for f in cached)


def test_an_edited_callee_drops_every_cached_kernel(package: Path) -> None:
    drop_stale(package)
    cached = _cache(package)
    (package / "scoring" / "kernels.py").write_text("# a callee of the ingest kernel, edited\n")
    assert drop_stale(package) == 2
    assert not any(f.exists() for f in cached)
    assert drop_stale(package) == 0  # once


def test_an_edited_adapter_costs_no_recompilation(package: Path) -> None:
    drop_stale(package)
    cached = _cache(package)
    (package / "cli" / "scan.py").write_text("# the command line, edited\n")
    assert drop_stale(package) == 0
    assert all(f.exists() for f in cached)


def test_the_cache_dir_numba_is_told_to_use_is_cleaned_too(
    package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_stale(package)
    elsewhere = tmp_path / "numba-cache" / "x.nbi"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"machine code")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(elsewhere.parent))
    (package / "config.py").write_text("# a constant a kernel froze in, edited\n")
    assert drop_stale(package) == 1
    assert not elsewhere.exists()
