"""What every contract shares: frozen models, and moments spelled as the API always has."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, get_args

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from ktrdr.domain import WorkerId

JsonObject = dict[str, Any]
"""Free-form JSON the caller owns (params, results, checkpoint states, event data)."""


class Contract(BaseModel):
    """An answer of the API. Unknown fields are ignored, so an older client keeps
    working against a newer API that added one."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)


def _iso(value: datetime) -> str:
    return value.isoformat()


Moment = Annotated[datetime, PlainSerializer(_iso, return_type=str, when_used="json")]
"""An ISO 8601 moment written by ``datetime.isoformat`` (``+00:00``, not pydantic's ``Z``):
the spelling the API has always sent."""

OperationIdText = Annotated[
    str,
    Field(
        json_schema_extra={"format": "uuid"},
        description="A UUID in canonical text form (lower case, hyphenated).",
        examples=["3f2b8c1e-0d4a-4c47-9a55-6f1e2d3c4b5a"],
    ),
]

WORKER_ID_PATTERN: str = get_args(WorkerId)[1].pattern
"""The domain's WorkerId: 1-200 characters, starting with a letter or digit."""
