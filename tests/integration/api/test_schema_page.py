"""The API docs page works offline: every script and style it loads is served by ktrdr."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

pytestmark = pytest.mark.anyio
Client = AsyncTestClient[Any]

_ASSETS = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)


async def test_the_docs_page_loads_nothing_from_the_network(client: Client) -> None:
    page = await client.get("/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = _ASSETS.findall(page.text)
    assert assets, page.text
    assert [a for a in assets if re.match(r"(https?:)?//", a)] == []
    assert "fonts.googleapis" not in page.text
    for asset in assets:
        answer = await client.get(asset)
        assert answer.status_code == 200, asset
        assert len(answer.content) > 100_000 and b"Redoc" in answer.content[:5_000]
    spec = await client.get("/schema/openapi.json")
    assert spec.status_code == 200 and "/api/v1/operation-types" in spec.json()["paths"]
