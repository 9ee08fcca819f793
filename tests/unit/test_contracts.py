"""The contract models write what the API always sent, and read answers tolerantly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pydantic
import pytest

from ktrdr.contracts import CheckpointBrief, HeartbeatAnswer, Standing
from ktrdr.domain import CheckpointType

AT = datetime(2026, 11, 30, 7, 15, 33, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "moment",
    [AT, AT.replace(microsecond=0), AT.astimezone(timezone(timedelta(hours=2)))],
)
def test_moments_are_written_as_isoformat_not_pydantics_z(moment: datetime) -> None:
    brief = CheckpointBrief(
        sequence=1, checkpoint_type=CheckpointType.PERIODIC, created_at=moment, summary=""
    )
    written = brief.model_dump(mode="json")
    assert written["created_at"] == moment.isoformat()
    assert CheckpointBrief.model_validate(written).model_dump(mode="json") == written


def test_enums_are_written_as_their_values() -> None:
    brief = CheckpointBrief(sequence=1, checkpoint_type="failure", created_at=AT, summary="x")
    assert brief.model_dump(mode="json")["checkpoint_type"] == "failure"


def test_an_answer_with_a_field_this_client_does_not_know_still_reads() -> None:
    answer = HeartbeatAnswer.model_validate(
        {"current_operation": None, "cancellation_requested": True, "added_later": 1}
    )
    assert answer == HeartbeatAnswer(current_operation=None, cancellation_requested=True)


def test_answers_are_frozen_and_checked() -> None:
    standing = Standing(operation_id="x", attempt=1, action="drop", reason="stale")
    with pytest.raises(pydantic.ValidationError):
        standing.attempt = 2  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        Standing.model_validate({"operation_id": "x", "attempt": 1, "action": "stop"})
