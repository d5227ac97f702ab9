"""The raw-pointer primitives' two forms agree: the numba intrinsics (jitted) and the
plain-Python twins the kernels run on under NUMBA_DISABLE_JIT=1 (see ``raw_pointer``).

This file needs the JIT (it compares both forms in one process), so the nojit run leaves it out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from numba import njit
from numba.np.numpy_support import as_dtype

from beaconwatch.decode.scan import raw_pointer as rp

RNG = np.random.default_rng(20261205)

# (element dtype, intrinsic, Python twin)
POINTERS = [
    (np.uint8, rp.jit_u8_pointer, rp.python_u8_pointer),
    (np.int64, rp.jit_i64_pointer, rp.python_i64_pointer),
    (np.uint64, rp.jit_u64_pointer, rp.python_u64_pointer),
]


def _jitted_access(as_pointer: Any) -> tuple[Any, Any]:
    """A jitted reader (``pointer[i]``) and writer (``pointer[i] = value``) over one intrinsic."""

    @njit(cache=False)
    def read(address: int, i: int) -> Any:
        return as_pointer(address)[i]

    @njit(cache=False)
    def write(address: int, i: int, value: Any) -> None:
        as_pointer(address)[i] = value

    return read, write


@njit(cache=False)
def _jit_load(address: int, i: int) -> Any:
    return rp.jit_load_u64(rp.jit_u8_pointer(address), i)


@njit(cache=False)
def _jit_trailing_zeros(value: np.uint64) -> int:
    return rp.jit_trailing_zeros(value)  # type: ignore[no-any-return]


def test_the_jit_is_on_and_the_kernels_get_the_intrinsics() -> None:
    """Otherwise both sides below would be the Python twins, compared with themselves."""
    assert not rp.JIT_DISABLED
    assert rp.u8_pointer is rp.jit_u8_pointer
    assert rp.i64_pointer is rp.jit_i64_pointer
    assert rp.u64_pointer is rp.jit_u64_pointer
    assert rp.load_u64 is rp.jit_load_u64
    assert rp.trailing_zeros is rp.jit_trailing_zeros


@pytest.mark.parametrize(
    ("dtype", "jit_pointer", "python_pointer"), POINTERS, ids=["u8", "i64", "u64"]
)
def test_pointer_reads_and_writes_agree(
    dtype: type[np.generic], jit_pointer: Any, python_pointer: Callable[[int], Any]
) -> None:
    info = np.iinfo(dtype)
    values = RNG.integers(info.min, info.max, size=40, dtype=dtype, endpoint=True)
    values[:2] = (info.min, info.max)
    read, write = _jitted_access(jit_pointer)
    python = python_pointer(values.ctypes.data)
    for i in range(values.size):
        got = python[i]
        assert type(got) is dtype  # a numpy scalar of the element type, as numba types it
        assert got == read(values.ctypes.data, i) == values[i]
    assert as_dtype(read.nopython_signatures[0].return_type) == np.dtype(dtype)
    jitted, plain = np.zeros(values.size, dtype=dtype), np.zeros(values.size, dtype=dtype)
    for i in RNG.permutation(values.size):
        write(jitted.ctypes.data, i, values[i])
        python_pointer(plain.ctypes.data)[i] = values[i]
    np.testing.assert_array_equal(jitted, values)
    np.testing.assert_array_equal(plain, values)


def test_load_u64_agrees_at_every_offset() -> None:
    """Unaligned loads at each byte offset, equal to the bytes read little-endian."""
    data: npt.NDArray[np.uint8] = RNG.integers(0, 256, size=72, dtype=np.uint8)
    data[8:16] = 0xFF
    data[16:24] = 0x80
    python = rp.python_u8_pointer(data.ctypes.data)
    for i in range(data.size - 7):
        expected = int.from_bytes(data[i : i + 8].tobytes(), "little")
        got = rp.python_load_u64(python, i)
        assert type(got) is np.uint64
        assert got == _jit_load(data.ctypes.data, i) == expected, i


def test_trailing_zeros_agree() -> None:
    words = [1 << bit for bit in range(64)]
    words += [(1 << 64) - (1 << bit) for bit in range(64)]  # every bit above one set
    words += [int(w) for w in RNG.integers(1, 1 << 63, size=500, dtype=np.uint64) << 1]
    for word in words:
        value = np.uint64(word)
        expected = (word & -word).bit_length() - 1
        assert rp.python_trailing_zeros(value) == _jit_trailing_zeros(value) == expected, word
