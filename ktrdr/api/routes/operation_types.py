"""/api/v1/operation-types: what each operation type takes as params, and their defaults."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get

from ktrdr.domain import PARAMS_MODELS, params_schema


class OperationTypesController(Controller):
    path = "/operation-types"
    tags = ["operations"]

    @get("/")
    async def list_operation_types(self) -> dict[str, Any]:
        """Each operation type with the JSON Schema of its params and their defaults."""
        items = [
            {
                "operation_type": str(kind),
                "params_schema": params_schema(kind),
                "defaults": model().model_dump(mode="json"),
            }
            for kind, model in PARAMS_MODELS.items()
        ]
        return {"items": items}
