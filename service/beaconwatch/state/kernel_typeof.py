"""Numba types of the kernels' named-tuple arguments, memoised.

numba finds an ``@njit`` function's argument types on every call. Its C fast path knows plain
arrays and scalars; a `typing.NamedTuple` goes through `numba.typeof` in Python, about 5 us
per array in it: 0.1-0.3 ms per call for the table's 23 columns or an `AlertRows`, 6-7 % of
the detector's time at batches of 10k flows. The type depends only on each element's dtype,
dimensions and layout (numba's own `_typeof_ndarray`) or scalar kind, so it is computed once
per such key and looked up afterwards.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
from numba.core import types
from numba.core.typing.typeof import typeof_impl

from beaconwatch.alerting.policy import Policy
from beaconwatch.domain.alert_rows import AlertRows
from beaconwatch.state.kernel_params import Limits
from beaconwatch.state.table_columns import TableColumns

_I64_MIN = -(1 << 63)
_I64_END = 1 << 63

# (class, purpose, element keys) -> numba type; a handful of entries per process.
_memo: dict[Hashable, types.Type] = {}


def _element_key(value: Any) -> Hashable | None:
    """What numba's type of ``value`` depends on, or None for a kind not memoised."""
    if isinstance(value, np.ndarray):
        flags = value.flags
        return (value.dtype, value.ndim, flags.c_contiguous, flags.f_contiguous, flags.writeable)
    kind = type(value)
    if kind is int:  # numba types a Python int by its magnitude
        return (kind, _I64_MIN <= value < _I64_END)
    if kind is bool or kind is float or isinstance(value, np.generic):
        return kind.__name__, kind.__module__
    return None


def _typeof_memoised(value: tuple[Any, ...], c: Any) -> types.Type | None:
    elements = tuple(_element_key(v) for v in value)
    if None in elements:
        return _typeof_plain(value, c)
    key = (type(value), c.purpose, elements)
    found = _memo.get(key)
    if found is None:
        found = _typeof_plain(value, c)
        if found is not None:
            _memo[key] = found
    return found


def _typeof_plain(value: tuple[Any, ...], c: Any) -> types.Type | None:
    """numba's own typing of a tuple, the one registered for `tuple`."""
    found: types.Type | None = typeof_impl.dispatch(tuple)(value, c)
    return found


KERNEL_TUPLES = (TableColumns, AlertRows, Limits, Policy)


def register_kernel_types() -> None:
    """Type the kernels' named tuples through the memo (idempotent); `state.ingest` calls
    it when it loads, before any kernel is called."""
    for cls in KERNEL_TUPLES:
        typeof_impl.register(cls)(_typeof_memoised)
