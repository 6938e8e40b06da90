"""Child processes: spawn in their own session, observe exit through a pidfd, stop whole
process groups. Mechanism only; when to do any of it is the job's business."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from watchd.supervise.output import LineReader

# Variables a child must not inherit: they describe watchd's own contract with systemd.
PRIVATE_ENV = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
)

GROUP_POLL_INTERVAL = 0.02  # only while waiting for a group's stragglers to go

# PIDs of the children spawned here, which wait for their own exit through a pidfd;
# the orphan reaper must leave them alone.
OWN_PIDS: set[int] = set()


@dataclass(frozen=True)
class SpawnSpec:
    argv: tuple[str, ...]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    group: str | None = None
    output: str = "log"  # "log": lines go to on_line; "null"; or a file path to append to


def child_environment(extra: Mapping[str, str], user: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in PRIVATE_ENV}
    if user is not None:
        entry = pwd.getpwnam(user)
        env.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)
    env.update(extra)
    return env


class ChildProcess:
    """A running child, leader of its own session and process group."""

    def __init__(self, popen: subprocess.Popen[bytes], reader: LineReader | None) -> None:
        self._popen = popen
        self.pid = popen.pid
        self._reader = reader
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._kill_timer: asyncio.TimerHandle | None = None
        OWN_PIDS.add(self.pid)
        self._pidfd = os.pidfd_open(self.pid)
        asyncio.get_running_loop().add_reader(self._pidfd, self._on_pidfd_readable)

    @classmethod
    def spawn(cls, spec: SpawnSpec, on_line: Callable[[str], None]) -> ChildProcess:
        """Start the child; raise ``OSError`` (e.g. command not found) if it cannot start."""
        stdout: int | object
        log_file = None
        if spec.output == "log":
            stdout = subprocess.PIPE
        elif spec.output == "null":
            stdout = subprocess.DEVNULL
        else:
            log_file = open(spec.output, "ab")  # noqa: SIM115 (handed to the child, closed below)
            stdout = log_file
        try:
            popen = subprocess.Popen(
                spec.argv,
                cwd=spec.cwd,
                env=child_environment(spec.env, spec.user),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                user=spec.user,
                group=spec.group,
                extra_groups=_supplementary_groups(spec.user, spec.group),
            )
        finally:
            if log_file is not None:
                log_file.close()
        reader = None
        if popen.stdout is not None:
            reader = LineReader(popen.stdout, on_line)
        return cls(popen, reader)

    def _on_pidfd_readable(self) -> None:
        returncode = self._popen.poll()
        if returncode is None:  # spurious wake-up
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        OWN_PIDS.discard(self.pid)
        if not self._exited.done():
            self._exited.set_result(returncode)

    async def wait(self) -> int:
        """Wait for the leader to exit; return its returncode (negative: killed by signal)."""
        return await asyncio.shield(self._exited)

    def signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def signal_leader(self, sig: signal.Signals) -> None:
        if not self._exited.done():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def begin_stop(self, sig: signal.Signals, timeout: float) -> None:
        """Send *sig* to the whole group now, and SIGKILL to it after *timeout*."""
        self.signal_group(sig)
        if sig is not signal.SIGCONT:
            # A stopped process would never act on the signal.
            self.signal_group(signal.SIGCONT)
        if self._kill_timer is None:
            loop = asyncio.get_running_loop()
            self._kill_timer = loop.call_later(timeout, self.signal_group, signal.SIGKILL)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    async def finish(self, stop_signal: signal.Signals, stop_timeout: float) -> int:
        """After the leader exits: make sure its group is gone too, and its output read.

        Stragglers (grandchildren the leader left behind) get the same treatment as a
        stop: *stop_signal*, then SIGKILL after *stop_timeout*.
        """
        returncode = await self.wait()
        if self.group_alive():
            self.begin_stop(stop_signal, stop_timeout)
            while self.group_alive():
                await asyncio.sleep(GROUP_POLL_INTERVAL)
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        if self._reader is not None:
            await self._reader.drained(timeout=1.0)
        return returncode


def _supplementary_groups(user: str | None, group: str | None) -> list[int] | None:
    """The groups a login as *user* would have; None keeps watchd's (not root: can't change)."""
    if user is None or os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(user)
    gid = grp.getgrnam(group).gr_gid if group else entry.pw_gid
    return os.getgrouplist(entry.pw_name, gid)
