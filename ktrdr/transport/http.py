"""The transport itself (see the package's docstring)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx
import pydantic

API_PREFIX = "/api/v1"

M = TypeVar("M", bound=pydantic.BaseModel)


class TransportError(Exception):
    """A request that did not produce the answer its caller needs."""


class NoAnswer(TransportError):
    def __init__(
        self,
        method: str,
        path: str,
        reason: str,
        *,
        timed_out: bool = False,
        not_connected: bool = False,
    ) -> None:
        super().__init__(f"{method} {path}: {reason}")
        self.reason = reason
        self.timed_out = timed_out
        self.not_connected = not_connected
        """Nothing listens at the URL (connection refused, unknown host)."""


class ProblemAnswer(TransportError):
    """An answer with an error status (4xx or 5xx)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} ({code})")
        self.status = status
        self.code = code
        self.detail = detail

    @property
    def server_side(self) -> bool:
        return self.status >= 500


class UnreadableAnswer(TransportError):
    pass


def _problem(response: httpx.Response) -> ProblemAnswer:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body:
        detail = body.get("detail") or body.get("title") or "request refused"
        return ProblemAnswer(response.status_code, str(body["code"]), str(detail))
    # Not the API (a proxy, another server): the status line is all there is to say.
    return ProblemAnswer(
        response.status_code, f"HTTP_{response.status_code}", response.reason_phrase or "error"
    )


class Transport:
    """The REST API at ``base_url``; pass ``client`` to reuse (or test with) your own."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | httpx.Timeout = 10.0,
        client: httpx.Client | None = None,
        verify: ssl.SSLContext | bool = True,
        token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = client if client is not None else httpx.Client(timeout=timeout, verify=verify)
        self._owns_http = client is None

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One request; its answer when the status is a success, else a TransportError.
        Query parameters set to None are left out."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(
                method,
                self.base_url + API_PREFIX + path,
                params=query,
                json=json,
                headers=self._headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.TimeoutException as exc:
            raise NoAnswer(method, path, repr(exc), timed_out=True) from None
        except httpx.ConnectError as exc:
            raise NoAnswer(method, path, repr(exc), not_connected=True) from None
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise NoAnswer(method, path, str(exc) or type(exc).__name__) from None
        if response.is_error:
            raise _problem(response)
        return response

    def call(self, answer: type[M], method: str, path: str, **kwargs: Any) -> M:
        """A request whose success answer is the contract ``answer``."""
        return parse(answer, self.send(method, path, **kwargs))

    def maybe(self, answer: type[M], method: str, path: str, **kwargs: Any) -> M | None:
        """Like ``call``, but None for 204 No Content."""
        response = self.send(method, path, **kwargs)
        return None if response.status_code == 204 else parse(answer, response)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request whose answer is any JSON (None for 204 No Content)."""
        response = self.send(method, path, **kwargs)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError:
            raise UnreadableAnswer(f"{method} {path}: the answer is not JSON") from None

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def parse(answer: type[M], response: httpx.Response) -> M:
    try:
        return answer.model_validate_json(response.content)
    except pydantic.ValidationError as exc:
        raise UnreadableAnswer(
            f"{response.request.method} {response.request.url.path}: the answer is not a"
            f" {answer.__name__} ({exc.error_count()} errors, first: {exc.errors()[0]['msg']})"
        ) from None
