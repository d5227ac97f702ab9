"""Raw typed pointers for the numba kernels.

Numba reference-counts every array passed to a helper function, with atomic operations, and
the JSON scanner calls small helpers per byte run: with arrays it ran ~10x slower. Helpers
therefore index raw pointers obtained from ``array.ctypes.data``; the pointers never escape
the kernel call.

A pointer does not keep its array alive. Numba frees an array the kernel allocated right after
the array's last use in the source, and taking ``.ctypes.data`` can be that last use: the
pointer then points into freed memory, which another thread's allocation may take over and
overwrite while the kernel still writes through it (a wild store, SIGSEGV, under load only).
So a kernel calls ``keep_alive(array)`` after its last use of each pointer into an array it
allocated; ``tests/unit/test_raw_pointer.py`` checks that every kernel taking a pointer does.

Each primitive has two forms: the numba intrinsics, and plain-Python twins that the kernels
call when numba's JIT is disabled (``NUMBA_DISABLE_JIT=1``, the nojit coverage run), so the
same kernel source runs in the interpreter. The switch is made once, at import: jitted code
calls the intrinsics exactly as before. ``test_raw_pointer`` holds each pair to the same results.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba import config
from numba.core import types
from numba.extending import intrinsic

# For annotations only: numba's CPointer has no Python-side type.
Pointer = Any


def _pointer_intrinsic(element: types.Type) -> Any:
    @intrinsic
    def as_pointer(typingctx: Any, address: Any) -> Any:
        sig = types.CPointer(element)(types.intp)  # type: ignore[no-untyped-call]

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            pointer = types.CPointer(element)  # type: ignore[no-untyped-call]
            return builder.inttoptr(args[0], context.get_value_type(pointer))

        return sig, codegen

    return as_pointer


@intrinsic
def _load_u64(typingctx: Any, pointer: Any, index: Any) -> Any:
    """The 8 bytes at ``pointer[index]`` of a uint8 pointer, as one little-endian uint64. An
    unaligned load (align 1): JSON tokens start anywhere."""
    sig = types.uint64(pointer, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        base, offset = args
        address = builder.gep(base, [offset])
        word = builder.bitcast(address, ir.IntType(64).as_pointer())
        return builder.load(word, align=1)

    return sig, codegen


@intrinsic
def _trailing_zeros(typingctx: Any, value: Any) -> Any:
    """Count of trailing zero bits of a non-zero uint64 (LLVM cttz: one instruction)."""
    sig = types.intp(types.uint64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


@intrinsic
def _keep_alive(typingctx: Any, array: Any) -> Any:
    """A use of ``array`` that emits no code but that numba's dead-code pass keeps (it is a
    call), so the array is not freed before this point (see the module docstring)."""
    sig = types.none(array)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return context.get_dummy_value()

    return sig, codegen


# The plain-Python twins. A pointer is an unowned numpy view of the memory at the address, as
# long as any address range (no bounds, like the raw pointer; nothing is allocated): indexing
# it reads and writes numpy scalars of the element type, as the jitted pointer does.
_VIEW_BYTES = 1 << 40


def _python_pointer(element: type[ctypes.c_uint8 | ctypes.c_int64 | ctypes.c_uint64]) -> Any:
    length = _VIEW_BYTES // ctypes.sizeof(element)

    def as_pointer(address: int) -> npt.NDArray[Any]:
        pointer = ctypes.cast(address, ctypes.POINTER(element))
        return np.ctypeslib.as_array(pointer, shape=(length,))

    return as_pointer


def python_load_u64(pointer: npt.NDArray[np.uint8], index: int) -> np.uint64:
    """``_load_u64`` in Python: the 8 bytes at ``pointer[index]`` in native (x86: little)
    byte order, like LLVM's load."""
    return cast(np.uint64, pointer[index : index + 8].view(np.uint64)[0])


def python_trailing_zeros(value: np.uint64) -> int:
    """``_trailing_zeros`` in Python (cttz is undefined for 0; this gives -1)."""
    bits = int(value)
    return (bits & -bits).bit_length() - 1


def python_keep_alive(array: npt.NDArray[Any]) -> None:
    """``_keep_alive`` in Python: the caller's reference already keeps the array alive."""


python_u8_pointer = _python_pointer(ctypes.c_uint8)
python_i64_pointer = _python_pointer(ctypes.c_int64)
python_u64_pointer = _python_pointer(ctypes.c_uint64)
jit_u8_pointer = _pointer_intrinsic(types.uint8)
jit_i64_pointer = _pointer_intrinsic(types.int64)
jit_u64_pointer = _pointer_intrinsic(types.uint64)
jit_load_u64 = _load_u64
jit_trailing_zeros = _trailing_zeros
jit_keep_alive = _keep_alive

# numba reads NUMBA_DISABLE_JIT into its config at import (attributes mypy cannot see).
JIT_DISABLED = bool(config.DISABLE_JIT)  # type: ignore[attr-defined]

# The primitives as the kernels call them (mypy sees the Python twins' signatures).
if JIT_DISABLED:
    u8_pointer: Any = python_u8_pointer
    i64_pointer: Any = python_i64_pointer
    u64_pointer: Any = python_u64_pointer
    load_u64: Callable[[Pointer, int], np.uint64] = python_load_u64
    trailing_zeros: Callable[[np.uint64], int] = python_trailing_zeros
    keep_alive: Callable[[npt.NDArray[Any]], None] = python_keep_alive
else:
    u8_pointer = jit_u8_pointer
    i64_pointer = jit_i64_pointer
    u64_pointer = jit_u64_pointer
    load_u64 = cast(Callable[[Pointer, int], np.uint64], jit_load_u64)
    trailing_zeros = cast(Callable[[np.uint64], int], jit_trailing_zeros)
    keep_alive = cast(Callable[[npt.NDArray[Any]], None], jit_keep_alive)
