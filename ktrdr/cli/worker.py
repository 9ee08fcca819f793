"""`ktrdr worker <type>`: run a worker process that claims and runs operations of its type."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from ktrdr.cli import logs
from ktrdr.cli.errors import exits_cleanly


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
) -> None:
    """Run a worker: register with the API, claim operations of WORKER_TYPE, run them with
    checkpoints, survive backend restarts. SIGTERM: finish the step, save a shutdown
    checkpoint, mark the operation cancelled (resumable), deregister, exit 0."""
    # Imported here: the other commands must not pay for torch and the workloads.
    from ktrdr.bootstrap.worker import build_worker
    from ktrdr.config import load_settings

    logs.configure()
    runner, api = build_worker(worker_type.value, load_settings(), url=url, worker_id=worker_id)
    runner.install_signal_handlers()
    try:
        code = runner.run()
    finally:
        api.close()
    raise typer.Exit(code)
