"""How edges report failures: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")
err = Console(stderr=True)

# Looked up, not imported: a module that was never imported raised nothing, and importing
# the database stack (alembic, SQLAlchemy) costs a REST command most of its start-up time.
_EXIT_CODES = (
    ("ktrdr.config", "SettingsError", 2),
    ("ktrdr.bootstrap.database", "DatabaseUnavailable", 1),
)


def exit_code_of(exc: BaseException) -> int | None:
    """2 for an invalid setting, 1 for a database out of reach, None for anything else."""
    for module, name, code in _EXIT_CODES:
        kind = getattr(sys.modules.get(module), name, None)
        if kind is not None and isinstance(exc, kind):
            return code
    return None


def exits_cleanly(command: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except Exception as exc:
            code = exit_code_of(exc)
            if code is None:
                raise
            err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(code) from None

    return wrapper
