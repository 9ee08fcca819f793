"""The worker process's composition: one API client, one artifact store, its workloads."""

from __future__ import annotations

import logging
from typing import Any

from ktrdr.config import Settings
from ktrdr.workers import test_hooks
from ktrdr.workers.api_client import ApiClient
from ktrdr.workers.checkpointing import open_artifact_store
from ktrdr.workers.registry import workloads_for
from ktrdr.workers.runtime import Worker, WorkerConfig, default_worker_id


def build_worker(
    worker_type: str, settings: Settings, *, url: str | None = None, worker_id: str | None = None
) -> tuple[Worker, ApiClient]:
    """The worker and the API client it talks through (the caller closes it)."""
    hooks = test_hooks.from_environment()
    config = WorkerConfig(
        worker_type=worker_type,
        worker_id=worker_id or default_worker_id(worker_type),
        heartbeat_interval=settings.heartbeat_interval_seconds,
        orphan_timeout=settings.orphan_timeout_seconds,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        cuda=_cuda(worker_type, hooks.workload),
    )
    api = ApiClient(url or settings.api_url, token=settings.client_token())
    store = open_artifact_store(settings)
    workloads = workloads_for(worker_type, settings, api, store, hooks)
    return Worker(config, api, store, workloads), api


def _cuda(worker_type: str, workload: str | None) -> dict[str, Any] | None:
    """Training workers register the CUDA devices they have (only they compute on them)."""
    if worker_type != "training" or workload is not None:
        return None
    from ktrdr.workers.training.cuda import detect_cuda

    found = detect_cuda()
    logging.getLogger(__name__).info("CUDA: %s", found or "none")
    return found
