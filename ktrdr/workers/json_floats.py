"""NaN and ±Infinity spelled as JSON strings: events and results hold plain JSON, never null."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

_SPELLINGS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(value: float) -> float | str:
    """A finite float as is; NaN and ±Infinity as "NaN", "Infinity", "-Infinity"."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float(value)


def decode_float(value: float | int | str) -> float:
    """The inverse of encode_float (ints are accepted as floats)."""
    if isinstance(value, str):
        try:
            return _SPELLINGS[value]
        except KeyError:
            raise ValueError(f"{value!r} is not a number or NaN/Infinity/-Infinity") from None
    return float(value)


def json_safe(value: Any) -> Any:
    """``value`` with every float encoded (dicts, lists and tuples walked; tuples become lists)."""
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def json_safe_object(value: Mapping[str, Any]) -> dict[str, Any]:
    """json_safe for a JSON object (the shape of states, results and progress details)."""
    return {key: json_safe(item) for key, item in value.items()}
