"""The p-value levels and the shipped null tables are the same on every CPU.

numpy picks SIMD paths at run time: with AVX-512 its vectorised ``power`` gave 3 of the 64
levels another last bit than on a CPU without it, the shipped tables' fingerprint never
matched, and every process fell back to coarser simulated tables. The levels are now built
from correctly rounded scalars; here the shipped tables must load in processes with numpy's
AVX-512 paths on and off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest

from beaconwatch.scoring import interval_significance as isig
from beaconwatch.scoring import significance as sig

_PROBE = """
import json
import numpy as np
from beaconwatch.scoring import interval_significance as isig
from beaconwatch.scoring import lattice_null as lnull
from beaconwatch.scoring import significance as sig
fit, why_fit = sig.read_shipped.__wrapped__(sig.SHIPPED_PATH)
raw, why_raw = sig.read_shipped.__wrapped__(isig.INTERVAL_SHIPPED_PATH, isig.interval_fingerprint())
lat, why_lat = sig.read_shipped.__wrapped__(lnull.LATTICE_SHIPPED_PATH, lnull.lattice_fingerprint())
vectorised = 10.0 ** (-np.arange(sig.N_LEVELS - 1, -1, -1) / sig.LEVELS_PER_DECADE)
print(json.dumps({
    "levels": sig.P_LEVELS.tobytes().hex(),
    "fit": why_fit, "raw": why_raw, "lattice": why_lat,
    "fit_sum": float(np.nansum(np.where(np.isfinite(fit), fit, 0))) if fit is not None else None,
    "vectorised_differs": int(np.count_nonzero(vectorised != sig.P_LEVELS)),
}))
"""


def avx512_dispatch_targets() -> list[str]:
    """numpy's dispatch targets that use AVX-512 (names differ between numpy versions)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__  # type: ignore[attr-defined]

    return [t for t in __cpu_dispatch__ if "AVX512" in t or t == "X86_V4"]


def probe(disable: list[str]) -> dict[str, object]:
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(disable)}
    if not disable:
        env.pop("NPY_DISABLE_CPU_FEATURES")
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_levels_are_the_nearest_doubles_to_their_definition() -> None:
    """Each level is 10 ** e rounded once, e = fl(-(63 - j) / 12): checked against its two
    neighbouring doubles with 80 significant digits."""
    for j in range(sig.N_LEVELS):
        exponent = -(sig.N_LEVELS - 1 - j) / sig.LEVELS_PER_DECADE
        with localcontext() as ctx:
            ctx.prec = 80
            exact = Fraction(Decimal(10) ** Decimal(exponent))
        level = float(sig.P_LEVELS[j])
        for neighbour in (np.nextafter(level, 0.0), np.nextafter(level, 2.0)):
            assert abs(Fraction(level) - exact) <= abs(Fraction(float(neighbour)) - exact), j
    assert not sig.P_LEVELS.flags.writeable


def test_a_level_one_bit_off_changes_both_fingerprints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables built with other levels are stale: the fingerprints see the levels' bits."""
    before = (sig.null_fingerprint(), isig.interval_fingerprint())
    other = sig.P_LEVELS.copy()
    other[29] = np.nextafter(other[29], 1.0)  # what numpy's AVX-512 power gave here
    monkeypatch.setattr(sig, "P_LEVELS", other)
    after = (sig.null_fingerprint(), isig.interval_fingerprint())
    assert before[0] != after[0] and before[1] != after[1]


@pytest.mark.timeout(300)
def test_shipped_tables_load_with_numpy_avx512_paths_on_and_off() -> None:
    default = probe([])
    targets = avx512_dispatch_targets()
    without = probe(targets) if targets else default
    for result in (default, without):
        assert result["fit"] == "", result["fit"]
        assert result["raw"] == "", result["raw"]
        assert result["lattice"] == "", result["lattice"]
    assert default["levels"] == without["levels"] == sig.P_LEVELS.tobytes().hex()
    assert default["fit_sum"] == without["fit_sum"]
    # Where the CPU has AVX-512, numpy's vectorised power is what used to break the tables:
    # the levels above no longer depend on it.
    if targets and default["vectorised_differs"]:
        assert without["vectorised_differs"] == 0
