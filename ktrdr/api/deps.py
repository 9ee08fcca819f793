"""What route handlers receive: the System built by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from litestar.datastructures import State
from litestar.di import NamedDependency
from psycopg import AsyncConnection

from ktrdr.bootstrap.system import System

SystemDep = NamedDependency[System]
USER = "user"
"""The actor of what a REST client asks for (until requests carry a principal)."""
P = ParamSpec("P")
R = TypeVar("R")


def provide_system(state: State) -> System:
    system: System = state.system
    return system


async def read(
    system: System,
    query: Callable[Concatenate[AsyncConnection[Any], P], Awaitable[R]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    """Run a read-model query on a pooled connection."""
    async with system.pool.connection() as conn:
        return await query(conn, *args, **kwargs)


__all__ = ["USER", "System", "SystemDep", "provide_system", "read"]
