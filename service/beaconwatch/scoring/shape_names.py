"""Jitter shapes by name, as alerts and the simulator's truth files spell them.

`periodicity.Shape` is the one jitter shape of the project: its codes are what the kernels
store (`Fit.JITTER_SHAPE`, `Stat.JITTER_SHAPE`). Its names live here, because every change to
`periodicity`'s source changes the shipped null tables' fingerprint.
"""

from __future__ import annotations

from beaconwatch.scoring.periodicity import Shape

_CODES = frozenset(int(shape) for shape in Shape)


def shape_name(code: float) -> str:
    """``"none"``, ``"subtractive"``, ``"symmetric"`` or ``"additive"`` for a `Shape` code;
    ``"none"`` for a code no shape has."""
    shape = Shape(int(code)) if int(code) in _CODES else Shape.NONE
    return shape.name.lower()


def shape_of(name: str) -> Shape:
    """The `Shape` a name of `shape_name` stands for; NONE for another name."""
    return Shape.__members__.get(name.upper(), Shape.NONE)
