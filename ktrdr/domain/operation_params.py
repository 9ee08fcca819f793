"""Which params model each operation type takes, and what a client sees of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from ktrdr.domain.agent_research import ResearchParams, parse_research_params
from ktrdr.domain.errors import ValidationError
from ktrdr.domain.params.backtesting import BacktestParams
from ktrdr.domain.params.backtesting import parse_params as parse_backtest_params
from ktrdr.domain.params.training import TrainingParams
from ktrdr.domain.params.training import parse_params as parse_training_params
from ktrdr.domain.vocabulary import OperationType

PARAMS_MODELS: dict[OperationType, type[BaseModel]] = {
    OperationType.TRAINING: TrainingParams,
    OperationType.BACKTESTING: BacktestParams,
    OperationType.AGENT_RESEARCH: ResearchParams,
}

_PARSERS: dict[OperationType, Callable[[Mapping[str, Any]], BaseModel]] = {
    OperationType.TRAINING: parse_training_params,
    OperationType.BACKTESTING: parse_backtest_params,
    OperationType.AGENT_RESEARCH: parse_research_params,
}


def parse_operation_params(operation_type: str, params: Mapping[str, Any]) -> BaseModel:
    """The params of a new operation of ``operation_type``; refused (ValidationError, naming
    each field at fault) before anything is recorded."""
    try:
        parse = _PARSERS[OperationType(operation_type)]
    except ValueError:
        known = ", ".join(OperationType)
        raise ValidationError(
            f"unknown operation type {operation_type!r}; one of {known}",
            [{"loc": ["operation_type"], "msg": f"must be one of {known}", "type": "enum"}],
        ) from None
    return parse(params)


def params_schema(operation_type: OperationType) -> dict[str, Any]:
    """The JSON Schema of the type's params (defaults included), as clients see it."""
    return PARAMS_MODELS[operation_type].model_json_schema(mode="validation")
