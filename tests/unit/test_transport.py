"""The one HTTP transport of the API's clients, and how the worker's and the CLI's clients
name what it raises. The backend is real httpx over a MockTransport answering as the API
does (problem+json), or as something that is not the API."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from ktrdr.cli.client import ApiFailure, ApiRefused, ApiUnreachable, KtrdrApi
from ktrdr.contracts import Claim, OperationView, Recorded, StatusAnswer
from ktrdr.transport import NoAnswer, ProblemAnswer, Transport, UnreadableAnswer
from ktrdr.workers.api_client import ApiClient, BackendUnavailable, Refused

OP = "0b7e4c1e-5a55-4b8e-9d7c-7f0c1a2b3c4d"
Answer = Callable[[httpx.Request], httpx.Response]


def problem(status: int, code: str) -> Answer:
    body = {"type": "about:blank", "title": "t", "status": status, "detail": "said no"}
    return lambda _: httpx.Response(status, json={**body, "code": code})


def http(answer: Answer) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(answer))


def unreachable(exc: type[httpx.TransportError]) -> Answer:
    def raise_(request: httpx.Request) -> httpx.Response:
        raise exc("down", request=request)

    return raise_


def test_requests_go_to_the_api_prefix_without_unset_query_values() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"recorded": True, "cancellation_requested": True})

    transport = Transport("http://backend/", client=http(answer))
    got = transport.call(Recorded, "POST", "/x", params={"a": 1, "b": None}, json={"k": 2})
    assert got == Recorded(recorded=True, cancellation_requested=True)
    assert str(seen[0].url) == "http://backend/api/v1/x?a=1"
    assert json.loads(seen[0].content) == {"k": 2}


def test_a_problem_answer_carries_its_code_and_detail() -> None:
    transport = Transport("http://backend", client=http(problem(409, "STALE_ATTEMPT")))
    with pytest.raises(ProblemAnswer) as caught:
        transport.send("POST", "/x")
    assert (caught.value.status, caught.value.code, caught.value.detail) == (
        409,
        "STALE_ATTEMPT",
        "said no",
    )


def test_an_error_that_is_not_the_apis_is_named_by_its_status() -> None:
    transport = Transport("http://backend", client=http(lambda _: httpx.Response(502, text="<h")))
    with pytest.raises(ProblemAnswer) as caught:
        transport.send("GET", "/x")
    assert (caught.value.code, caught.value.detail) == ("HTTP_502", "Bad Gateway")


def test_no_content_and_unreadable_answers() -> None:
    assert (
        Transport("http://b", client=http(lambda _: httpx.Response(204))).maybe(
            Claim, "POST", "/claim"
        )
        is None
    )
    garbled = Transport("http://b", client=http(lambda _: httpx.Response(200, content=b"{")))
    with pytest.raises(UnreadableAnswer):
        garbled.call(Recorded, "POST", "/x")
    with pytest.raises(UnreadableAnswer):
        garbled.json("GET", "/x")
    wrong = Transport("http://b", client=http(lambda _: httpx.Response(200, json={"a": 1})))
    with pytest.raises(UnreadableAnswer, match="not a OperationView"):
        wrong.call(OperationView, "GET", "/x")


@pytest.mark.parametrize(
    ("exc", "timed_out", "not_connected"),
    [
        (httpx.ConnectError, False, True),
        (httpx.ReadTimeout, True, False),
        (httpx.RemoteProtocolError, False, False),
    ],
)
def test_no_answer(exc: type[httpx.TransportError], timed_out: bool, not_connected: bool) -> None:
    transport = Transport("http://b", client=http(unreachable(exc)))
    with pytest.raises(NoAnswer) as caught:
        transport.send("GET", "/x")
    assert (caught.value.timed_out, caught.value.not_connected) == (timed_out, not_connected)


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (problem(409, "STALE_ATTEMPT"), Refused),
        (problem(503, "DATABASE_UNAVAILABLE"), BackendUnavailable),
        (lambda _: httpx.Response(500, text="boom"), BackendUnavailable),
        (unreachable(httpx.ConnectError), BackendUnavailable),
        (unreachable(httpx.ReadTimeout), BackendUnavailable),
    ],
)
def test_the_worker_retries_what_is_not_a_refusal(answer: Answer, raised: type[Exception]) -> None:
    api = ApiClient("http://b", client=http(answer))
    with pytest.raises(raised):
        api.write(OP, "progress", {})


def test_the_worker_reads_each_write_answer_as_its_contract() -> None:
    answer = {"operation_id": OP, "status": "completed"}
    api = ApiClient("http://b", client=http(lambda _: httpx.Response(200, json=answer)))
    assert api.write(OP, "complete", {}) == StatusAnswer.model_validate(answer)


@pytest.mark.parametrize(
    ("answer", "raised", "message"),
    [
        (problem(404, "OPERATION_NOT_FOUND"), ApiRefused, "said no (OPERATION_NOT_FOUND)"),
        (unreachable(httpx.ConnectError), ApiUnreachable, "is it running?"),
        (unreachable(httpx.ReadTimeout), ApiUnreachable, "[no answer in time]"),
        (lambda _: httpx.Response(200, content=b"<html>"), ApiFailure, "is it the ktrdr API"),
    ],
)
def test_the_cli_says_what_went_wrong_in_one_line(
    answer: Answer, raised: type[Exception], message: str
) -> None:
    with pytest.raises(raised) as caught:
        KtrdrApi("http://b", http=http(answer)).get(f"/operations/{OP}")
    assert message in str(caught.value) and "\n" not in str(caught.value)
