"""The dashboard's pages, files and login cookie, as the server sends them (the browser
behaviour is in tests/e2e/test_dashboard.py)."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.integration.api.test_operations_api import create

pytestmark = pytest.mark.anyio
Client = AsyncTestClient[Any]

PAGES = ["/", "/workers", "/login"]
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
"""A name, not an address: nothing is fetched from it."""
FILES = ["common.js", "operations.js", "operation.js", "workers.js", "login.js", "chart.js"]


def addresses(text: str) -> set[str]:
    return set(re.findall(r"https?://[^\s\"'`)]+", text)) - {SVG_NAMESPACE}


def csp(response: Any) -> dict[str, str]:
    directives = (
        d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";")
    )
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


@pytest.mark.parametrize("path", PAGES)
async def test_pages_are_html_under_a_strict_content_security_policy(
    client: Client, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = csp(response)
    assert policy["default-src"] == "'self'"
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_an_operations_page_answers_for_an_operation(client: Client) -> None:
    op = await create(client)
    response = await client.get(f"/operations/{op}")
    assert response.status_code == 200
    assert '<script type="module" src="/ui/operation.js">' in response.text


@pytest.mark.parametrize("name", FILES)
async def test_every_script_a_page_loads_is_served_from_the_package(
    client: Client, name: str
) -> None:
    response = await client.get(f"/ui/{name}")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert response.headers["x-content-type-options"] == "nosniff"
    # Nothing from the internet: every import is one of ours.
    assert not addresses(response.text)


async def test_pages_reference_no_other_site(client: Client) -> None:
    for path in PAGES:
        page = (await client.get(path)).text
        assert not addresses(page), path


async def test_login_keeps_the_token_in_an_http_only_strict_cookie(client: Client) -> None:
    response = await client.post("/login", json={"token": "s3cret"})
    assert response.status_code == 204
    cookie = SimpleCookie(response.headers["set-cookie"])["ktrdr_token"]
    assert cookie.value == "s3cret"
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/"

    response = await client.post("/logout", json={})
    gone = SimpleCookie(response.headers["set-cookie"])["ktrdr_token"]
    assert gone.value == "" and gone["max-age"] == "0"


async def test_login_refuses_an_empty_token(client: Client) -> None:
    response = await client.post("/login", json={"token": ""})
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert "set-cookie" not in response.headers
