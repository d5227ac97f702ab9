"""Connection sizes stored in 16 bits: a logarithmic code with 0.034 % steps up to 4 GiB.

The ring of sizes is the largest part of a pair's state after the ring of times; halving it
keeps a pair under 400 bytes. Size regularity is judged on relative spread (MAD / median), so a
relative quantisation step of 1/3000 is far below anything that matters, and unlike clipping
at 65535 it never makes large, varied transfers look alike.
"""

from __future__ import annotations

import numpy as np
from numba import njit

STEPS_PER_OCTAVE = 2048.0  # code = round(log2(1 + bytes) * 2048); 32 octaves fit in u16
MAX_CODE = 65535


@njit(cache=True, nogil=True)
def encode_size(nbytes: float) -> np.uint16:
    code = np.floor(np.log2(1.0 + max(0.0, nbytes)) * STEPS_PER_OCTAVE + 0.5)
    return np.uint16(min(code, MAX_CODE))


@njit(cache=True, nogil=True)
def decode_size(code: np.uint16) -> float:
    return float(np.floor(2.0 ** (np.float64(code) / STEPS_PER_OCTAVE) - 1.0 + 0.5))
