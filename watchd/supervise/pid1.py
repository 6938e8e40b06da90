"""What watchd does as PID 1 of a PID namespace (a container's init): reap everything,
stop what its jobs left behind, and exit with a status that says how the jobs stopped.

The kernel never delivers a signal to PID 1 that it has no handler for, re-parents every
orphan of the namespace to it, and kills everything left when it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterable
from types import FrameType

log = logging.getLogger("watchd")

LEFTOVER_POLL = 0.05


def _processes(count: int) -> str:
    return f"{count} process{'' if count == 1 else 'es'}"


def is_init() -> bool:
    return os.getpid() == 1


def proc_is_foreign() -> bool:
    """True when /proc is another PID namespace's (a container started without its own
    /proc): the orphan reaper finds children there, and would find none of ours."""
    try:
        return int(os.readlink("/proc/self")) != os.getpid()
    except (OSError, ValueError):
        return True


def stop_before_start() -> None:
    """As PID 1, SIGTERM and SIGINT are lost until watchd handles them: until its event
    loop takes them over, they end it at once (no job has started yet)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        sys.exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)


def stop_status(ends: Iterable[tuple[int | None, signal.Signals]]) -> int:
    """watchd's exit status after a stop, from each job's (return code, stop_signal): the
    return code of the child that was running when the stop came (None if none was).

    0 when every child stopped cleanly: exited 0, or ended by its stop signal (killed by
    it, or exited 128+N as shells and the JVM do), or killed after its stop_timeout (as
    configured). Otherwise the first other end, as a shell reports it: N, or 128+S.
    """
    for returncode, stop_signal in ends:
        if returncode is None or returncode in (0, -stop_signal, 128 + stop_signal):
            continue
        if returncode == -signal.SIGKILL:
            continue
        return 128 - returncode if returncode < 0 else returncode
    return 0


def _others() -> list[int]:
    """Every live process of the namespace but watchd (zombies are the reaper's): watchd's
    children and what entered the namespace from outside (`docker exec`, nsenter)."""
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(name))
        except OSError:
            continue
    return found


async def end_leftovers(grace: float) -> None:
    """SIGTERM every process still in the namespace once the jobs have stopped (daemons
    that escaped their job, visitors), SIGKILL what is left after *grace* seconds. The
    orphan reaper reaps those that are watchd's children as they go."""
    left = _others()
    if not left:
        return
    log.info("%s left after the jobs stopped: sending SIGTERM", _processes(len(left)))
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while _others() and loop.time() < deadline:
        await asyncio.sleep(LEFTOVER_POLL)
    left = _others()
    if left:
        log.warning("%s still left after %gs: sending SIGKILL", _processes(len(left)), grace)
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
        while _others():
            await asyncio.sleep(LEFTOVER_POLL)


def reap_all() -> None:
    """Reap every exited child: as PID 1, watchd's last act (nothing of its own is left)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
