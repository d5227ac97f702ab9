"""The NumPy array types the package annotates with, named once (``I64`` = an int64 array).

Only for annotations: the dtype a kernel or a column is built with is still spelt at the
place that builds it (``np.int64``), where a reader checks it against the data.
``scoring/periodicity.py`` keeps its own ``F64``: its whole source is part of the shipped null
tables' fingerprint, so editing it means rebuilding them (``make null-tables``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

BOOL = npt.NDArray[np.bool_]
U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
AnyArray = npt.NDArray[Any]
