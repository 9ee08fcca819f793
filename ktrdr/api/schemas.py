"""Request bodies and shared parsing for the REST edge."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ktrdr.domain import ValidationError

Status = Literal["pending", "resuming", "running", "completed", "failed", "cancelled"]
OperationTypeName = Literal["training", "backtesting", "agent_research"]
CheckpointTypeName = Literal["periodic", "cancellation", "failure", "shutdown"]


INT32_MAX = 2**31 - 1
"""Attempts, sequences, pids are PostgreSQL integers: a larger one is refused, not a 500.
(Bounds the domain decides, a retry policy's or a timeout's, stay the domain's: 422.)"""
INT64_MAX = 2**63 - 1
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
Uuid = Annotated[str, Field(pattern=UUID_PATTERN)]
Int32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
Positive32 = Annotated[int, Field(ge=1, le=INT32_MAX)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicyBody(Body):
    """Each field left out takes its default from KTRDR_RETRY_*."""

    max_attempts: int | None = None
    initial_interval_seconds: float | None = None
    backoff_coefficient: float | None = None
    maximum_interval_seconds: float | None = None
    retry_on_error: bool | None = None


class CreateOperationRequest(Body):
    operation_type: str
    params: dict[str, Any] = Field(default_factory=dict)
    parent_operation_id: Uuid | None = None
    keep_checkpoints: bool = False
    retry_policy: RetryPolicyBody | None = None
    timeout_seconds: float | None = None
    """Fail the operation (reason timeout, never retried) this long after it started."""


class ResumeRequest(Body):
    checkpoint_sequence: Positive32 | None = None
    device: Literal["cpu", "cuda"] | None = None
    """Training: run the resume on this device instead of the params' own."""
    allow_device_change: bool = False
    """Accept a resume on another device than the checkpoint's; its result is not exact."""


def id_prefix_range(prefix: str) -> tuple[str, str]:
    """The lowest and the highest operation id that start with ``prefix`` (hex, dashes
    ignored), or a VALIDATION_ERROR."""
    digits = prefix.replace("-", "").lower()
    if not 0 < len(digits) <= 32 or digits.strip("0123456789abcdef"):
        raise ValidationError(
            f"malformed id prefix {prefix[:80]!r}: expected the first hex digits of an"
            " operation id, such as 3f2b8c1e"
        )
    return str(uuid.UUID(digits.ljust(32, "0"))), str(uuid.UUID(digits.ljust(32, "f")))


class ArtifactBody(Body):
    name: str
    size: int = Field(ge=0, le=INT64_MAX)
    sha256: str


class GpuBody(Body):
    name: str = Field(max_length=200)
    memory_bytes: int = Field(ge=0)


class CudaBody(Body):
    device_count: int = Field(ge=1)
    devices: list[GpuBody] = Field(default_factory=list)


class RegisterWorkerRequest(Body):
    worker_id: str | None = None
    worker_type: Literal["training", "backtesting"]
    host: str
    pid: Int32
    capabilities: list[str] = Field(default_factory=list)
    """Workload names, and ``cuda`` when the worker can run CUDA work."""
    cuda: CudaBody | None = None
    version: str
    current_operation_id: Uuid | None = None
    current_attempt: Positive32 | None = None


class HeartbeatRequest(Body):
    operation_id: Uuid | None = None
    attempt: Positive32 | None = None


class ClaimRequest(Body):
    wait_seconds: float = Field(default=10.0, ge=0, le=60)


class WorkerWrite(Body):
    worker_id: str
    attempt: Positive32


class ProgressRequest(WorkerWrite):
    percentage: float = Field(ge=0, le=100)
    current_step: str = ""
    message: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


class CheckpointRequest(WorkerWrite):
    sequence: Positive32 | None = None
    checkpoint_type: CheckpointTypeName
    state: dict[str, Any]
    artifacts_path: str | None = None
    artifacts: list[ArtifactBody] = Field(default_factory=list)
    artifacts_size_bytes: int = Field(default=0, ge=0, le=INT64_MAX)


class MetricsRequest(WorkerWrite):
    series: str
    points: list[dict[str, Any]] = Field(min_length=1, max_length=500)
    write_id: uuid.UUID | None = None
    """Names this write: a retry of it (its reply lost) appends nothing twice."""


class CheckpointFailureRequest(WorkerWrite):
    sequence: Positive32
    checkpoint_type: CheckpointTypeName
    message: str = Field(max_length=2000)


class ReleaseRequest(WorkerWrite):
    reason: str = Field(min_length=1, max_length=500)


class CompleteRequest(WorkerWrite):
    result: dict[str, Any] = Field(default_factory=dict)


class FailRequest(WorkerWrite):
    message: str
    reason: Literal["error", "invalid", "infrastructure"] = "error"
    """error: the workload failed; invalid: no retry can mend it; infrastructure: a
    checkpoint could not be stored."""


class CancelledRequest(WorkerWrite):
    reason: Literal["cancellation", "shutdown"]
