"""Raw operation params to a params model, refused as one domain ValidationError."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic

from ktrdr.domain.errors import ValidationError
from ktrdr.domain.values import refusal

PARAMS_CONFIG = pydantic.ConfigDict(
    frozen=True, extra="forbid", strict=True, allow_inf_nan=False, use_attribute_docstrings=True
)
"""Every params model's: unknown keys refused, no coercion, field docstrings as descriptions."""

P = TypeVar("P", bound=pydantic.BaseModel)


def parsed(
    model: type[P],
    operation_type: str,
    params: Mapping[str, Any],
    refused: type[ValidationError] = ValidationError,
) -> P:
    """``model`` from ``params``; the refusal names every field at fault and why."""
    if not isinstance(params, Mapping):
        raise refused(f"invalid {operation_type} params: params must be an object")
    try:
        return model.model_validate(dict(params))
    except pydantic.ValidationError as exc:
        generic = refusal(f"{operation_type} params", exc, whole="params")
        raise refused(generic.detail, generic.errors) from None
