"""Child output: split a pipe into lines on the event loop, keep the last lines per job,
open ``output:`` files without waiting."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

# A line longer than this is passed on in pieces, so one runaway line cannot eat memory.
MAX_LINE = 64 * 1024
# At most this much of one child's output is handled per turn of the event loop: a child
# flooding its pipe then costs the loop a few milliseconds between its other work (control
# requests, timers, other jobs), not the hundreds that a 256 KiB read of short lines takes.
READ_CHUNK = 16 * 1024


class _LineSplitter:
    def __init__(self, on_line: Callable[[str, float], None]) -> None:
        self._on_line = on_line
        self._partial = bytearray()

    def feed(self, data: bytes, at: float) -> None:
        """Split *data*, read at time *at*: one clock reading (and one float) per read."""
        self._partial += data
        *lines, rest = self._partial.split(b"\n")
        for line in lines:
            self._emit(line, at)
        while len(rest) > MAX_LINE:
            self._emit(rest[:MAX_LINE], at)
            rest = rest[MAX_LINE:]
        self._partial = bytearray(rest)

    def end(self, at: float) -> None:
        if self._partial:
            self._emit(self._partial, at)
            self._partial = bytearray()

    def _emit(self, raw: bytes | bytearray, at: float) -> None:
        for start in range(0, max(len(raw), 1), MAX_LINE):
            piece = bytes(raw[start : start + MAX_LINE]).rstrip(b"\r")
            self._on_line(piece.decode("utf-8", errors="replace"), at)


class LineReader:
    """Reads a child's output pipe on the event loop, READ_CHUNK bytes a turn, no thread;
    *on_line* gets each line and the wall-clock time it was read."""

    def __init__(self, pipe: IO[bytes], on_line: Callable[[str, float], None]) -> None:
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
            self._lines.feed(data, time.time())
            return
        self._lines.end(time.time())
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
    """The last lines of a job's output and when each was read, for ``watchctl logs``,
    with live followers."""

    def __init__(self, max_lines: int) -> None:
        self._lines: deque[str] = deque(maxlen=max_lines)
        # Beside the lines rather than in a tuple with each: the lines of one read share
        # one float, so a stamp costs a slot (8 bytes), not a tuple and a float (80).
        self._stamps: deque[float] = deque(maxlen=max_lines)
        self._followers: list[Callable[[float, str], None]] = []

    def append(self, line: str, at: float) -> None:
        self._lines.append(line)
        self._stamps.append(at)
        if self._followers:  # a copy only then: a follower may stop from its callback
            for follower in list(self._followers):
                follower(at, line)

    def tail(self, count: int | None = None) -> list[tuple[float, str]]:
        """The last *count* lines (all when None), each with the time it was read."""
        skip = 0 if count is None else max(len(self._lines) - count, 0)
        return list(itertools.islice(zip(self._stamps, self._lines, strict=True), skip, None))

    def carry_on(self, old: OutputBuffer) -> None:
        """Go on from *old*, the buffer of the same job under its last definition: its
        lines (as many as fit) and its followers, who stop through *old* as before."""
        self._lines.extend(old._lines)
        self._stamps.extend(old._stamps)
        self._followers = old._followers  # shared: a follower's stop finds itself here

    def follow(self, callback: Callable[[float, str], None]) -> Callable[[], None]:
        """Call *callback* with every new line and its time; returns the function that stops it."""
        self._followers.append(callback)
        return lambda: self._followers.remove(callback) if callback in self._followers else None


class OutputNotOpened(OSError):
    """A job's ``output:`` file cannot be opened; the message says why."""


def open_output(path: Path) -> int:
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
