"""How the OpenAPI document describes error answers: the problem+json the API sends."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec

from ktrdr.api.problems import PROBLEM_JSON
from ktrdr.contracts import Problem

_MEANING = {
    400: "Malformed request: a body, path or query value the API cannot read"
    " (code VALIDATION_ERROR; ``errors`` names each value at fault)",
    404: "No such operation, checkpoint or worker (code OPERATION_NOT_FOUND, ...)",
    409: "Refused in the operation's present state (code STALE_ATTEMPT, OPERATION_BUSY, ...)",
    422: "Well-formed but invalid (code VALIDATION_ERROR)",
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
    """The problem answers of a route: 400 and 503 (any route), and ``statuses``."""
    return {status: _problem(status) for status in sorted({400, 503, *statuses})}


__all__ = ["problems"]
