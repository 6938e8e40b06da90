"""Adopt and reap orphans: grandchildren whose parent died are re-parented to watchd.

As a child subreaper, watchd inherits the orphans of its jobs instead of PID 1, so a
job's stragglers can be waited for and never linger as zombies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal

PR_SET_CHILD_SUBREAPER = 36

log = logging.getLogger("watchd")


def become_subreaper() -> bool:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log.debug("cannot become a child subreaper: %s", os.strerror(ctypes.get_errno()))
        return False
    return True


def _children() -> list[int]:
    """Our direct children, as the kernel lists them for the main thread."""
    pid = os.getpid()
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(word) for word in listing.read().split()]
    except OSError:
        return []


def reap_orphans(own: set[int]) -> None:
    """Reap exited children that are not ours to wait for (not in *own*)."""
    for pid in _children():
        if pid in own:
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


class OrphanReaper:
    """Reaps adopted orphans whenever SIGCHLD arrives; *own* is the set of PIDs that
    their spawner waits for itself (through their pidfd)."""

    def __init__(self, own: set[int]) -> None:
        self._own = own
        self._loop = asyncio.get_running_loop()
        self._loop.add_signal_handler(signal.SIGCHLD, reap_orphans, own)

    def close(self) -> None:
        self._loop.remove_signal_handler(signal.SIGCHLD)
