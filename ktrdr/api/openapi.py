"""How the OpenAPI document describes error answers: the problem+json the API sends."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec

from ktrdr.api.problems import PROBLEM_JSON
from ktrdr.contracts import Problem

_MEANING = {
    400: "A body that is not JSON at all (code BAD_REQUEST)",
    404: "No such operation, checkpoint or worker (code OPERATION_NOT_FOUND, ...)",
    409: "Refused in the operation's present state (code STALE_ATTEMPT, OPERATION_BUSY, ...)",
    422: "A body, path, query or params value that does not fit"
    " (code VALIDATION_ERROR; ``errors`` names each value at fault)",
    503: "The database cannot be reached right now; retry after Retry-After seconds"
    " (code DATABASE_UNAVAILABLE)",
}


def _problem(status: int) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem,
        description=_MEANING[status],
        media_type=PROBLEM_JSON,
        generate_examples=False,
    )


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """The problem answers of a route: 400, 422 and 503 (any route), and ``statuses``."""
    return {status: _problem(status) for status in sorted({400, 422, 503, *statuses})}


__all__ = ["problems"]
