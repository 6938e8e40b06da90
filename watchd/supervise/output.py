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
# At most this much of one child's output is handled per turn of the event loop: a child
# flooding its pipe then costs the loop a few milliseconds between its other work (control
# requests, timers, other jobs), not the hundreds that a 256 KiB read of short lines takes.
READ_CHUNK = 16 * 1024


class _LineSplitter:
    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._on_line = on_line
        self._partial = bytearray()

    def feed(self, data: bytes) -> None:
        self._partial += data
        *lines, rest = self._partial.split(b"\n")
        for line in lines:
            self._emit(line)
        while len(rest) > MAX_LINE:
            self._emit(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self._partial = bytearray(rest)

    def end(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = bytearray()

    def _emit(self, raw: bytes | bytearray) -> None:
        for start in range(0, max(len(raw), 1), MAX_LINE):
            piece = bytes(raw[start : start + MAX_LINE]).rstrip(b"\r")
            self._on_line(piece.decode("utf-8", errors="replace"))


class LineReader:
    """Reads a child's output pipe on the event loop, READ_CHUNK bytes a turn, no thread."""

    def __init__(self, pipe: IO[bytes], on_line: Callable[[str], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._pipe = pipe
        self._fd = pipe.fileno()
        self._lines = _LineSplitter(on_line)
        self._done: asyncio.Future[None] = self._loop.create_future()
        os.set_blocking(self._fd, False)
        self._loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self._lines.feed(data)
            return
        self._lines.end()
        self._close()

    def _close(self) -> None:
        if self._done.done():
            return
        self._loop.remove_reader(self._fd)
        self._pipe.close()
        self._done.set_result(None)

    async def drained(self, timeout: float) -> None:
        """Wait (at most *timeout*) for the writer side to close; then stop reading."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._done), timeout)
        self._close()


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
