"""Helpers shared by every signal family: number validation and JSON-safe results.

The conventions of docs/signals.md ("Conventions for every signal") live here, once: a current
amount that is invalid counts as 0 (``amount``), a point of a history that is invalid is dropped
(``finite_nonneg`` returns None), and every result dataclass gets ``to_dict()`` returning plain
JSON (``ToDict``; non-finite floats become ``null``). Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any


def finite_nonneg(x: Any) -> float | None:
    """``x`` as a float when it is a finite number >= 0, else None (bools are not numbers)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    v = float(x)
    if not math.isfinite(v) or v < 0:
        return None
    return v


def amount(x: Any) -> float:
    """A current amount: invalid values count as 0."""
    v = finite_nonneg(x)
    return 0.0 if v is None else v


def finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def jsonable(x: Any) -> Any:
    """Plain JSON types: non-finite floats -> None, tuples/sets -> lists, keys -> str."""
    if isinstance(x, bool) or x is None or isinstance(x, str | int):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | set | frozenset):
        items = sorted(x) if isinstance(x, set | frozenset) else x
        return [jsonable(v) for v in items]
    if hasattr(x, "to_dict"):
        return x.to_dict()
    raise TypeError(f"not JSON-able: {type(x).__name__}")


class ToDict:
    """``to_dict()`` for the result dataclasses: every field, JSON-safe."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]
