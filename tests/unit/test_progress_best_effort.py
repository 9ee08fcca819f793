"""Progress is best effort: a value JSON cannot spell is encoded, a failed send is dropped,
and neither ever fails the run (issue 10, item 7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ktrdr.artifacts import ArtifactStore
from ktrdr.workers.api_client import ApiClient, Claim
from ktrdr.workers.checkpointing import CheckpointWriter
from ktrdr.workers.link import Link
from ktrdr.workers.operation_run import OperationRun, RunContext

OP = "0b7e4c1e-5a55-4b8e-9d7c-7f0c1a2b3c4d"


def context(tmp_path: Path, answer: Any) -> tuple[RunContext, list[dict[str, Any]]]:
    """A run whose backend is ``answer`` (a request -> response function) over real httpx."""
    sent: list[dict[str, Any]] = []

    def backend(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        response: httpx.Response = answer(request)
        return response

    http = httpx.Client(base_url="http://backend", transport=httpx.MockTransport(backend))
    claim = Claim(
        operation_id=OP,
        operation_type="backtesting",
        params={},
        attempt=1,
        next_checkpoint_sequence=1,
        resume_from=None,
        fallbacks=[],
    )
    link = Link(orphan_timeout=60)
    link.registered()
    run = OperationRun(
        claim,
        worker_id="w1",
        api=ApiClient("http://backend", client=http),
        link=link,
        shutting_down=lambda: False,
    )
    writer = CheckpointWriter(ArtifactStore(tmp_path), OP, run.commit, attempt=1)
    return RunContext(run, writer), sent


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"recorded": True, "cancellation_requested": False})


def test_fault_07_a_non_finite_progress_value_is_encoded_not_fatal(tmp_path: Path) -> None:
    ctx, sent = context(tmp_path, ok)
    ctx.progress(
        50.0, "bar 5 of 10", "portfolio inf", portfolio_value=float("inf"), nan=[float("nan")]
    )
    assert sent[0]["details"] == {"portfolio_value": "Infinity", "nan": ["NaN"]}
    assert sent[0]["percentage"] == 50.0


@pytest.mark.parametrize(
    "answer",
    [
        lambda r: httpx.Response(422, json={"code": "VALIDATION_ERROR", "detail": "no"}),
        lambda r: httpx.Response(503, json={"code": "DATABASE_UNAVAILABLE"}),
        lambda r: httpx.Response(200, content=b"not json"),
    ],
    ids=["refused", "backend away", "garbled answer"],
)
def test_a_progress_report_that_goes_wrong_is_dropped(tmp_path: Path, answer: Any) -> None:
    ctx, sent = context(tmp_path, answer)
    ctx.progress(10.0, "bar 1 of 10")
    assert len(sent) == 1 and ctx.stop_requested() is None
