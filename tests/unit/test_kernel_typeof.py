"""The memoised numba types of the kernels' named tuples (`state.kernel_typeof`) are exactly
numba's own, for every layout that changes them, and are looked up, not recomputed."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba.core.typing.typeof import Purpose, _TypeofContext, typeof_impl

from beaconwatch.alerting.policy import policy_from
from beaconwatch.config import Config
from beaconwatch.domain.alert_rows import new_alert_rows
from beaconwatch.scoring.window_score import Stat
from beaconwatch.state import kernel_typeof
from beaconwatch.state.kernel_params import limits_from
from beaconwatch.state.pair_table import PairTable
from beaconwatch.state.prevalence import Prevalence

kernel_typeof.register_kernel_types()


def numba_own(value: Any) -> Any:
    """What numba makes of a tuple without the memo: its registered typing of `tuple`."""
    return typeof_impl.dispatch(tuple)(value, _TypeofContext(Purpose.argument))


def kernel_arguments() -> list[Any]:
    table = PairTable(64, 8, Prevalence(64))
    table.enable_channels()
    config = Config()
    return [table.columns(), new_alert_rows(6, Stat.SIZE), limits_from(config), policy_from(config)]


def test_each_kernel_tuple_is_typed_as_numba_types_it() -> None:
    for value in kernel_arguments():
        assert type(value) in kernel_typeof.KERNEL_TUPLES
        assert numba.typeof(value) == numba_own(value)


def test_a_change_of_layout_dtype_or_magnitude_gives_numba_s_new_type() -> None:
    columns, rows, limits, _ = kernel_arguments()
    readonly = columns.meta.copy()
    readonly.flags.writeable = False
    variants = [
        (columns, columns._replace(ring_t=np.asfortranarray(columns.ring_t))),  # layout F
        (columns, columns._replace(ring_t=columns.ring_t[:, ::2])),  # layout A
        (columns, columns._replace(keys=columns.keys.astype(np.int64))),  # dtype
        (columns, columns._replace(meta=readonly)),  # read-only
        (rows, rows._replace(stats=rows.stats[:, 0])),  # ndim
        (limits, limits._replace(watermark_ms=1 << 63)),  # past int64: numba says uint64
        (limits, limits._replace(watermark_ms=1.5)),  # a float where an int was
    ]
    for base, value in variants:
        assert numba.typeof(base) != numba.typeof(value)
        assert numba.typeof(value) == numba_own(value)


def test_the_second_typing_is_a_look_up() -> None:
    columns = kernel_arguments()[0]
    first = numba.typeof(columns)
    calls = 0
    original = kernel_typeof._typeof_plain

    def counting(value: Any, c: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(value, c)

    kernel_typeof._typeof_plain = counting
    try:
        again = numba.typeof(kernel_arguments()[0])
    finally:
        kernel_typeof._typeof_plain = original
    assert again is first
    assert calls == 0
