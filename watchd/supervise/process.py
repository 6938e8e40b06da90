"""Child processes: spawn in their own session through the exec shim, observe exit through
a pidfd, stop the whole tree (every process of the child's cgroup when it has one, else its
process group). Mechanism only; when to do any of it is the job's business."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import os
import pwd
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from watchd.config.model import FileOutput, KillMode, LogOutput, NullOutput, Output
from watchd.supervise import shim
from watchd.supervise.cgroup import Cgroup
from watchd.supervise.output import LineReader, open_output

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

SHIM_SOURCE = Path(shim.__file__).read_text()
_SHIM_STEPS = {
    "cgroup": "cannot join the cgroup",
    "user": "cannot switch user",
    "pdeathsig": "cannot set the parent-death signal",
    "fds": "cannot pass sockets",
}


@dataclass(frozen=True)
class SpawnSpec:
    argv: tuple[str, ...]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    group: str | None = None
    output: Output = field(default_factory=LogOutput)  # LogOutput: lines go to on_line
    cgroup: Path | None = None  # a cgroup directory the child joins before exec
    # Sent to the child by the kernel if watchd dies (PR_SET_PDEATHSIG): only the direct
    # child gets it, not what that child forked away.
    death_signal: signal.Signals | None = signal.SIGKILL
    fds: tuple[int, ...] = ()  # become 3, 4, … with LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID
    fd_names: tuple[str, ...] = ()
    pid_env: tuple[str, ...] = ()  # variables set to the child's own PID (WATCHDOG_PID)
    kill_mode: KillMode = KillMode.GROUP  # who gets the stop signal


def child_environment(extra: Mapping[str, str], user: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in PRIVATE_ENV}
    if user is not None:
        entry = pwd.getpwnam(user)
        env.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)
    env.update(extra)
    return env


class ChildProcess:
    """A running child, leader of its own session and process group, and alone in its
    cgroup (with what it forks) when it has one."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        reader: LineReader | None,
        status: int,
        program: str,
        cgroup: Cgroup | None = None,
        *,
        kill_mode: KillMode = KillMode.GROUP,
    ) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.cgroup = cgroup
        self.kill_mode = kill_mode
        self._reader = reader
        loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = loop.create_future()
        self._kill_timer: asyncio.TimerHandle | None = None
        OWN_PIDS.add(self.pid)
        self._pidfd = os.pidfd_open(self.pid)
        loop.add_reader(self._pidfd, self._on_pidfd_readable)
        # The shim's report: end-of-file once exec succeeded, else what failed.
        self._status = status
        self._status_bytes = b""
        self._program = program
        self._execed: asyncio.Future[OSError | None] = loop.create_future()
        loop.add_reader(status, self._on_status_readable)
        self.exec_error: OSError | None = None

    def _on_status_readable(self) -> None:
        try:
            data = os.read(self._status, 4096)
        except BlockingIOError:
            return
        if data:
            self._status_bytes += data
            return
        asyncio.get_running_loop().remove_reader(self._status)
        os.close(self._status)
        self._execed.set_result(_shim_error(self._status_bytes, self._program))

    async def execed(self) -> OSError | None:
        """Wait until the shim has exec'd the program (None) or failed to (the error)."""
        return await asyncio.shield(self._execed)

    @classmethod
    def spawn(cls, spec: SpawnSpec, on_line: Callable[[str, float], None]) -> ChildProcess:
        """Start the child; raise ``OSError`` (e.g. command not found) if it cannot start.

        A failure after the fork (exec, joining the cgroup) is known only later:
        :attr:`exec_error` once :meth:`finish` returns.
        """
        env = child_environment(spec.env, spec.user)
        _check_cwd(spec.cwd)
        _check_command(spec.argv[0], env.get("PATH", os.defpath), spec.cwd)
        stdout: int
        log_file = None
        match spec.output:
            case LogOutput():
                stdout = subprocess.PIPE
            case NullOutput():
                stdout = subprocess.DEVNULL
            case FileOutput(path):
                log_file = stdout = open_output(path)  # handed to the child, closed below
        status_read, status_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    "-c",
                    SHIM_SOURCE,
                    *_shim_options(spec, status_write),
                    "--",
                    *spec.argv,
                ],
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                pass_fds=(status_write, *spec.fds),
            )
        except BaseException:
            os.close(status_read)
            raise
        finally:
            os.close(status_write)
            if log_file is not None:
                os.close(log_file)
        reader = None
        if popen.stdout is not None:
            reader = LineReader(popen.stdout, on_line)
        cgroup = None if spec.cgroup is None else Cgroup(spec.cgroup, frozenset())
        return cls(popen, reader, status_read, spec.argv[0], cgroup, kill_mode=spec.kill_mode)

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

    @property
    def returncode(self) -> int | None:
        """The leader's return code once it has exited (negative: killed by a signal)."""
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        """Wait for the leader to exit; return its returncode (negative: killed by signal)."""
        return await asyncio.shield(self._exited)

    def signal_group(self, sig: signal.Signals) -> None:
        """*sig* to the child's process group and, when it has one, to its whole cgroup
        (which holds what left the group: a daemon that forked twice and called setsid)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        if self.cgroup is not None:
            self.cgroup.signal_all(sig)

    def kill_all(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill()

    def signal_leader(self, sig: signal.Signals) -> None:
        if not self._exited.done():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def begin_stop(self, sig: signal.Signals, timeout: float) -> None:
        """Send *sig* now (to the whole tree, or in mixed kill mode to the leader alone),
        and SIGKILL to the whole tree after *timeout*."""
        send = self.signal_leader if self.kill_mode is KillMode.MIXED else self.signal_group
        send(sig)
        if sig is not signal.SIGCONT:
            # A stopped process would never act on the signal.
            send(signal.SIGCONT)
        if self._kill_timer is None:
            loop = asyncio.get_running_loop()
            self._kill_timer = loop.call_later(timeout, self.kill_all)

    def group_alive(self) -> bool:
        """True while any process of the tree is left (zombies aside)."""
        if self.cgroup is not None and self.cgroup.populated():
            return True
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    async def finish(self, stop_signal: signal.Signals, stop_timeout: float) -> int:
        """After the leader exits: make sure its tree is gone too, and its output read.

        Stragglers (grandchildren the leader left behind) get the same treatment as a
        stop: *stop_signal*, then SIGKILL after *stop_timeout*; in mixed kill mode,
        SIGKILL at once.
        """
        returncode = await self.wait()
        self.exec_error = await self.execed()
        if self.group_alive():
            if self.kill_mode is KillMode.MIXED:
                self.kill_all()
            else:
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


def _shim_options(spec: SpawnSpec, status: int) -> list[str]:
    options = [f"status={status}"]
    if spec.cgroup is not None:
        options.append(f"cgroup={spec.cgroup / 'cgroup.procs'}")
    if spec.user is not None or spec.group is not None:
        uid = None if spec.user is None else pwd.getpwnam(spec.user).pw_uid
        gid = None if spec.user is None else pwd.getpwnam(spec.user).pw_gid
        if spec.group is not None:
            gid = grp.getgrnam(spec.group).gr_gid
        groups = _supplementary_groups(spec.user, spec.group)
        if groups is not None:
            options.append("groups=" + ",".join(map(str, groups)))
        if gid is not None:
            options.append(f"gid={gid}")
        if uid is not None:
            options.append(f"uid={uid}")
    if spec.death_signal is not None:
        options += [f"pdeathsig={int(spec.death_signal)}", f"ppid={os.getpid()}"]
    if spec.fds:
        options += ["fds=" + ",".join(map(str, spec.fds)), "fdnames=" + ":".join(spec.fd_names)]
    if spec.pid_env:
        options.append("pidenv=" + ",".join(spec.pid_env))
    return options


def _shim_error(report: bytes, program: str) -> OSError | None:
    """The shim's ``STEP NUL ERRNO NUL FILENAME`` as the OSError it stood for."""
    if not report:
        return None
    step, number, filename = report.decode(errors="replace").split("\0", 2)
    code = int(number)
    reason = os.strerror(code) if code else "failed"
    if step == "exec":
        return OSError(code, reason, filename or program)
    return OSError(code, f"{_SHIM_STEPS.get(step, step)}: {reason}", filename or None)


def _check_cwd(cwd: Path | None) -> None:
    """A working directory that is not one, named as such (not as a bare path)."""
    if cwd is None:
        return
    try:
        is_dir = stat.S_ISDIR(os.stat(cwd).st_mode)
    except OSError as error:
        raise OSError(error.errno, f"working directory {cwd}: {error.strerror}") from None
    if not is_dir:
        raise OSError(errno.ENOTDIR, f"working directory {cwd}: {os.strerror(errno.ENOTDIR)}")


def _check_command(program: str, path: str, cwd: Path | None) -> None:
    """Report a command that cannot be found now, as exec would, rather than from the shim."""
    if "/" in program:
        candidates = [Path(cwd or ".") / program]
    else:
        candidates = [Path(directory or ".") / program for directory in path.split(":")]
    if not any(candidate.is_file() for candidate in candidates):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
