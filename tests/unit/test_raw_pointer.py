"""The raw-pointer primitives' two forms agree: the numba intrinsics (jitted) and the
plain-Python twins the kernels run on under NUMBA_DISABLE_JIT=1 (see ``raw_pointer``).

This file needs the JIT (it compares both forms in one process), so the nojit run leaves it out.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
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


@njit(cache=False)
def _reused_without_keep_alive() -> bool:
    """Whether a later allocation got the memory of an array whose pointer is still held
    (addresses compared only, never read through)."""
    held = np.zeros(300, dtype=np.int64)
    address = held.ctypes.data
    reused = False
    for _ in range(4):
        reused = reused or np.zeros(300, dtype=np.int64).ctypes.data == address
    return reused


@njit(cache=False)
def _reused_with_keep_alive() -> bool:
    held = np.zeros(300, dtype=np.int64)
    address = held.ctypes.data
    reused = False
    for _ in range(4):
        reused = reused or np.zeros(300, dtype=np.int64).ctypes.data == address
    rp.jit_keep_alive(held)
    return reused


def test_keep_alive_keeps_the_memory_a_pointer_points_into() -> None:
    # The control: numba frees an array after its last use, here the `.ctypes.data`, and the
    # allocator hands its memory to the next array of that size (the hazard keep_alive fixes).
    assert _reused_without_keep_alive()
    assert not _reused_with_keep_alive()
    rp.python_keep_alive(np.zeros(1))  # the twin is a no-op that accepts an array


def _pointer_owners(function: ast.FunctionDef) -> dict[str, int]:
    """Arrays a function allocates whose ``.ctypes.data`` it takes, with that line."""
    params = {a.arg for a in function.args.args}
    owners: dict[str, int] = {}
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "data"
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "ctypes"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id not in params
        ):
            owners.setdefault(node.value.value.id, node.lineno)
    return owners


def test_every_kernel_keeps_the_arrays_its_pointers_point_into_alive() -> None:
    """Each array a function allocates and takes a pointer into is passed to ``keep_alive``
    after the function's last line that uses a pointer (any name bound to a ``*_pointer``
    call), so a future kernel cannot repeat the demo's use-after-free."""
    package = Path(rp.__file__).resolve().parents[2]
    checked = 0
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            owners = _pointer_owners(function)
            if not owners:
                continue
            pointers = {
                target.id
                for node in ast.walk(function)
                if isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id.endswith("_pointer")
                for target in node.targets
                if isinstance(target, ast.Name)
            }
            last_use = max(
                n.lineno
                for n in ast.walk(function)
                if isinstance(n, ast.Name) and n.id in pointers and isinstance(n.ctx, ast.Load)
            )
            kept = {
                node.args[0].id: node.lineno
                for node in ast.walk(function)
                if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "keep_alive"
                and node.args
                and isinstance(node.args[0], ast.Name)
            }
            for owner in owners:
                where = f"{path.relative_to(package)}:{function.name}"
                assert owner in kept, f"{where}: {owner} is never passed to keep_alive"
                assert kept[owner] > last_use, f"{where}: keep_alive({owner}) before its use"
                checked += 1
    assert checked >= 4  # json_scan's four scratch arrays at least
