"""The OpenAPI document describes every answer, and the API's real answers match it.

The main flows (an operation created, claimed, reported on, checkpointed, failed,
resumed, completed; another cancelled; the checkpoint and worker views) are driven over
REST, and each answer is checked against the schema the document declares for its
route and status, and parsed into its contract model without losing a field.
"""

from __future__ import annotations

import uuid
from typing import Any

import jsonschema
import pytest
from litestar.testing import AsyncTestClient

import ktrdr.contracts
from tests.integration.api.test_operations_api import API

pytestmark = pytest.mark.anyio
Client = AsyncTestClient[Any]
Document = dict[str, Any]

WORKER = "contract-worker-1"
NOW = {"wait_seconds": 0}


async def openapi(client: Client) -> Document:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    document: Document = response.json()
    return document


def _routes(document: Document) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", status, answer)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status, answer in operation["responses"].items()
    ]


def _resolved(document: Document, schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        named: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return named
    return schema


async def test_every_success_answer_has_a_schema(client: Client) -> None:
    document = await openapi(client)
    bare = []
    for route, status, answer in _routes(document):
        if not status.startswith("2") or status == "204":
            continue
        schema = answer.get("content", {}).get("application/json", {}).get("schema")
        if not schema:
            bare.append(f"{route} {status}: no schema")
            continue
        resolved = _resolved(document, schema)
        if resolved.get("type") == "object" and "properties" not in resolved:
            bare.append(f"{route} {status}: a bare object")
    assert len(_routes(document)) > 28 * 2
    assert not bare, "\n".join(bare)


async def test_every_error_answer_is_described_as_problem_json(client: Client) -> None:
    document = await openapi(client)
    wrong = []
    for route, status, answer in _routes(document):
        if status.startswith(("2", "3")) or route == "GET /api/v1/health":
            continue
        content = answer.get("content", {})
        schema = content.get("application/problem+json", {}).get("schema", {})
        if list(content) != ["application/problem+json"] or not schema.get("$ref", "").endswith(
            "/Problem"
        ):
            wrong.append(f"{route} {status}: {content}")
    assert not wrong, "\n".join(wrong)
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"title", "status", "detail", "code"}
    assert {"type", "errors"} <= set(problem["properties"])


async def test_path_ids_are_typed(client: Client) -> None:
    document = await openapi(client)
    for path, item in document["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "path":
                    continue
                if parameter["name"] == "op_id":
                    assert parameter["schema"]["format"] == "uuid", path
                else:
                    assert parameter["name"] == "worker_id", path
                    assert parameter["schema"]["pattern"] == ktrdr.contracts.WORKER_ID_PATTERN


class Checked:
    """A client whose every answer is checked against the document before it is used."""

    def __init__(self, client: Client, document: Document) -> None:
        self.client = client
        self.document = document
        self.checked: set[str] = set()

    async def __call__(
        self, method: str, template: str, status: int = 200, **kwargs: Any
    ) -> dict[str, Any]:
        path = template.format(**kwargs.pop("ids", {}))
        response = await getattr(self.client, method)(API + path, **kwargs)
        assert response.status_code == status, response.text
        declared = self.document["paths"][API + template][method]["responses"][str(status)]
        [(media_type, content)] = declared["content"].items()
        assert response.headers["content-type"].startswith(media_type)
        body: dict[str, Any] = response.json()
        schema = {**content["schema"], "components": self.document["components"]}
        jsonschema.Draft202012Validator(schema).validate(body)
        model = getattr(ktrdr.contracts, content["schema"]["$ref"].rsplit("/", 1)[1])
        # Parsed and written back unchanged: the model names every field the API sent.
        assert model.model_validate(body).model_dump(mode="json", exclude_unset=True) == body
        self.checked.add(f"{method.upper()} {template} {status}")
        return body


def fenced(attempt: int, **fields: Any) -> dict[str, Any]:
    return {"worker_id": WORKER, "attempt": attempt, **fields}


async def test_the_main_flows_answer_as_declared(client: Client) -> None:
    call = Checked(client, await openapi(client))
    await call("get", "/health")
    await call(
        "post",
        "/workers",
        201,
        json={
            "worker_id": WORKER,
            "worker_type": "training",
            "host": "h",
            "pid": 1,
            "version": "t",
        },
    )
    created = await call(
        "post", "/operations", 201, json={"operation_type": "training", "params": {"epochs": 3}}
    )
    op = {"op_id": created["operation_id"]}
    claimed = await call("post", "/workers/{worker_id}/claim", ids={"worker_id": WORKER}, json=NOW)
    attempt = claimed["attempt"]
    await call("post", "/operations/{op_id}/acknowledge", ids=op, json=fenced(attempt))
    await call(
        "post",
        "/workers/{worker_id}/heartbeat",
        ids={"worker_id": WORKER},
        json={"operation_id": op["op_id"], "attempt": attempt},
    )
    await call(
        "post",
        "/operations/{op_id}/progress",
        ids=op,
        json=fenced(attempt, percentage=50, current_step="epoch 2", details={"epoch": 2}),
    )
    await call(
        "post",
        "/operations/{op_id}/metrics",
        ids=op,
        json=fenced(attempt, series="epochs", points=[{"epoch": 1, "loss": 0.5}]),
    )
    state = {"epoch": 1, "history": [0.5]}
    await call(
        "post",
        "/operations/{op_id}/checkpoints",
        201,
        ids=op,
        json=fenced(attempt, checkpoint_type="periodic", state=state),
    )
    await call(
        "post",
        "/operations/{op_id}/checkpoint-failures",
        ids=op,
        json=fenced(attempt, sequence=2, checkpoint_type="periodic", message="disk full"),
    )
    failed = await call(
        "post", "/operations/{op_id}/fail", ids=op, json=fenced(attempt, message="boom")
    )
    assert failed["status"] == "failed"
    shown = await call("get", "/operations/{op_id}", ids=op)
    assert shown["error"] and shown["checkpoint"] and shown["checkpoint_failure"]
    await call("get", "/operations/{op_id}", ids=op, params={"as_of_version": 2})
    await call("post", "/operations/{op_id}/resume", ids=op, json={})
    resumed = await call("post", "/workers/{worker_id}/claim", ids={"worker_id": WORKER}, json=NOW)
    assert resumed["resume_from"]["state"] == state
    attempt = resumed["attempt"]
    await call("post", "/operations/{op_id}/acknowledge", ids=op, json=fenced(attempt))
    await call(
        "post", "/operations/{op_id}/complete", ids=op, json=fenced(attempt, result={"a": 1})
    )

    other = await call("post", "/operations", 201, json={"operation_type": "training"})
    other_op = {"op_id": other["operation_id"]}
    claimed = await call("post", "/workers/{worker_id}/claim", ids={"worker_id": WORKER}, json=NOW)
    attempt = claimed["attempt"]
    await call("post", "/operations/{op_id}/acknowledge", ids=other_op, json=fenced(attempt))
    await call("post", "/operations/{op_id}/cancel", ids=other_op)
    await call(
        "post",
        "/operations/{op_id}/cancelled",
        ids=other_op,
        json=fenced(attempt, reason="cancellation"),
    )
    third = await call("post", "/operations", 201, json={"operation_type": "training"})
    claimed = await call("post", "/workers/{worker_id}/claim", ids={"worker_id": WORKER}, json=NOW)
    await call(
        "post",
        "/operations/{op_id}/release",
        ids={"op_id": third["operation_id"]},
        json=fenced(claimed["attempt"], reason="shutting down"),
    )

    listed = await call("get", "/operations", params={"limit": 2})
    assert listed["total"] == 3 and len(listed["items"]) == 2
    await call("get", "/operations/{op_id}/events", ids=op)
    await call("get", "/operations/{op_id}/metrics", ids=op)
    await call("get", "/checkpoints")
    await call("get", "/checkpoints/{op_id}", ids=op)
    await call("get", "/checkpoints/{op_id}/history", ids=op)
    await call("get", "/checkpoints/stats")
    await call("post", "/checkpoints/cleanup")
    await call("get", "/workers")
    await call("get", "/operation-types")
    await call("delete", "/checkpoints/{op_id}", ids=op)
    await call("delete", "/workers/{worker_id}", ids={"worker_id": WORKER})

    problem = await call("get", "/operations/{op_id}", 422, ids={"op_id": "not-a-uuid"})
    assert problem["code"] == "VALIDATION_ERROR" and problem["errors"]
    await call("get", "/operations/{op_id}", 404, ids={"op_id": str(uuid.uuid4())})
    successes = {c for c in call.checked if c.rsplit(" ", 1)[1].startswith("2")}
    assert len(successes) == 29
