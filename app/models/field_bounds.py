"""A spec field's range as an input box needs it, read from its pydantic constraints, and
the 1-2-5 steps of a field searched by order of magnitude.

The specs say what they allow once (``Field(ge=1)``, ``Field(gt=0, lt=1)``); the forms read
those constraints instead of writing the ranges a second time, so a form can never offer a
value its spec refuses, nor refuse one the spec allows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from annotated_types import Ge, Gt, Le, Lt

if TYPE_CHECKING:  # not at run time: see app/panels/data_panel.py on importing pydantic
    from pydantic.fields import FieldInfo

INT_MAX = 2**31 - 1
"""The largest value a Qt spin box holds (a C int)."""


def field_bounds(
    field: FieldInfo, open_step: float, unbounded: tuple[float, float]
) -> tuple[float, float]:
    """The inclusive range ``field`` allows; open bounds (gt, lt) move in by ``open_step``.

    A side the field leaves open takes ``unbounded``'s value for that side: a box needs a
    number on both ends, and which one is the form's choice (0 for a count, -1e6 for a weight).
    """
    low, high = unbounded
    for item in field.metadata:
        if isinstance(item, Ge):
            low = float(item.ge)
        elif isinstance(item, Gt):
            low = float(item.gt) + open_step
        elif isinstance(item, Le):
            high = float(item.le)
        elif isinstance(item, Lt):
            high = float(item.lt) - open_step
    return low, high


def next_125(value: float, up: bool, smallest: float) -> float:
    """The next value up or down on the 1-2-5 grid (…, 1e-3, 2e-3, 5e-3, 1e-2, …).

    Learning rates and weight decays are searched this way; a linear step would take a
    hundred clicks from 1e-4 to 1e-2. Down from ``smallest`` is 0.
    """
    if value <= 0:
        return smallest if up else 0.0
    exponent = math.floor(math.log10(value) + 1e-12)
    mantissa = value / 10**exponent
    if up:
        step = next(m for m in (1, 2, 5, 10) if m > mantissa * (1 + 1e-9))
    else:
        step = next(m for m in (5, 2, 1, 0.5) if m < mantissa * (1 - 1e-9))
    result = float(f"{step * 10**exponent:.12g}")
    return 0.0 if not up and result < smallest * (1 - 1e-9) else result
