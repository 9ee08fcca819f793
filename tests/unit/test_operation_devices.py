"""Resume and devices: a training resume stays on its checkpoint's device unless a change
is allowed explicitly; the params it runs with say which device and whether it may change."""

from __future__ import annotations

from typing import Any

from ktrdr.domain import (
    DeviceChangeRefused,
    ResumeOperation,
    ResumeRequested,
    RetryOperation,
    RetryScheduled,
    ValidationError,
)
from tests.unit.operation_scenarios import OP, at, claimed, created, failed, given, saved


def on(device: str, sequence: int = 1) -> Any:
    return saved(sequence, state={"epoch": sequence, "device": device})


def resumed(device: str | None, *, allow: bool = False, t: float = 5) -> ResumeRequested:
    return ResumeRequested(
        operation_id=OP,
        at=at(t),
        from_sequence=1,
        checkpoint_type="periodic",
        previous_status="failed",
        device=device,
        allow_device_change=allow,
    )


def resume(device: str | None = None, *, allow: bool = False) -> ResumeOperation:
    return ResumeOperation(operation_id=OP, at=at(5), device=device, allow_device_change=allow)


def test_an_auto_run_resumes_pinned_to_its_checkpoints_device() -> None:
    state = given(created(), claimed(), on("cuda"), failed()).when(resume()).then(resumed("cuda"))
    assert state is not None and state.params == {"epochs": 10, "device": "cuda"}


def test_a_resume_on_another_device_is_refused_and_changes_nothing() -> None:
    history = (created(params={"device": "cuda"}), claimed(), on("cuda"), failed())
    refused = given(*history).when(resume("cpu")).then_refused(DeviceChangeRefused)
    assert refused.code == "DEVICE_CHANGE_REFUSED"
    assert "made on cuda" in refused.detail and "--allow-device-change" in refused.detail
    history = (created(params={"device": "cpu"}), claimed(), on("cuda"), failed())
    given(*history).when(resume()).then_refused(DeviceChangeRefused)


def test_an_allowed_device_change_is_recorded_in_the_params() -> None:
    history = (created(params={"device": "cuda"}), claimed(), on("cuda"), failed())
    state = given(*history).when(resume("cpu", allow=True)).then(resumed("cpu", allow=True))
    assert state is not None
    assert state.params == {"device": "cpu", "allow_device_change": True}


def test_only_training_resumes_on_a_device() -> None:
    history = (created(operation_type="backtesting"), claimed(), saved(1), failed())
    refused = given(*history).when(resume("cuda")).then_refused(ValidationError)
    assert "backtesting operation has no device" in refused.detail


def test_a_checkpoint_without_a_device_and_other_types_leave_the_params_alone() -> None:
    given(created(), claimed(), saved(1), failed()).when(resume()).then(resumed(None))
    history = (created(operation_type="backtesting"), claimed(), on("cuda"), failed())
    given(*history).when(resume()).then(resumed(None))


def test_a_retry_stays_on_the_device_of_the_checkpoint_it_resumes() -> None:
    history = (created(), claimed(), on("cuda"), failed(), _scheduled())
    retry = RetryOperation(operation_id=OP, at=at(100))
    state = given(*history).when(retry).then(resumed("cuda", t=100))
    assert state is not None and state.params["device"] == "cuda"


def _scheduled() -> RetryScheduled:
    return RetryScheduled(operation_id=OP, at=at(4), attempt=2, retry_at=at(10), reason="error")
