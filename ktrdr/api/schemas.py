"""Request bodies and shared parsing for the REST edge."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ktrdr.domain import ValidationError

Status = Literal["pending", "resuming", "running", "completed", "failed", "cancelled"]
OperationTypeName = Literal["training", "backtesting", "agent_research"]
CheckpointTypeName = Literal["periodic", "cancellation", "failure", "shutdown"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateOperationRequest(Body):
    operation_type: str
    params: dict[str, Any] = Field(default_factory=dict)
    parent_operation_id: str | None = None
    keep_checkpoints: bool = False


class ResumeRequest(Body):
    checkpoint_sequence: int | None = Field(default=None, ge=1)


def operation_id(raw: str) -> str:
    """The canonical form of an operation id from a URL, or a VALIDATION_ERROR."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ValidationError(
            f"malformed operation id {raw[:80]!r}: expected a UUID such as"
            " 3f2b8c1e-0d4a-4c47-9a55-6f1e2d3c4b5a"
        ) from None
