"""Each operation type's params, checked by the domain before anything is recorded."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from ktrdr.cli.app import app
from ktrdr.config import SettingsError
from ktrdr.domain import (
    PARAMS_MODELS,
    OperationType,
    ValidationError,
    params_schema,
    parse_operation_params,
)
from ktrdr.domain.params.backtesting import BacktestParams
from ktrdr.domain.params.training import TrainingParams
from ktrdr.workers.test_hooks import ENV, TestHooks, from_environment


def test_every_operation_type_has_a_params_model_whose_defaults_are_valid() -> None:
    assert set(PARAMS_MODELS) == set(OperationType)
    for operation_type, model in PARAMS_MODELS.items():
        # Given no params at all / When they are parsed / Then the defaults stand
        assert parse_operation_params(operation_type, {}) == model()


@pytest.mark.parametrize(
    ("operation_type", "params", "shown"),
    [
        ("training", {"epochs": "abc"}, "epochs: Input should be a valid integer (got 'abc')"),
        ("training", {"epochz": 5}, "epochz: Extra inputs are not permitted"),
        ("training", {"epochs": -1}, "epochs: Input should be greater than or equal to 1 (got -1)"),
        ("backtesting", {"strategy": "macd"}, "strategy: Input tag 'macd'"),
        ("backtesting", {"strategy": {}}, "strategy: a strategy needs a name"),
        ("agent_research", {"training": {"epochz": 1}}, "training: invalid training params: "),
        ("agent_research", {"backtesting": {"bars": 0}}, "backtesting: invalid backtesting"),
    ],
)
def test_a_bad_param_is_refused_naming_its_field(
    operation_type: str, params: dict[str, Any], shown: str
) -> None:
    # Given params that do not fit the type / When parsed / Then one refusal names the field
    with pytest.raises(ValidationError) as refused:
        parse_operation_params(operation_type, params)
    assert refused.value.code == "VALIDATION_ERROR"
    assert refused.value.detail.startswith(f"invalid {operation_type} params: {shown}")
    assert refused.value.errors and all("input" not in e for e in refused.value.errors)


def test_an_unknown_type_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="training, backtesting, agent_research"):
        parse_operation_params("dancing", {})


def test_params_that_are_not_an_object_are_refused() -> None:
    with pytest.raises(ValidationError, match="params must be an object"):
        parse_operation_params("training", ["epochs"])  # type: ignore[arg-type]


def test_a_long_bad_value_is_shown_cut_short() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_operation_params("training", {"seed": "x" * 500})
    assert len(refused.value.detail) < 200 and "…" in refused.value.detail


def test_the_schema_describes_each_field_and_hides_test_hooks() -> None:
    for operation_type in OperationType:
        properties = params_schema(operation_type)["properties"]
        assert properties
        assert not {"fail_at_epoch", "fail_at_bar", "fail_at_step"} & set(properties)
    training = params_schema(OperationType.TRAINING)["properties"]
    assert training["epochs"]["default"] == 8 and training["epochs"]["description"]


def test_cadence_params_do_not_change_the_trajectory() -> None:
    base = TrainingParams()
    other = TrainingParams(checkpoint_every_epochs=3, checkpoint_interval_seconds=5.0)
    assert base.trajectory_sha256("cpu") == other.trajectory_sha256("cpu")
    assert BacktestParams().trajectory() == BacktestParams(checkpoint_every_bars=7).trajectory()


def test_test_hooks_come_from_the_environment_only() -> None:
    assert from_environment({}) == TestHooks()
    hooks = from_environment({ENV: "workload=counter, step_seconds=0.1,fail_at_epoch=3"})
    assert (hooks.workload, hooks.step_seconds, hooks.fail_at_epoch) == ("counter", 0.1, 3)
    with pytest.raises(SettingsError, match=f"{ENV}: .*fail_at_epochs"):
        from_environment({ENV: "fail_at_epochs=3"})
    with pytest.raises(SettingsError, match="is not KEY=VALUE"):
        from_environment({ENV: "counter"})


def test_the_worker_shows_no_test_hook_and_no_concurrency() -> None:
    result = CliRunner().invoke(app, ["worker", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--url" in result.output
    for hidden in ("workload", "concurrency", "fail_at", ENV):
        assert hidden not in result.output
