"""How edges report failures: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

# Typer vendors Click: its exceptions are not the `click` package's.
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

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


class OneLineUsageErrors(TyperGroup):
    """A usage error is one line on stderr naming what was wrong (and the valid values),
    and exit 2, as for any Unix tool: not Click's usage block nor Rich's boxed panel."""

    def main(  # type: ignore[override]
        self, args: Any = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        standalone = extra.pop("standalone_mode", True)
        if not standalone:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        try:
            # Not standalone, Click returns the code of a typer.Exit instead of exiting.
            code = super().main(args, prog_name, standalone_mode=False, **extra)
        except ClickException as exc:
            if exc.format_message().strip():  # empty: `ktrdr` alone, which printed its help
                err.print(_one_line(exc), markup=False, highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print("aborted", highlight=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _one_line(exc: ClickException) -> str:
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return f"error: {message}{hint}"
