"""Raw typed pointers for the numba kernels.

Numba reference-counts every array passed to a helper function, with atomic operations, and
the JSON scanner calls small helpers per byte run: with arrays it ran ~10x slower. Helpers
therefore index raw pointers obtained from ``array.ctypes.data``. The caller's arrays own the
memory and stay alive for the whole kernel call; the pointers never escape it.
"""

from __future__ import annotations

from typing import Any

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
