"""Raw typed pointers for the numba kernels.

Numba reference-counts every array passed to a helper function, with atomic operations, and
the JSON scanner calls small helpers per byte run: with arrays it ran ~10x slower. Helpers
therefore index raw pointers obtained from ``array.ctypes.data``. The caller's arrays own the
memory and stay alive for the whole kernel call; the pointers never escape it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
from llvmlite import ir
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


u8_pointer = _pointer_intrinsic(types.uint8)
i64_pointer = _pointer_intrinsic(types.int64)
u64_pointer = _pointer_intrinsic(types.uint64)


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


# The intrinsics as the kernels call them (mypy sees the typing functions' signatures).
load_u64 = cast(Callable[[Pointer, int], np.uint64], _load_u64)
trailing_zeros = cast(Callable[[np.uint64], int], _trailing_zeros)
