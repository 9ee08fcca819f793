"""The operator's web dashboard: pages at /, /operations/{id}, /workers and /login.

Plain HTML, CSS and JavaScript shipped inside the package (no CDN, no build step), so it
works on a cluster without internet. The pages only read and write /api/v1, through one
JavaScript function (``api`` in ``static/common.js``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie, ResponseHeader
from litestar.enums import MediaType
from litestar.params import FromPath, JSONBody
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_204_NO_CONTENT
from pydantic import Field

from ktrdr.api.schemas import Body

STATIC = Path(__file__).parent / "static"

TOKEN_COOKIE = "ktrdr_token"
"""Where a browser keeps its API token: HttpOnly so no script can read it, SameSite=Strict
so no other site can send it; the API accepts it in place of an Authorization header."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none';"
    " form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
]


async def _secured(response: Response[Any]) -> Response[Any]:
    # The static files router answers on its own; its files get the pages' headers here.
    for header in _HEADERS:
        response.headers[header.name] = header.value or ""
    return response


class LoginRequest(Body):
    token: str = Field(min_length=1, max_length=4096)


def token_from_cookie(request: Request[Any, Any, Any]) -> str | None:
    """The token a browser logged in with, for the API's authentication to check."""
    return request.cookies.get(TOKEN_COOKIE)


@cache
def _file(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def _page(name: str) -> Response[bytes]:
    # no-cache: a new release's pages must not run against an old page's scripts.
    return Response(_file(name), media_type=MediaType.HTML, headers={"Cache-Control": "no-cache"})


@get("/", include_in_schema=False)
async def operations_page() -> Response[bytes]:
    return _page("operations.html")


@get("/operations/{op_id:str}", include_in_schema=False)
async def operation_page(op_id: FromPath[str]) -> Response[bytes]:
    return _page("operation.html")


@get("/workers", include_in_schema=False)
async def workers_page() -> Response[bytes]:
    return _page("workers.html")


@get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response[bytes]:
    return Response(_file("favicon.svg"), media_type="image/svg+xml")


@get("/login", include_in_schema=False)
async def login_page() -> Response[bytes]:
    return _page("login.html")


@post("/login", status_code=HTTP_204_NO_CONTENT, include_in_schema=False)
async def login(request: Request[Any, Any, Any], data: JSONBody[LoginRequest]) -> Response[None]:
    """Keep the token in a cookie; the page then asks the API whether it is accepted."""
    cookie = Cookie(
        key=TOKEN_COOKIE,
        value=data.token,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=[cookie])


@post("/logout", status_code=HTTP_204_NO_CONTENT, include_in_schema=False)
async def logout() -> Response[None]:
    gone = Cookie(key=TOKEN_COOKIE, value="", path="/", max_age=0, httponly=True, samesite="strict")
    return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=[gone])


dashboard = Router(
    path="/",
    route_handlers=[
        operations_page,
        operation_page,
        workers_page,
        favicon,
        login_page,
        login,
        logout,
        create_static_files_router(path="/ui", directories=[STATIC], after_request=_secured),
    ],
    response_headers=_HEADERS,
    include_in_schema=False,
)
