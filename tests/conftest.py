"""Runs before any test module imports a kernel: numba's cache must not outlive its sources."""

from tests.harness.jit_cache import drop_stale

drop_stale()
