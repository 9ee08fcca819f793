"""Real PostgreSQL for every test that needs one.

The server is, in order: the one named by KTRDR_TEST_DATABASE_URL; a
testcontainers PostgreSQL when KTRDR_TEST_DOCKER=1 and a Docker engine
answers; otherwise the embedded PostgreSQL 18 (the project's default). The
schema is migrated once into a template database, and each test gets its own
copy with CREATE DATABASE … TEMPLATE.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from ktrdr.bootstrap import database
from ktrdr.config import normalize_database_url, with_database

_counter = itertools.count(1)


def _docker_server() -> Iterator[str] | None:
    if os.environ.get("KTRDR_TEST_DOCKER") != "1":
        return None
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        return None
    from testcontainers.postgres import PostgresContainer  # type: ignore[import-untyped]

    def serve() -> Iterator[str]:
        with PostgresContainer("postgres:15", driver=None) as container:
            yield normalize_database_url(container.get_connection_url())

    return serve()


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("KTRDR_TEST_DATABASE_URL")
    if configured:
        yield normalize_database_url(configured)
        return
    docker_server = _docker_server()
    if docker_server is not None:
        yield from docker_server
        return
    with database.throwaway_server("ktrdr-test-pg-") as url:
        yield url


def _admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


@pytest.fixture(scope="session")
def template_database(pg_admin_url: str) -> Iterator[str]:
    name = f"ktrdr_template_{os.getpid()}"
    with _admin(pg_admin_url) as conn:
        conn.execute(database.DROP_DATABASE.format(sql.Identifier(name)))
        conn.execute(database.CREATE_DATABASE.format(sql.Identifier(name)))
    database.migrate(with_database(pg_admin_url, name))
    yield name
    with _admin(pg_admin_url) as conn:
        conn.execute(database.DROP_DATABASE.format(sql.Identifier(name)))


def create_database(admin_url: str, template: str | None) -> tuple[str, str]:
    name = f"ktrdr_test_{os.getpid()}_{next(_counter)}"
    query = database.CREATE_DATABASE.format(sql.Identifier(name))
    if template:
        query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with _admin(admin_url) as conn:
        conn.execute(query)
    return name, with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with _admin(admin_url) as conn:
        conn.execute(database.DROP_DATABASE.format(sql.Identifier(name)))


@pytest.fixture
def database_url(pg_admin_url: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name, url = create_database(pg_admin_url, template_database)
    yield url
    drop_database(pg_admin_url, name)


@pytest.fixture
def empty_database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database with no schema at all."""
    name, url = create_database(pg_admin_url, None)
    yield url
    drop_database(pg_admin_url, name)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with AsyncConnectionPool(
        database_url, min_size=1, max_size=8, kwargs={"autocommit": True}, open=False
    ) as pool:
        await pool.open(wait=True)
        yield pool


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
