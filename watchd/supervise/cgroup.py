"""cgroup v2: where the hierarchy is, whether watchd may write it, and one cgroup per job.

Mechanism only. The layout, below the cgroup watchd found itself in (its *home*)::

    HOME/watchd-INSTANCE/          this daemon's subtree; INSTANCE is stable for one
                                   control socket, so a restarted watchd finds it again
    HOME/watchd-INSTANCE/daemon/   watchd itself, only when it was alone in HOME (a
                                   systemd service with Delegate=yes): the kernel
                                   enables controllers only for cgroups without processes
    HOME/watchd-INSTANCE/job-NAME/ one job: its limits and its use of memory and CPU
    HOME/watchd-INSTANCE/job-NAME/run-N/
                                   one child (or before_restart step) and everything it
                                   forks; two children of one job never share one
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from watchd.config.model import Limits

log = logging.getLogger("watchd")

# The controllers a job's limits and status use; "cpu.stat" (usage) needs none.
WANTED_CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_USEC = 100_000
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]")


def find_cgroup2_mount(mountinfo: str) -> Path | None:
    """The first cgroup2 mount point in a /proc/PID/mountinfo text (hybrid hosts: ``unified``)."""
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        if after.split(" ", 1)[0] == "cgroup2":
            fields = before.split()
            if len(fields) >= 5 and fields[3] == "/":
                return Path(_unescape(fields[4]))
    return None


def own_cgroup(proc_cgroup: str) -> str | None:
    """The v2 path in a /proc/PID/cgroup text (the ``0::`` line), or None."""
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            path = line[3:]
            return None if path.endswith(" (deleted)") else path
    return None


def _unescape(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), text)


def instance_name(key: str) -> str:
    return "watchd-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def available_controllers() -> tuple[frozenset[str], str | None]:
    """Controllers the v2 hierarchy offers below watchd's own cgroup, or why there are none."""
    try:
        mount = find_cgroup2_mount(Path("/proc/self/mountinfo").read_text())
        own = own_cgroup(Path("/proc/self/cgroup").read_text())
    except OSError as error:
        return frozenset(), f"cannot read /proc: {error.strerror}"
    if mount is None or own is None:
        return frozenset(), "no cgroup v2 hierarchy"
    return _controllers(mount / own.lstrip("/")), None


def _controllers(directory: Path) -> frozenset[str]:
    try:
        return frozenset((directory / "cgroup.controllers").read_text().split())
    except OSError:
        return frozenset()


@dataclass
class Hierarchy:
    """This daemon's subtree, set up by :func:`setup` when it may write one."""

    root: Path  # HOME/watchd-INSTANCE
    home: Path
    mount: Path  # where the cgroup2 file system is mounted
    controllers: frozenset[str]  # enabled for every job cgroup
    moved: bool  # watchd moved itself into root/daemon
    _lock: int = field(repr=False, default=-1)

    def job(self, name: str) -> Cgroup:
        return Cgroup(self.root / ("job-" + _UNSAFE.sub("_", name)), self.controllers)

    def holds(self, pid: int, cgroup: Cgroup) -> bool:
        """Whether process *pid* is in *cgroup* or below it (False once it is gone)."""
        try:
            path = own_cgroup(Path(f"/proc/{pid}/cgroup").read_text())
        except OSError:
            return False
        if path is None:
            return False
        where = self.mount / path.lstrip("/")
        return where == cgroup.path or cgroup.path in where.parents

    def shown(self, cgroup: Cgroup) -> str:
        """*cgroup* as /proc/PID/cgroup names it (its path below the cgroup2 mount)."""
        return "/" + str(cgroup.path.relative_to(self.mount))

    @property
    def shown_root(self) -> str:
        return "/" + str(self.root.relative_to(self.mount))

    def leftovers(self) -> list[Cgroup]:
        """Job cgroups a previous watchd of this instance left behind."""
        found = []
        with contextlib.suppress(OSError):
            for entry in sorted(self.root.iterdir()):
                if entry.is_dir() and entry.name.startswith("job-"):
                    found.append(Cgroup(entry, self.controllers))
        return found

    def close(self) -> None:
        """Remove what is empty; watchd goes back home when it moved (best effort)."""
        for cgroup in self.leftovers():
            cgroup.remove()
        if self.moved:
            with contextlib.suppress(OSError):
                _write(self.home / "cgroup.procs", "0")
                (self.root / "daemon").rmdir()
        with contextlib.suppress(OSError):
            self.root.rmdir()
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1


def setup(instance_key: str) -> Hierarchy | str:
    """This daemon's subtree when it can write one, else the reason it cannot."""
    if os.geteuid() != 0:
        return "not running as root"
    try:
        mount = find_cgroup2_mount(Path("/proc/self/mountinfo").read_text())
        own = own_cgroup(Path("/proc/self/cgroup").read_text())
    except OSError as error:
        return f"cannot read /proc: {error.strerror}"
    if mount is None or own is None:
        return "no cgroup v2 hierarchy"
    home = mount / own.lstrip("/")
    try:
        return _claim(mount, home, instance_name(instance_key))
    except OSError as error:
        return f"cannot write {error.filename or home}: {error.strerror}"


def _claim(mount: Path, home: Path, name: str) -> Hierarchy:
    root = home / name
    root.mkdir(exist_ok=True)
    lock = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        # Another live watchd owns that name (same control socket): never touch its jobs.
        os.close(lock)
        root = home / f"{name}-{os.getpid()}"
        root.mkdir()
        lock = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        moved = _leave_home_if_alone(home, root)
        controllers = _enable(home, root, moved)
    except OSError:
        os.close(lock)
        with contextlib.suppress(OSError):
            root.rmdir()
        raise
    return Hierarchy(root, home, mount, controllers, moved, lock)


def _leave_home_if_alone(home: Path, root: Path) -> bool:
    """Move into root/daemon when watchd is the only process at home (and home is not the
    hierarchy's root, which may enable controllers with processes in it)."""
    if not (home / "cgroup.type").exists():
        return False  # the root cgroup has no cgroup.type
    procs = (home / "cgroup.procs").read_text().split()
    if procs != [str(os.getpid())] or not (_controllers(home) & set(WANTED_CONTROLLERS)):
        # Also proves that watchd may move processes between home and root: the shim does.
        probe = root / "probe"
        probe.mkdir(exist_ok=True)
        probe.rmdir()
        return False
    leaf = root / "daemon"
    leaf.mkdir(exist_ok=True)
    _write(leaf / "cgroup.procs", "0")
    return True


def _enable(home: Path, root: Path, moved: bool) -> frozenset[str]:
    """Enable what the jobs need in home's and root's subtree_control, where allowed."""
    enabled: set[str] = set()
    for controller in WANTED_CONTROLLERS:
        if controller not in _controllers(home):
            continue
        try:
            if controller not in _subtree(home):
                _write(home / "cgroup.subtree_control", "+" + controller)
            if moved or controller not in _subtree(root):
                _write(root / "cgroup.subtree_control", "+" + controller)
        except OSError as error:
            log.debug("cannot enable the %s controller: %s", controller, error.strerror)
            continue
        enabled.add(controller)
    return frozenset(enabled)


def _subtree(directory: Path) -> set[str]:
    return set((directory / "cgroup.subtree_control").read_text().split())


def _write(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


LIMIT_FILES = {"memory": "memory.max", "tasks": "pids.max", "cpu": "cpu.max"}
LIMIT_CONTROLLERS = {"memory": "memory", "tasks": "pids", "cpu": "cpu"}
FREEZE_TIMEOUT = 1.0  # kernels without cgroup.kill: how long a freeze may take


@dataclass(frozen=True)
class Cgroup:
    """One cgroup directory: a job's (``job-NAME``), or one child's below it (``run-N``)."""

    path: Path
    controllers: frozenset[str]

    def child(self, name: str) -> Cgroup:
        return Cgroup(self.path / name, frozenset())

    def create(self) -> None:
        self.path.mkdir(exist_ok=True)

    def apply(self, limits: Limits) -> list[tuple[str, str]]:
        """Write the limits; return (key, why) for each limit that is not enforced."""
        warnings = []
        for key, value in limits.items():
            controller = LIMIT_CONTROLLERS[key]
            if controller not in self.controllers:
                warnings.append((key, not_enforced(controller)))
                continue
            text = (
                f"{round(value * CPU_PERIOD_USEC)} {CPU_PERIOD_USEC}"
                if key == "cpu"
                else str(int(value))
            )
            try:
                _write(self.path / LIMIT_FILES[key], text)
            except OSError as error:
                warnings.append((key, f"not enforced: {error.strerror}"))
        return warnings

    def pids(self) -> list[int]:
        """Every process in this cgroup and those below it."""
        found = []
        for directory, _, _ in os.walk(self.path):
            try:
                found += [int(pid) for pid in Path(directory, "cgroup.procs").read_text().split()]
            except OSError:
                continue
        return found

    def populated(self) -> bool:
        """True while a live process is in this cgroup or below (zombies do not count)."""
        try:
            events = (self.path / "cgroup.events").read_text()
        except FileNotFoundError:
            return False
        return "populated 1" in events

    def signal_all(self, sig: signal.Signals) -> None:
        """*sig* to every process in the cgroup (new ones forked meanwhile get the kill)."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def kill(self) -> None:
        """SIGKILL to everything in the cgroup at once, forks in flight included."""
        try:
            _write(self.path / "cgroup.kill", "1")
        except FileNotFoundError:
            if self.path.is_dir():
                self.kill_frozen()  # kernels before 5.14 have no cgroup.kill
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.EACCES, errno.EINVAL):
                raise
            self.kill_frozen()

    def kill_frozen(self) -> None:
        """What cgroup.kill does, on older kernels: freeze the tree, so that nothing in it
        can fork while it is killed, SIGKILL every process, thaw (a fatal signal is taken
        by a frozen process too)."""
        frozen = False
        with contextlib.suppress(OSError):
            _write(self.path / "cgroup.freeze", "1")
            frozen = True
            deadline = time.monotonic() + FREEZE_TIMEOUT
            while "frozen 1" not in (self.path / "cgroup.events").read_text():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.001)
        self.signal_all(signal.SIGKILL)
        if frozen:
            with contextlib.suppress(OSError):
                _write(self.path / "cgroup.freeze", "0")

    def memory_bytes(self) -> int | None:
        return _number(self.path / "memory.current")

    def cpu_seconds(self) -> float | None:
        usage = _keyed(self.path / "cpu.stat", "usage_usec")
        return None if usage is None else usage / 1e6

    def oom_kills(self) -> int | None:
        return _keyed(self.path / "memory.events", "oom_kill")

    def remove(self) -> None:
        """Remove this cgroup and those below it, where they are empty (best effort)."""
        for directory, _, _ in sorted(os.walk(self.path), key=lambda entry: -len(entry[0])):
            with contextlib.suppress(OSError):
                os.rmdir(directory)


async def emptied(cgroup: Cgroup, timeout: float, interval: float = 0.02) -> bool:
    """Wait until no live process is left in *cgroup*; False if that took over *timeout*."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while cgroup.populated():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


def not_enforced(controller: str) -> str:
    return f"not enforced: the cgroup v2 hierarchy gives watchd no {controller} controller"


def _number(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _keyed(path: Path, key: str) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return None
