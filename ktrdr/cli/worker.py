"""`ktrdr worker <type>`: run a worker process that claims and runs operations of its type."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Annotated

import typer

from ktrdr.cli.errors import exits_cleanly
from ktrdr.config import load_settings
from ktrdr.workers.api_client import ApiClient
from ktrdr.workers.checkpointing import open_artifact_store
from ktrdr.workers.registry import workloads_for
from ktrdr.workers.runtime import Worker, WorkerConfig, default_worker_id


class WorkerType(StrEnum):
    training = "training"
    backtesting = "backtesting"


@exits_cleanly
def worker(
    worker_type: Annotated[WorkerType, typer.Argument(help="Which operations to run.")],
    url: Annotated[
        str | None,
        typer.Option(help="The ktrdr API (default: KTRDR_API_URL, http://127.0.0.1:8000)."),
    ] = None,
    worker_id: Annotated[
        str | None,
        typer.Option(help="A stable id for this worker (default: <type>-<host>-<pid>)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=1, help="Operations at once (1; run more workers to scale).")
    ] = 1,
    workload: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run a worker: register with the API, claim operations of WORKER_TYPE, run them with
    checkpoints, survive backend restarts. SIGTERM: finish the step, save a shutdown
    checkpoint, mark the operation cancelled (resumable), deregister, exit 0."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_settings()
    config = WorkerConfig(
        worker_type=worker_type.value,
        worker_id=worker_id or default_worker_id(worker_type.value),
        heartbeat_interval=settings.heartbeat_interval_seconds,
        orphan_timeout=settings.orphan_timeout_seconds,
        shutdown_timeout=settings.shutdown_timeout_seconds,
    )
    api = ApiClient(url or settings.api_url, token=settings.client_token())
    runner = Worker(
        config,
        api,
        open_artifact_store(settings),
        workloads_for(worker_type.value, settings, api, workload),
    )
    runner.install_signal_handlers()
    try:
        code = runner.run()
    finally:
        api.close()
    raise typer.Exit(code)
