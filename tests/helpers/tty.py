"""A full-screen program on a real pseudo-terminal, typed into as a person would."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time
from collections.abc import Sequence
from pathlib import Path

from tests.helpers.wait import DEFAULT_TIMEOUT


def type_into(
    argv: Sequence[str],
    cwd: Path,
    steps: Sequence[tuple[bytes, bytes]],
    timeout: float = DEFAULT_TIMEOUT,
) -> bytes:
    """Run *argv* on a 24x80 terminal; for each ``(keys, shown)`` step, type *keys*, then
    wait until the screen output so far contains *shown* (``b""``: nothing to wait for).
    Returns all it printed, once it has exited with status 0."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal, fds 0-2
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
            os.chdir(cwd)
            os.execvpe(argv[0], list(argv), {**os.environ, "TERM": "vt100"})
        finally:
            os._exit(127)
    screen = b""
    try:
        for keys, shown in steps:
            if keys:
                os.write(fd, keys)
            screen = _read_until(fd, screen, shown, timeout)
        _read_until(fd, screen, None, timeout)  # to the end: the program has exited
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 0, (status, screen[-500:])
        return screen
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


def _read_until(fd: int, screen: bytes, shown: bytes | None, timeout: float) -> bytes:
    """Read the program's output until *shown* appears in it (None: until it ends)."""
    deadline = time.monotonic() + timeout
    while shown is None or shown not in screen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {shown!r}; screen: {screen[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the program closed the terminal (it has exited)
            data = b""
        if not data:
            if shown is None:
                return screen
            raise AssertionError(f"exited before showing {shown!r}; screen: {screen[-500:]!r}")
        screen += data
    return screen


class Terminal:
    """A program on a real 24x80 pseudo-terminal, its output read as it comes."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal, fds 0-2
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
                os.execvpe(argv[0], list(argv), {**env, "TERM": "xterm"})
            finally:
                os._exit(127)
        self.screen = b""  # all it printed so far

    def read_until(
        self, shown: bytes, count: int = 1, since: int = 0, timeout: float = DEFAULT_TIMEOUT
    ) -> bytes:
        """Read until *shown* has appeared *count* times in the output from byte *since*
        on; return all the output."""
        deadline = time.monotonic() + timeout
        while self.screen.count(shown, since) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {shown!r}: {self.screen[-800:]!r}")
            if select.select([self.fd], [], [], left)[0]:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:  # EIO: the program has closed the terminal
                    data = b""
                if not data:
                    raise AssertionError(f"exited before {shown!r}: {self.screen[-800:]!r}")
                self.screen += data
        return self.screen

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Read to the end of its output and return its exit status."""
        deadline = time.monotonic() + timeout
        while self.pid:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                raise AssertionError(f"still running: {self.screen[-800:]!r}")
            if select.select([self.fd], [], [], 0.05)[0]:
                with contextlib.suppress(OSError):  # EIO: it has closed the terminal
                    self.screen += os.read(self.fd, 65536)
        raise AssertionError("waited for twice")

    def close(self) -> None:
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = 0
        os.close(self.fd)
