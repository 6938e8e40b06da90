"""watchd's own stderr, written without ever blocking the event loop.

A stderr nobody reads (a stalled pipe, a journald that stopped reading, a terminal held
with Ctrl-S) must not freeze every job, the control socket and the watchdog pings. Lines
that cannot be written at once wait in a bounded backlog, written as the descriptor takes
them; past the bound they are dropped and counted, and once the backlog is out the count
is written as a line of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import select
import socket
import stat
import threading
import time
from collections.abc import Callable

# Enough for a burst of many thousand lines; a stall longer than that costs lines, not memory.
BACKLOG_LIMIT = 1024 * 1024


def dropped_report(count: int) -> bytes:
    return f"watchd: dropped {count} log line{'s' if count != 1 else ''}\n".encode()


class _Target:
    """Where the bytes go: write() returns how many were taken, raises BlockingIOError."""

    def __init__(self, fd: int, restore_flags: int | None = None, owned: bool = False) -> None:
        self.fd = fd
        self._restore_flags = restore_flags
        self._owned = owned

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return os.write(self.fd, data)

    def close(self) -> None:
        if self._owned:
            os.close(self.fd)
        elif self._restore_flags is not None:
            with contextlib.suppress(OSError):
                fcntl.fcntl(self.fd, fcntl.F_SETFL, self._restore_flags)


class _SocketTarget(_Target):
    """A socket (journald's stream): MSG_DONTWAIT per call leaves the descriptor's flags
    alone for anyone else who shares it."""

    def __init__(self, fd: int) -> None:
        super().__init__(fd)
        self._socket = socket.socket(fileno=os.dup(fd))

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self._socket.send(data, socket.MSG_DONTWAIT)

    def close(self) -> None:
        self._socket.close()


def _nonblocking_target(fd: int) -> _Target:
    """A non-blocking way to write to *fd* that leaves other holders of it unaffected."""
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return _Target(fd)  # a regular file never says "would block"
    if stat.S_ISSOCK(mode):
        return _SocketTarget(fd)
    # A pipe, FIFO or terminal: a fresh open file description of the same object, made
    # non-blocking, so the shell or the parent sharing fd 2 does not see O_NONBLOCK.
    try:
        own = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        return _Target(fd, restore_flags=flags)
    return _Target(own, owned=True)


class LogWriter:
    """Bounded, non-blocking writer of whole lines to one descriptor; thread-safe.

    Writes from the event loop's thread arm a writable callback on that loop for the
    backlog; writes from other threads hand that to the loop. Without a loop the backlog
    goes out with the next write, or at :meth:`close`.
    """

    def __init__(
        self,
        fd: int,
        limit: int = BACKLOG_LIMIT,
        report: Callable[[int], bytes] = dropped_report,
    ) -> None:
        self._target = _nonblocking_target(fd)
        self._limit = limit
        self._report = report
        self._lock = threading.Lock()
        self._backlog = bytearray()
        self._dropped = 0
        self._broken = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._armed = False

    @property
    def dropped(self) -> int:
        """Lines dropped and not yet reported."""
        return self._dropped

    def write(self, line: bytes) -> None:
        """Write *line* now if the descriptor takes it, else keep it or drop it; never wait."""
        loop = _running_loop()
        with self._lock:
            if loop is not None and loop is not self._loop:
                self._disarm()
                self._loop, self._loop_thread = loop, threading.get_ident()
            if self._broken:
                return
            if self._backlog or self._dropped:
                self._flush()
            if self._backlog or self._dropped:
                self._keep(line)
            else:
                self._backlog += line
                self._flush()
            if self._backlog:
                self._arm()

    def _keep(self, line: bytes) -> None:
        # Once a line is lost, later ones are too until the backlog is out and the count
        # written: the report then stands exactly where the lines are missing.
        if self._dropped or len(self._backlog) + len(line) > self._limit:
            self._dropped += 1
        else:
            self._backlog += line

    def _flush(self) -> None:
        """Write as much of the backlog as the descriptor takes (lock held); then, with
        nothing left, the count of what was dropped."""
        while self._backlog or self._dropped:
            if not self._backlog:
                self._backlog += self._report(self._dropped)
                self._dropped = 0
            try:
                written = self._target.write(self._backlog)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except OSError as error:
                # EPIPE, EIO...: nobody will ever read this; stop trying.
                self._broken = error.errno in (errno.EPIPE, errno.EIO, errno.EBADF)
                self._backlog.clear()
                return
            del self._backlog[:written]

    def _arm(self) -> None:
        """Have the loop write the backlog once the descriptor is writable (lock held)."""
        loop = self._loop
        if loop is None or self._armed or loop.is_closed():
            return
        self._armed = True
        if threading.get_ident() == self._loop_thread:
            loop.add_writer(self._target.fd, self._on_writable)
        else:
            try:
                loop.call_soon_threadsafe(self._arm_on_loop)
            except RuntimeError:  # the loop closed meanwhile
                self._armed = False

    def _arm_on_loop(self) -> None:
        with self._lock:
            if self._backlog or self._dropped:
                assert self._loop is not None
                self._loop.add_writer(self._target.fd, self._on_writable)
            else:
                self._armed = False

    def _on_writable(self) -> None:
        with self._lock:
            self._flush()
            if not (self._backlog or self._dropped) or self._broken:
                self._disarm()

    def _disarm(self) -> None:
        if self._armed and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_writer(self._target.fd)
        self._armed = False

    def close(self, timeout: float = 1.0) -> None:
        """Give the backlog up to *timeout* seconds to go out, then let it go."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._disarm()
            self._loop = None
            while (self._backlog or self._dropped) and not self._broken:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                poller = select.poll()
                poller.register(self._target.fd, select.POLLOUT)
                poller.poll(left * 1000)
                self._flush()
            self._backlog.clear()
            self._target.close()
            self._broken = True


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
