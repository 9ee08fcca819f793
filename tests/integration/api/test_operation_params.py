"""Every operation type's params are checked when it is created, and described to clients."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from ktrdr.bootstrap.system import System
from tests.integration.api.test_operations_api import API, assert_problem

pytestmark = pytest.mark.anyio
Client = AsyncTestClient[Any]


@pytest.mark.parametrize(
    ("operation_type", "params", "field"),
    [
        ("training", {"epochs": "abc"}, "epochs"),
        ("training", {"epochz": 5}, "epochz"),
        ("training", {"epochs": -1}, "epochs"),
        ("training", {"data": {"csv_path": ""}}, "data.csv_path"),
        ("backtesting", {"strategy": "macd"}, "strategy"),
        ("backtesting", {"strategy": "model_signal"}, "params"),
        ("agent_research", {"training": {"epochz": 5}}, "training"),
        ("agent_research", {"backtesting": {"fee_bps": -1}}, "backtesting"),
    ],
)
async def test_bad_params_are_refused_naming_the_field_and_nothing_is_recorded(
    client: Client, system: System, operation_type: str, params: dict[str, Any], field: str
) -> None:
    # Given a request whose params do not fit the type's params model
    body = {"operation_type": operation_type, "params": params}
    # When it is posted
    response = await client.post(f"{API}/operations", json=body)
    # Then it is a 422 VALIDATION_ERROR naming the field, and the log holds no event
    problem = assert_problem(response, 422, "VALIDATION_ERROR")
    assert problem["detail"].startswith(f"invalid {operation_type} params: {field}: ")
    assert [".".join(map(str, e["loc"])) for e in problem["errors"]][0] in (field, "")
    recorded = await system.event_log.read_all()
    assert [e for e in recorded if e.stream_id.startswith("operation-")] == []
    assert (await client.get(f"{API}/operations")).json()["total"] == 0


async def test_good_params_are_stored_as_given(client: Client) -> None:
    body = {"operation_type": "backtesting", "params": {"strategy": "ma_crossover", "bars": 500}}
    response = await client.post(f"{API}/operations", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["params"] == {"strategy": "ma_crossover", "bars": 500}


async def test_test_hooks_are_not_params(client: Client) -> None:
    for operation_type, hook in (("training", "fail_at_epoch"), ("backtesting", "fail_at_bar")):
        body = {"operation_type": operation_type, "params": {hook: 1}}
        response = await client.post(f"{API}/operations", json=body)
        assert_problem(response, 422, "VALIDATION_ERROR")
        assert hook in response.json()["detail"]


async def test_operation_types_list_each_params_schema_and_defaults(client: Client) -> None:
    response = await client.get(f"{API}/operation-types")
    assert response.status_code == 200, response.text
    items = {item["operation_type"]: item for item in response.json()["items"]}
    assert sorted(items) == ["agent_research", "backtesting", "training"]
    training = items["training"]
    assert training["defaults"]["epochs"] == 8
    epochs = training["params_schema"]["properties"]["epochs"]
    assert epochs["type"] == "integer" and epochs["minimum"] == 1 and epochs["description"]
    assert training["params_schema"]["additionalProperties"] is False
    assert "fail_at_epoch" not in training["params_schema"]["properties"]
    assert items["backtesting"]["defaults"]["strategy"]["name"] == "rsi"
    assert "fail_at_bar" not in items["backtesting"]["params_schema"]["properties"]
    assert items["agent_research"]["defaults"]["seed"] == 42
