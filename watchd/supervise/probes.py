"""Readiness and health probes run from outside the child: a TCP connect, an HTTP GET
that answers 2xx or 3xx, or a command that exits 0 (SPEC §10).

Each probe returns ``None`` when it passed, else a short reason. A command is run by the
caller (through the one spawn path), handed in as *run*.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import Awaitable, Callable

from watchd.config.model import Probe

RunCommand = Callable[[tuple[str, ...], float], Awaitable[str | None]]
# An answer's status line and headers are all an HTTP probe reads.
MAX_STATUS_LINE = 8192


async def check(probe: Probe, timeout: float, run: RunCommand) -> str | None:
    if probe.kind == "exec":
        return await run(probe.command, timeout)
    try:
        async with asyncio.timeout(timeout):
            if probe.kind == "tcp":
                return await _tcp(probe.host, probe.port)
            return await _http(probe.url)
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except OSError as error:
        return error.strerror or str(error) or type(error).__name__


async def _tcp(host: str, port: int) -> str | None:
    _, writer = await asyncio.open_connection(host, port)
    await _close(writer)
    return None


async def _http(url: str) -> str | None:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    reader, writer = await asyncio.open_connection(host, parts.port or 80)
    try:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: watchd\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode("latin-1", "replace"))
        await writer.drain()
        line = await reader.readline()
    finally:
        await _close(writer)
    words = line[:MAX_STATUS_LINE].decode("latin-1").split()
    if len(words) < 2 or not words[0].startswith("HTTP/") or not words[1].isdigit():
        return "no HTTP answer" if not line else f"not an HTTP answer: {line[:40]!r}"
    status = int(words[1])
    if 200 <= status < 400:
        return None
    return f"HTTP {' '.join(words[1:])}"


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
