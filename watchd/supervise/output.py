"""Child output: split a pipe into lines on the event loop, keep the last lines per job,
open ``output:`` files without waiting."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections import deque
from collections.abc import Callable
from typing import IO

# A line longer than this is passed on in pieces, so one runaway line cannot eat memory.
MAX_LINE = 64 * 1024


class _LineProtocol(asyncio.Protocol):
    def __init__(self, on_line: Callable[[str], None], done: asyncio.Future[None]) -> None:
        self._on_line = on_line
        self._done = done
        self._partial = bytearray()

    def data_received(self, data: bytes) -> None:
        self._partial += data
        *lines, rest = self._partial.split(b"\n")
        for line in lines:
            self._emit(line)
        while len(rest) > MAX_LINE:
            self._emit(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self._partial = bytearray(rest)

    def eof_received(self) -> bool | None:
        if self._partial:
            self._emit(self._partial)
            self._partial = bytearray()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._done.set_result(None)

    def _emit(self, raw: bytes | bytearray) -> None:
        for start in range(0, max(len(raw), 1), MAX_LINE):
            piece = bytes(raw[start : start + MAX_LINE]).rstrip(b"\r")
            self._on_line(piece.decode("utf-8", errors="replace"))


class LineReader:
    """Reads a child's output pipe without blocking the loop or using a thread."""

    def __init__(self, pipe: IO[bytes], on_line: Callable[[str], None]) -> None:
        loop = asyncio.get_running_loop()
        self._done: asyncio.Future[None] = loop.create_future()
        self._transport: asyncio.BaseTransport | None = None
        self._task = loop.create_task(self._connect(pipe, on_line))

    async def _connect(self, pipe: IO[bytes], on_line: Callable[[str], None]) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.connect_read_pipe(
            lambda: _LineProtocol(on_line, self._done), pipe
        )

    async def drained(self, timeout: float) -> None:
        """Wait (at most *timeout*) for the writer side to close; then stop reading."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._done), timeout)
        await self._task
        if self._transport is not None:
            self._transport.close()


class OutputBuffer:
    """The last lines of a job's output, for ``watchctl logs``, with live followers."""

    def __init__(self, max_lines: int) -> None:
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._followers: list[Callable[[str], None]] = []

    def append(self, line: str) -> None:
        self._lines.append(line)
        for follower in list(self._followers):
            follower(line)

    def tail(self, count: int | None = None) -> list[str]:
        if count is None or count >= len(self._lines):
            return list(self._lines)
        return list(self._lines)[len(self._lines) - count :] if count > 0 else []

    def follow(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call *callback* for every new line; returns the function that stops it."""
        self._followers.append(callback)
        return lambda: self._followers.remove(callback) if callback in self._followers else None


class OutputNotOpened(OSError):
    """A job's ``output:`` file cannot be opened; the message says why."""


def open_output(path: str) -> int:
    """Open a job's ``output:`` file for appending, without ever waiting.

    A FIFO with no reader would block an ordinary open (and with it the event loop):
    opened non-blocking it fails at once instead, and the job fails to start, saying so.
    The descriptor handed to the child is blocking again: how the child waits for its
    reader is its own business.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as error:
        if error.errno == errno.ENXIO:
            raise OutputNotOpened(
                error.errno, f"output {path} is a FIFO (or socket) that nobody reads"
            ) from None
        raise OutputNotOpened(error.errno, f"output {path}: {error.strerror}") from None
    os.set_blocking(fd, True)
    return fd
