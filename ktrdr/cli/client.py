"""A small synchronous client of the ktrdr REST API, for the operational CLI commands,
on the transport every client shares (``ktrdr.transport``).

Exceptions::

    ApiFailure
    ├── ApiRefused      the API answered with an error (problem+json: detail and code)
    └── ApiUnreachable  nothing answered at the URL (connection refused, timeout, bad URL)

``exits_on_api_failure`` turns either into one line on stderr and exit code 1.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import httpx
import typer
from rich.console import Console

from ktrdr import __version__, client_token
from ktrdr.transport import API_PREFIX, NoAnswer, ProblemAnswer, Transport, UnreadableAnswer

DEFAULT_API_URL = "http://127.0.0.1:8000"
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


def _tls(base_url: str) -> ssl.SSLContext | bool:
    """Verify https as usual; for plain http skip loading the CA bundle (a third of a REST
    command's CPU) with a context that trusts nothing, so any TLS it met would fail closed."""
    if base_url.startswith("https://"):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class KtrdrApi:
    """The REST API at ``base_url``; pass ``http`` to reuse (or test with) your own client."""

    def __init__(
        self, base_url: str, *, http: httpx.Client | None = None, token: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._transport = Transport(
            self.base_url, timeout=TIMEOUT, client=http, verify=_tls(self.base_url), token=token
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one request; returns the decoded JSON body or raises an ApiFailure."""
        with self._as_cli_errors():
            return self._transport.json(method, path, params=params, json=json)

    @contextmanager
    def _as_cli_errors(self) -> Iterator[None]:
        try:
            yield
        except NoAnswer as exc:
            if exc.not_connected:
                raise ApiUnreachable(self.base_url) from None
            reason = "no answer in time" if exc.timed_out else exc.reason
            raise ApiUnreachable(self.base_url, reason) from None
        except ProblemAnswer as exc:
            raise ApiRefused(exc.status, exc.code, exc.detail) from None
        except UnreadableAnswer as exc:
            raise ApiFailure(
                f"the answer from {self.base_url} is not what ktrdr {__version__} expects"
                f" ({exc}): is it the ktrdr API, of this version?"
            ) from None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None, **params: Any) -> Any:
        return self.request("POST", path, params=params, json=json)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def close(self) -> None:
        self._transport.close()

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
    # Read directly, not through ktrdr.config: pydantic-settings would cost a REST call
    # half of its start-up, and the other settings are the server's and the workers'.
    base_url = url or os.environ.get("KTRDR_API_URL") or DEFAULT_API_URL
    data_dir = Path(os.environ.get("KTRDR_DATA_DIR") or Path.home() / ".ktrdr")
    token = client_token(os.environ.get("KTRDR_API_TOKEN"), data_dir)
    return KtrdrApi(base_url, http=http, token=token)


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
