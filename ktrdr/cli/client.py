"""A small synchronous client of the ktrdr REST API, for the operational CLI commands.

Exceptions::

    ApiFailure
    ├── ApiRefused      the API answered with an error (problem+json: detail and code)
    └── ApiUnreachable  nothing answered at the URL (connection refused, timeout, bad URL)

``exits_on_api_failure`` turns either into one line on stderr and exit code 1.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import httpx
import typer
from rich.console import Console

from ktrdr.config import load_settings

API_PREFIX = "/api/v1"
TIMEOUT = httpx.Timeout(30.0, connect=5.0)

P = ParamSpec("P")
R = TypeVar("R")
err = Console(stderr=True)


class ApiFailure(Exception):
    """A request that did not produce the answer the command needs."""


class ApiRefused(ApiFailure):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} ({code})")
        self.status = status
        self.code = code
        self.detail = detail


class ApiUnreachable(ApiFailure):
    def __init__(self, base_url: str, reason: str | None = None) -> None:
        hint = (
            f"cannot reach the ktrdr API at {base_url}: is it running? Start it with"
            " `ktrdr serve` (or set KTRDR_API_URL / --url)"
        )
        super().__init__(f"{hint} [{reason}]" if reason else hint)
        self.base_url = base_url


def _refusal(response: httpx.Response) -> ApiRefused:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body:
        detail = str(body.get("detail") or body.get("title") or "request refused")
        return ApiRefused(response.status_code, str(body["code"]), detail)
    reason = response.reason_phrase or "error"
    return ApiRefused(response.status_code, f"HTTP_{response.status_code}", reason)


class KtrdrApi:
    """The REST API at ``base_url``; pass ``http`` to reuse (or test with) your own client."""

    def __init__(
        self, base_url: str, *, http: httpx.Client | None = None, token: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = http if http is not None else httpx.Client(timeout=TIMEOUT)
        self._owns_http = http is None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one request; returns the decoded JSON body or raises an ApiFailure."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(
                method,
                self.base_url + API_PREFIX + path,
                params=query,
                json=json,
                headers=self._headers,
            )
        except httpx.ConnectError:
            raise ApiUnreachable(self.base_url) from None
        except httpx.TimeoutException:
            raise ApiUnreachable(self.base_url, "no answer in time") from None
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise ApiUnreachable(self.base_url, str(exc) or type(exc).__name__) from None
        if response.is_error:
            raise _refusal(response)
        try:
            return response.json()
        except ValueError:
            raise ApiFailure(
                f"the answer from {self.base_url} is not JSON: is it the ktrdr API?"
            ) from None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None, **params: Any) -> Any:
        return self.request("POST", path, params=params, json=json)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> KtrdrApi:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def connect(url: str | None, http: httpx.Client | None = None) -> KtrdrApi:
    """The API at ``url``, else at KTRDR_API_URL (default http://127.0.0.1:8000), with the
    token from KTRDR_API_TOKEN, else $KTRDR_DATA_DIR/admin-token."""
    settings = load_settings()
    return KtrdrApi(url or settings.api_url, http=http, token=settings.client_token())


def exits_on_api_failure(command: Callable[P, R]) -> Callable[P, R]:
    """Report a refused or unreachable request as one line on stderr, and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ApiFailure as exc:
            err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


__all__ = [
    "API_PREFIX",
    "ApiFailure",
    "ApiRefused",
    "ApiUnreachable",
    "KtrdrApi",
    "connect",
    "exits_on_api_failure",
]
