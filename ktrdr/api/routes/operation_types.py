"""/api/v1/operation-types: what each operation type takes as params, and their defaults."""

from __future__ import annotations

from litestar import Controller, get

from ktrdr.api.openapi import problems
from ktrdr.contracts import OperationTypes, OperationTypeView
from ktrdr.domain import PARAMS_MODELS, params_schema


class OperationTypesController(Controller):
    path = "/operation-types"
    tags = ["operations"]

    @get("/", responses=problems())
    async def list_operation_types(self) -> OperationTypes:
        """Each operation type with the JSON Schema of its params and their defaults."""
        items = [
            OperationTypeView(
                operation_type=kind,
                params_schema=params_schema(kind),
                defaults=model().model_dump(mode="json"),
            )
            for kind, model in PARAMS_MODELS.items()
        ]
        return OperationTypes(items=items)
