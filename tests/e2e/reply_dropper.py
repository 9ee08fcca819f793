"""An HTTP/1.1 proxy that forwards requests to the backend and can lose their replies.

The backend commits the request, then the proxy hangs up instead of relaying the
answer: what a client timeout, a proxy reset or a backend killed after COMMIT looks
like to the worker.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable
from typing import BinaryIO

Drop = Callable[[str, str], bool]
"""(method, path) -> whether to lose this reply."""


class ReplyDropper:
    def __init__(self, upstream_port: int, drop: Drop) -> None:
        self.upstream_port = upstream_port
        self.drop = drop
        self.dropped: list[str] = []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.rfile, self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ReplyDropper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _serve(self, client: BinaryIO, client_socket: socket.socket) -> None:
        while (request := _read_message(client)) is not None:
            method, path = request.split(b" ", 2)[:2]
            reply = self._forward(request)
            if self.drop(method.decode(), path.decode()):
                self.dropped.append(f"{method.decode()} {path.decode()}")
                return  # committed upstream, but the client never hears of it
            client_socket.sendall(reply)

    def _forward(self, request: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
            upstream.sendall(request)
            with upstream.makefile("rb") as replies:
                reply = _read_message(replies)
        assert reply is not None, "the backend hung up"
        return reply


def _read_message(stream: BinaryIO) -> bytes | None:
    """One HTTP/1.1 message with a sized (or empty) body; None at the end of the stream."""
    head = b""
    while (line := stream.readline()) not in (b"\r\n", b""):
        head += line
    if not head:
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        assert name.strip().lower() != b"transfer-encoding", "only sized bodies are relayed"
    return head + b"\r\n" + stream.read(length)
