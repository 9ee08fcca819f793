"""Arrows point inward only (docs/design.md §2): each layer imports only the layers below it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ktrdr"

ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "eventlog": {"domain"},
    "projections": {"domain", "eventlog"},
    "artifacts": {"domain", "config"},
    # The wire: answers of the API as pydantic models, shared by the API and its clients.
    "contracts": {"domain"},
    # One HTTP client of the API (httpx), shared by the worker, the CLI and the demo.
    "transport": {"contracts"},
    "handlers": {"domain", "eventlog", "projections", "config", "artifacts"},
    # bootstrap/worker.py composes a worker process (it never imports the database side).
    "bootstrap": {
        "domain",
        "eventlog",
        "projections",
        "handlers",
        "config",
        "artifacts",
        "workers",
    },
    "api": {
        "domain",
        "eventlog",
        "projections",
        "handlers",
        "config",
        "artifacts",
        "bootstrap",
        "contracts",
    },
    "workers": {"domain", "config", "artifacts", "contracts", "transport"},
    "cli": {
        "domain",
        "eventlog",
        "projections",
        "handlers",
        "config",
        "artifacts",
        "bootstrap",
        "api",
        "workers",
        "contracts",
        "transport",
    },
}
FORBIDDEN_IN_DOMAIN = {"sqlalchemy", "psycopg", "psycopg_pool", "litestar", "httpx", "alembic"}
CONTRACTS_MAY_USE = {"pydantic", "ktrdr"}
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_inward(layer: str) -> None:
    bad = []
    for path in (PACKAGE / layer).rglob("*.py"):
        for name in imports_of(path):
            parts = name.split(".")
            if parts[0] != "ktrdr" or len(parts) < 2:
                continue
            target = parts[1]
            if target not in (layer, "__init__") and target not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not bad, "\n".join(bad)


def test_domain_is_pure() -> None:
    bad = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in (PACKAGE / "domain").rglob("*.py")
        for name in imports_of(path)
        if name.split(".")[0] in FORBIDDEN_IN_DOMAIN
    ]
    assert not bad, "\n".join(bad)


def test_workers_never_touch_the_database() -> None:
    bad = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in (PACKAGE / "workers").rglob("*.py")
        for name in imports_of(path)
        if name.split(".")[0] in {"psycopg", "psycopg_pool", "sqlalchemy", "alembic"}
    ]
    assert not bad, "\n".join(bad)


def test_contracts_are_pydantic_only() -> None:
    """Any client may import the wire, so it drags in no server or HTTP library."""
    bad = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in (PACKAGE / "contracts").rglob("*.py")
        for name in imports_of(path)
        if name.split(".")[0] not in CONTRACTS_MAY_USE | STDLIB
    ]
    assert not bad, "\n".join(bad)
