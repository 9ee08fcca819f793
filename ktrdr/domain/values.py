"""Value types every message shares: the message base, ids, UTC times, JSON objects."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Self

import pydantic
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from ktrdr.domain.errors import ValidationError


class Message(BaseModel):
    """Base of every event, command and value: frozen, flat, no unknown fields.

    Building one from bad input (``Cls(...)``, ``model_validate``,
    ``model_validate_json``) raises ``ktrdr.domain.ValidationError`` (code
    VALIDATION_ERROR) instead of pydantic's error, so callers catch one type.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as error:
            raise _refused(type(self), error) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, *args, **kwargs)
        except pydantic.ValidationError as error:
            raise _refused(cls, error) from None

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate_json(json_data, *args, **kwargs)
        except pydantic.ValidationError as error:
            raise _refused(cls, error) from None


def _refused(cls: type[BaseModel], error: pydantic.ValidationError) -> ValidationError:
    return refusal(cls.__name__, error)


def refusal(what: str, error: pydantic.ValidationError, whole: str = "value") -> ValidationError:
    """The one way a pydantic error becomes a domain ValidationError: ``invalid WHAT:``,
    then each problem as ``field: message (got value)`` (``whole`` when it is about no one
    field); ``errors`` keeps them structured."""
    problems = error.errors(include_url=False, include_context=False, include_input=False)
    everything = error.errors(include_url=False, include_context=False)
    shown = "; ".join(_problem(p, whole) for p in everything)
    return ValidationError(f"invalid {what}: {shown}", problems)


_SHOWN_INPUT_CHARS = 80


def _problem(problem: Any, whole: str) -> str:
    message = str(problem["msg"]).removeprefix("Value error, ")
    value = problem.get("input")
    if problem["type"] not in {"missing", "extra_forbidden"} and not isinstance(value, dict):
        shown = repr(value)
        if len(shown) > _SHOWN_INPUT_CHARS:
            shown = shown[: _SHOWN_INPUT_CHARS - 1] + "…"
        message += f" (got {shown})"
    return f"{'.'.join(str(part) for part in problem['loc']) or whole}: {message}"


def canonical_uuid(value: object) -> str:
    """The one spelling of an id: lowercase and hyphenated; ValueError if it is no UUID."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise ValueError("must be a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a UUID") from None


def _no_nul(text: str, path: str) -> None:
    if "\x00" in text:
        raise ValueError(f"a string at {path[:200]} holds a NUL character, which cannot be stored")


def _to_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


MAX_JSON_DEPTH = 64
"""How deeply a JSON object in a message may nest: serializing an event stops at 255."""


def _json_safe(value: dict[str, Any]) -> dict[str, Any]:
    # JSONB rejects NaN/Infinity and NUL characters, and an event must read back equal
    # to what was decided, so only plain JSON types are allowed (no tuples, no non-str keys).
    stack: list[tuple[str, Any, int]] = [("", value, 1)]
    while stack:
        path, item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels at {path[:200]}")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ValueError(f"key {key!r} at {path or '/'} is not a string")
                _no_nul(key, path or "/")
                stack.append((f"{path}/{key}", child, depth + 1))
        elif isinstance(item, list):
            stack.extend((f"{path}/{index}", child, depth + 1) for index, child in enumerate(item))
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"{item} at {path} is not JSON; encode NaN/Infinity first")
        elif isinstance(item, str):
            _no_nul(item, path)
        elif item is not None and not isinstance(item, int):
            raise ValueError(f"{type(item).__name__} at {path} is not a JSON value")
    return value


OperationId = Annotated[str, BeforeValidator(canonical_uuid)]
"""A UUID in canonical text form (lower case, hyphenated)."""

_WORKER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$"
_WORKER_ID = re.compile(_WORKER_ID_PATTERN)
WorkerId = Annotated[str, StringConstraints(pattern=_WORKER_ID_PATTERN)]

UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware moment, normalised to UTC; naive datetimes are refused."""

JsonObject = Annotated[dict[str, Any], AfterValidator(_json_safe)]
"""A dict of plain JSON values only (finite floats, string keys), nested anywhere."""

Percentage = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]

MetricsSeries = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
"""A metrics series' name: ``epochs``, ``equity``."""
MetricsPoints = Annotated[tuple[JsonObject, ...], Field(min_length=1, max_length=500)]
"""At most this many points an event, so each stays small."""


class ArtifactFile(Message):
    """One file of a checkpoint's artifact set, as written in its manifest."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    size: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

    @model_validator(mode="after")
    def _stays_inside_its_folder(self) -> Self:
        parts = self.name.replace("\\", "/").split("/")
        if self.name.startswith("/") or ".." in parts or "" in parts:
            raise ValueError(f"artifact name {self.name!r} must be a relative path")
        return self


def canonical_json(value: Any) -> str:
    """The one JSON spelling of a value: sorted keys, no spaces, UTF-8 text, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def json_size(value: Any) -> int:
    """Bytes of the canonical JSON of ``value``."""
    return len(canonical_json(value).encode("utf-8"))


def operation_stream(operation_id: str | uuid.UUID) -> str:
    return f"operation-{_checked(canonical_uuid, operation_id, 'operation id')}"


def worker_stream(worker_id: str) -> str:
    return f"worker-{_checked(_worker_id, worker_id, 'worker id')}"


def _worker_id(value: object) -> str:
    if not isinstance(value, str) or not _WORKER_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a worker id (letters, digits and ._:@-)")
    return value


def _checked(parse: Callable[[object], str], value: object, what: str) -> str:
    try:
        return parse(value)
    except ValueError as error:
        raise ValidationError(f"invalid {what}: {error}") from None
