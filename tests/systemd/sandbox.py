"""A throwaway system booted with a real systemd as PID 1 of new namespaces.

The root file system is a tmpfs built by ``sandbox-init.sh`` (the host's ``/usr`` under a
writable overlay, a copy of ``/etc`` and of dpkg's database), so packages can be
installed into it without touching the host. systemd gets its own PID, mount, cgroup,
UTS, IPC and network namespaces and a cgroup of its own under ours. It is driven from
outside with ``nsenter`` and stopped by SIGKILL to its PID 1, which takes every process
of the namespace with it. Its files are reachable from the host at ``/proc/<pid>/root``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

from tests.helpers.wait import wait_until

HERE = Path(__file__).resolve().parent
INIT = HERE / "sandbox-init.sh"
NAMESPACES = ("--pid", "--mount", "--cgroup", "--uts", "--ipc", "--net")
TOOLS = ("unshare", "nsenter", "pivot_root", "mount", "dpkg")
SYSTEMD = Path("/lib/systemd/systemd")
BOOT_TIMEOUT = 60.0
COMMAND_TIMEOUT = 120.0

# What commands run in the sandbox see: nothing of the test process's environment.
ENVIRONMENT = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "SYSTEMD_COLORS": "0",
    "SYSTEMD_PAGER": "",
}

# Host PIDs of the `unshare` processes of live sandboxes; see tests/systemd/conftest.py.
LIVE: set[int] = set()

_PR_SET_PDEATHSIG = 1


def unavailable_reason() -> str | None:
    """Why a sandbox cannot be booted on this machine, or None if it can."""
    if os.geteuid() != 0:
        return "needs root: the sandbox is built with unshare, mount and pivot_root"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    if not SYSTEMD.exists():
        return f"systemd is not installed ({SYSTEMD} missing)"
    if _cgroup2_mount() is None:
        return "no cgroup2 file system mounted; systemd in the sandbox needs one"
    probe_cgroup = _own_cgroup() / f"watchd-sandbox-probe-{uuid.uuid4().hex[:12]}"
    try:
        probe_cgroup.mkdir()
        probe_cgroup.rmdir()
    except OSError as error:
        return f"cannot create a cgroup for the sandbox under {probe_cgroup.parent}: {error}"
    probe = subprocess.run(
        ["unshare", *NAMESPACES, "--fork", "--propagation", "private", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"unshare of new namespaces is not permitted here: {probe.stderr.strip()}"
    probe = subprocess.run(
        ["nsenter", "-t", str(os.getpid()), "-m", "-p", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"nsenter is not permitted here: {probe.stderr.strip()}"
    return None


class Sandbox:
    """A booted sandbox. Use :meth:`boot`, then :meth:`shutdown` (always)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.console = workdir / "console.log"
        self.mountpoint = workdir / "root"
        self.cgroup = _own_cgroup() / f"watchd-sandbox-{uuid.uuid4().hex[:12]}"
        self.process: subprocess.Popen[bytes] | None = None
        self.pid = 0  # host PID of the sandbox's systemd
        self.pid_namespace = ""

    @classmethod
    def boot(cls, workdir: Path) -> Sandbox:
        sandbox = cls(workdir)
        try:
            sandbox._start()
            sandbox._wait_booted()
        except BaseException:
            sandbox.shutdown()
            raise
        return sandbox

    # ---- life cycle -----------------------------------------------------------------

    def _start(self) -> None:
        self.mountpoint.mkdir(parents=True)
        self.cgroup.mkdir()
        with open(self.console, "wb") as console:
            # The shell joins the sandbox's cgroup, then becomes unshare, whose cgroup
            # namespace is rooted there. --kill-child and the parent-death signal end the
            # sandbox even if this test process dies without cleaning up.
            self.process = subprocess.Popen(
                [
                    "sh",
                    "-c",
                    'echo $$ > "$0/cgroup.procs" && exec "$@"',
                    str(self.cgroup),
                    "unshare",
                    *NAMESPACES,
                    "--kill-child",
                    "--propagation",
                    "private",
                    str(INIT),
                    str(self.mountpoint),
                ],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                env=ENVIRONMENT,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (only calls prctl)
            )
        LIVE.add(self.process.pid)
        pid = wait_until(self._systemd_pid, "the sandbox's systemd to start", BOOT_TIMEOUT)
        assert pid is not None
        self.pid = pid
        self.pid_namespace = os.readlink(f"/proc/{self.pid}/ns/pid")

    def _systemd_pid(self) -> int | None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the sandbox did not boot:\n{self.console_text()}")
        unshare = self.process.pid
        try:
            children = Path(f"/proc/{unshare}/task/{unshare}/children").read_text().split()
            pid = int(children[0])
            exe = os.readlink(f"/proc/{pid}/exe")
        except (OSError, IndexError):
            return None
        return pid if exe.endswith("/systemd") else None

    def _wait_booted(self) -> None:
        def booted() -> bool:
            result = self.run("systemctl", "is-system-running", "--wait", check=False)
            return result.stdout.strip() in ("running", "degraded")

        try:
            wait_until(booted, "the sandbox's systemd to finish booting", BOOT_TIMEOUT, 0.1)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.console_text()}") from None

    def shutdown(self) -> None:
        """Kill PID 1, and with it the whole sandbox; check that nothing of it is left."""
        try:
            if self.process is not None:
                if self.pid:
                    # unshare reaps its child, the sandbox's PID 1, and exits.
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
                else:
                    self.process.kill()  # systemd never started; --kill-child ends the rest
                self.process.wait(30)
                LIVE.discard(self.process.pid)
            if self.pid_namespace:
                wait_until(self._gone, "every process of the sandbox to be gone", 30)
        finally:
            if self.cgroup.exists():
                wait_until(self._remove_cgroups, f"{self.cgroup} to be removed", 30, 0.05)
            with contextlib.suppress(OSError):
                self.mountpoint.rmdir()

    def _gone(self) -> bool:
        """True once no process of the sandbox's PID namespace is left. Reaps any that
        ended up as our zombies: this process may be a child subreaper (watchd is one)."""
        left = _pids_in_namespace(self.pid_namespace)
        for pid in left:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        return not left

    def _remove_cgroups(self) -> bool:
        """Remove the sandbox's cgroup tree, deepest first; False while some are still busy."""
        for directory, _, _ in os.walk(self.cgroup, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        return not self.cgroup.exists()

    def console_text(self) -> str:
        try:
            text = self.console.read_text(errors="replace")
        except OSError:
            text = ""
        return f"--- sandbox console ---\n{text[-4000:]}"

    # ---- driving it -----------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The sandbox's / as the host sees it."""
        return Path(f"/proc/{self.pid}/root")

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def run(
        self, *argv: str, check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run *argv* in the sandbox's namespaces, as root."""
        command = ["nsenter", "-t", str(self.pid), "-m", "-p", "-u", "-i", "-n", "-C", *argv]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=ENVIRONMENT,
            cwd="/",
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("systemctl", "--no-pager", *args, check=check)

    def show(self, unit: str, prop: str) -> str:
        return self.systemctl("show", "--value", "-p", prop, unit).stdout.rstrip("\n")

    def journal_cursor(self) -> str:
        """Where the journal ends now: pass it to :meth:`journal` as *after*."""
        result = self.run("journalctl", "-n", "1", "-o", "json")
        lines = result.stdout.splitlines()
        cursor: str = json.loads(lines[-1])["__CURSOR"] if lines else ""
        return cursor

    def journal(
        self,
        after: str = "",
        unit: str | None = None,
        identifier: str | None = None,
        priority: int | None = None,
    ) -> str:
        """The messages logged after cursor *after*, one a line: those of *unit* (by its
        processes or by systemd about it), of *identifier*, of *priority* or more urgent.

        The filtering is done here: `journalctl --after-cursor` with matches skips the first
        matching entry when the cursor's own entry does not match.
        """
        since = [f"--after-cursor={after}"] if after else []
        output = self.run("journalctl", "--no-pager", "-o", "json", *since).stdout
        messages = []
        for line in output.splitlines():
            entry = json.loads(line)
            units = {entry.get(key) for key in ("_SYSTEMD_UNIT", "UNIT", "OBJECT_SYSTEMD_UNIT")}
            if unit is not None and unit not in units:
                continue
            if identifier is not None and entry.get("SYSLOG_IDENTIFIER") != identifier:
                continue
            if priority is not None and int(entry.get("PRIORITY", 6)) > priority:
                continue
            messages.append(_text(entry.get("MESSAGE", "")))
        return "".join(f"{message}\n" for message in messages)

    def alive(self, pid: int) -> bool:
        """Whether process *pid* (a PID of the sandbox) exists and is not a zombie."""
        try:
            stat = self.path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] != "Z"

    def write(self, inside: str, text: str) -> Path:
        path = self.path(inside)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


def _text(message: str | list[int] | None) -> str:
    """A journal MESSAGE field: a string, or a list of byte values when not UTF-8."""
    if isinstance(message, list):
        return bytes(message).decode("utf-8", "replace")
    return message or ""


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _cgroup2_mount() -> Path | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        if fields[separator + 1] == "cgroup2":
            return Path(fields[4])
    return None


def _own_cgroup() -> Path:
    mount = _cgroup2_mount()
    assert mount is not None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return mount / line[3:].lstrip("/")
    raise AssertionError("this process is in no cgroup2 cgroup")


def _pids_in_namespace(namespace: str) -> Sequence[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry.name}/ns/pid") == namespace:
                    found.append(int(entry.name))
    return found
