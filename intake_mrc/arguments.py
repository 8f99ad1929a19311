"""Checks of user arguments that several front ends share (``open_mrc``, the DE model,
catalog entries): a wrong argument is refused with ``MRCFormatError`` naming the file and
the argument, never truncated or passed on to numpy."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import MRCFormatError


def check_navigation_shape(value: Any, source: str | None) -> tuple[int, ...]:
    """``navigation_shape`` as a tuple of positive Python ints (in the order given).

    Python and numpy integers are accepted; bools, floats (even 3.0: a shape is counted,
    not measured), strings and non-positive sizes are refused."""
    not_a_tuple = MRCFormatError(
        f"navigation_shape must be a tuple of positive integers (x, y, ...), not {value!r}",
        source,
        "navigation_shape",
    )
    if isinstance(value, str | bytes):
        raise not_a_tuple
    try:
        items = tuple(value)  # once: an iterator would be consumed by the checks
    except TypeError:  # a number, a 0-d array
        raise not_a_tuple from None
    sizes = []
    for size in items:
        if isinstance(size, bool | np.bool_) or not isinstance(size, int | np.integer):
            raise MRCFormatError(
                f"navigation_shape {items!r}: {size!r} ({type(size).__name__}) is not an integer",
                source,
                "navigation_shape",
            )
        if size <= 0:
            raise MRCFormatError(
                f"navigation_shape {items!r}: {int(size)} is not a positive size",
                source,
                "navigation_shape",
            )
        sizes.append(int(size))
    return tuple(sizes)
