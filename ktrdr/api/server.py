"""Running the app under uvicorn so that SIGTERM ends the process normally."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import uvicorn
from litestar import Litestar


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the signal after a graceful shutdown, which kills the process
        # before atexit runs — and atexit is what stops the embedded PostgreSQL.
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


GRACEFUL_SHUTDOWN_SECONDS = 3
"""On SIGTERM, requests in flight get this long before they are cancelled: a claim long-polls
for up to a minute, and the whole shutdown must fit an orchestrator's grace period (10 s)."""


def serve(app: Litestar, host: str, port: int, *, access_log: bool = False) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # The process's logging is configured already (one format with the workers').
        log_config=None,
        # A line per request is ~7 % of a heartbeat's CPU, at hundreds a second with hundreds
        # of workers; failures are logged by the app, and every state change is in the log:
        # so only at DEBUG.
        access_log=access_log,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    _Server(config).run()
