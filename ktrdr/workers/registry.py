"""Which workload runs which operation type on a worker."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from ktrdr.artifacts import ArtifactFile, ArtifactStore, Manifest
from ktrdr.config import Settings
from ktrdr.workers.api_client import ApiClient
from ktrdr.workers.test_hooks import NONE, TestHooks
from ktrdr.workers.workload import Workload


def workloads_for(
    worker_type: str,
    settings: Settings,
    api: ApiClient,
    store: ArtifactStore,
    hooks: TestHooks = NONE,
) -> dict[str, Workload]:
    if hooks.workload == "counter":
        from ktrdr.workers.counter import CounterWorkload

        return {worker_type: CounterWorkload(worker_type, hooks)}
    if worker_type == "training":
        from ktrdr.workers.training import TrainingWorkload

        return {"training": TrainingWorkload.from_settings(settings, hooks.fail_at_epoch)}
    from ktrdr.workers.backtesting import BacktestingWorkload

    return {
        "backtesting": BacktestingWorkload.from_settings(
            settings,
            model_loader=trained_model_loader(api, store),
            fail_at_bar=hooks.fail_at_bar,
        )
    }


def trained_model_loader(
    api: ApiClient, store: ArtifactStore
) -> Callable[[str], Mapping[str, Path]]:
    """Resolve a completed training operation to its model files, verified by hash."""

    def load(operation_id: str) -> Mapping[str, Path]:
        operation = api.operation(operation_id)
        if operation.operation_type != "training" or operation.status != "completed":
            raise ValueError(
                f"model_operation_id {operation_id} is a {operation.status}"
                f" {operation.operation_type} operation; it must be a completed training"
            )
        checkpoint = api.checkpoint(operation_id)
        manifest = Manifest(
            files=tuple(ArtifactFile(**a.model_dump()) for a in checkpoint.artifacts)
        )
        if checkpoint.artifacts_path is None:
            raise ValueError(f"training {operation_id} saved no model files to load")
        return store.load_set(checkpoint.artifacts_path, manifest)

    return load
