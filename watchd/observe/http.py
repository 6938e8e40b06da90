"""``metrics.listen``: ``GET /metrics`` over HTTP on the daemon's event loop.

A scrape is small and rare, so this is a minimal HTTP/1.1 server (one request per
connection) rather than prometheus_client's own, which serves from a thread. Requests
are bounded in size, time and number, like the control socket's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

log = logging.getLogger("watchd.metrics")

MAX_HEAD = 8 * 1024  # bytes of request line and headers
READ_TIMEOUT = 5.0  # seconds for the request to arrive
WRITE_TIMEOUT = 10.0  # seconds for the client to take the answer
MAX_CLIENTS = 16  # at once; more are closed unanswered

Render = Callable[[], tuple[bytes, str]]  # body, content type


class MetricsServer:
    def __init__(self, host: str, port: int, render: Render) -> None:
        self.host = host
        self.port = port
        self._render = render
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the port the kernel chose, for port 0)."""
        assert self._server is not None
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    async def start(self) -> None:
        """Listen; raises OSError (address in use, permission) for the caller to report."""
        host = self.host or None  # every address
        family = socket.AF_INET6 if ":" in self.host else socket.AF_UNSPEC
        self._server = await asyncio.start_server(
            self._accept, host, self.port, family=family, limit=MAX_HEAD, reuse_address=True
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._clients) >= MAX_CLIENTS:
            writer.transport.abort()
            return
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._clients.add(task)
        task.add_done_callback(self._clients.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body, content_type, head_only = await self._answer(reader)
            header = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(header.encode() + (b"" if head_only else body))
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        except (ConnectionError, TimeoutError):
            pass
        except Exception:
            log.exception("metrics: could not answer a request")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), WRITE_TIMEOUT)

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[str, bytes, str, bool]:
        text = "text/plain; charset=utf-8"
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            return "400 Bad Request", b"incomplete or oversized request\n", text, False
        method, _, rest = head.decode("latin-1").partition(" ")
        target = rest.partition(" ")[0].partition("?")[0]
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", b"only GET and HEAD\n", text, False
        if target != "/metrics":
            return "404 Not Found", b"watchd serves its metrics at /metrics\n", text, False
        body, content_type = self._render()
        return "200 OK", body, content_type, method == "HEAD"
