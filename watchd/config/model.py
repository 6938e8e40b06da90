"""The configuration as frozen dataclasses.

Field names are the YAML key names (``stop_timeout`` in the file is
``JobConfig.stop_timeout`` here and ``stop_timeout`` in the docs).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from watchd.paths import default_socket
from watchd.watch.base import Backend


class RestartPolicy(StrEnum):
    ON_FAILURE = "on-failure"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True)
class WatchConfig:
    """What a job watches. ``paths`` are absolute (resolved against the job file's folder)."""

    paths: tuple[Path, ...] = ()
    include: tuple[str, ...] = ()  # gitignore-style; empty means "everything"
    exclude: tuple[str, ...] = ()  # gitignore-style
    gitignore: bool = False  # also honour .gitignore files found in the roots
    # Ignore editor temp/swap files and VCS/cache dirs (SPEC §9); a job may turn it off.
    default_excludes: bool = True
    # Hold changes while a git or Mercurial operation runs in a watched root (SPEC §13).
    vcs: bool = True
    backend: Backend = Backend.AUTO
    poll_interval: float = 1.0


class ChangeAction(StrEnum):
    RESTART = "restart"
    SIGNAL = "signal"  # send OnChange.signal
    NONE = "none"


@dataclass(frozen=True)
class OnChange:
    """What a file change does: restart the child, send it a signal, or nothing."""

    action: ChangeAction = ChangeAction.RESTART
    signal: signal.Signals | None = None  # with ChangeAction.SIGNAL


@dataclass(frozen=True)
class LogOutput:
    """The child's lines go to the daemon's log and the job's buffer (``watchctl logs``)."""


@dataclass(frozen=True)
class NullOutput:
    """The child's output is discarded."""


@dataclass(frozen=True)
class FileOutput:
    """The child's output is appended to a file watchd opens and hands to it."""

    path: Path


Output = LogOutput | NullOutput | FileOutput


class KillMode(StrEnum):
    """Who gets ``stop_signal``; SIGKILL after ``stop_timeout`` always goes to everything."""

    GROUP = "group"  # every process of the job (its cgroup, else its process group)
    # The child alone; what it leaves once it has exited is killed. For programs whose
    # master stops its own workers, such as gunicorn (its own unit says KillMode=mixed).
    MIXED = "mixed"


class RestartMode(StrEnum):
    STOP_FIRST = "stop-first"  # the old child is gone before the new one starts
    OVERLAP = "overlap"  # the new child starts, gets ready, then the old one stops


@dataclass(frozen=True)
class SocketConfig:
    """One socket watchd binds for a job and holds across its restarts (SPEC §10)."""

    kind: str  # "tcp" | "unix"
    name: str  # LISTEN_FDNAMES entry
    host: str = ""  # tcp: "" means every address
    port: int = 0  # tcp: 0 lets the kernel choose (shown in status)
    path: Path | None = None  # unix
    mode: int | None = None  # unix: permission bits of the socket file
    backlog: int = 1024

    def describe(self) -> str:
        if self.kind == "unix":
            return str(self.path)
        return tcp_address(self.host, self.port)


def tcp_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Probe:
    """A check run from outside the child: connect, an HTTP GET, or a command."""

    kind: str  # "tcp" | "http" | "exec"
    host: str = ""  # tcp
    port: int = 0  # tcp
    url: str = ""  # http
    command: tuple[str, ...] = ()  # exec

    def describe(self) -> str:
        if self.kind == "tcp":
            return f"tcp {tcp_address(self.host, self.port)}"
        if self.kind == "http":
            return f"http {self.url}"
        return f"exec {' '.join(self.command)}"


@dataclass(frozen=True)
class Readiness:
    """When a started child counts as ready: at once, on READY=1, or when a probe passes."""

    kind: str = "none"  # "none" | "notify" | "probe"
    probe: Probe | None = None


@dataclass(frozen=True)
class HealthCheck:
    probe: Probe
    interval: float = 10.0
    timeout: float = 2.0
    retries: int = 3


@dataclass(frozen=True)
class Limits:
    """What a job's cgroup may use (SPEC §11); None leaves that resource unlimited."""

    memory: int | None = None  # bytes -> memory.max
    tasks: int | None = None  # processes and threads -> pids.max
    cpu: float | None = None  # share of one CPU (0.5 = 50%) -> cpu.max
    # (key, "FILE:LINE:COL") for each limit set: where a warning about it points.
    where: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def items(self) -> list[tuple[str, int | float]]:
        found = (("memory", self.memory), ("tasks", self.tasks), ("cpu", self.cpu))
        return [(key, value) for key, value in found if value is not None]

    def position(self, key: str) -> str:
        return dict(self.where).get(key, "")


@dataclass(frozen=True)
class JobConfig:
    name: str
    command: tuple[str, ...]
    source: Path  # the file the job was defined in
    shell: bool = False  # run ``command`` (a string) through /bin/sh -c
    cwd: Path | None = None
    env: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs, hashable
    user: str | None = None
    group: str | None = None
    watch: WatchConfig = field(default_factory=WatchConfig)
    debounce: float = 0.1
    debounce_max: float = 2.0
    on_change: OnChange = field(default_factory=OnChange)
    before_restart: tuple[str, ...] | None = None
    before_restart_timeout: float = 60.0
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 10.0
    kill_mode: KillMode = KillMode.GROUP
    restart: RestartPolicy = RestartPolicy.ON_FAILURE
    restart_exit_codes: tuple[int, ...] = (3,)
    backoff_initial: float = 0.1
    backoff_max: float = 30.0
    backoff_reset_after: float = 10.0
    start_limit_burst: int = 5
    start_limit_interval: float = 10.0
    output: Output = field(default_factory=LogOutput)
    log_lines: int = 1000  # recent output lines kept for ``watchctl logs``
    sockets: tuple[SocketConfig, ...] = ()
    ready: Readiness = field(default_factory=Readiness)
    ready_timeout: float = 30.0
    restart_mode: RestartMode = RestartMode.STOP_FIRST
    health: HealthCheck | None = None
    watchdog: float | None = None  # WATCHDOG_USEC for the child; restarted when pings stop
    limits: Limits = field(default_factory=Limits)

    def same_definition(self, other: JobConfig) -> bool:
        """True when *other* would run the same child the same way (``source`` aside)."""
        return self == other or _without_source(self) == _without_source(other)


def _without_source(job: JobConfig) -> tuple[object, ...]:
    return tuple(getattr(job, name) for name in job.__dataclass_fields__ if name != "source")


@dataclass(frozen=True)
class ControlConfig:
    socket: Path = field(default_factory=default_socket)  # root: /run/watchd/control.sock
    group: str | None = None  # members may change things via watchctl
    mode: int = 0o660


@dataclass(frozen=True)
class MetricsConfig:
    # Where GET /metrics is served: (host, port), host "" for every address; None: nowhere.
    listen: tuple[str, int] | None = None


@dataclass(frozen=True)
class DaemonConfig:
    path: Path  # the main file
    control: ControlConfig = field(default_factory=ControlConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    log_level: str = "info"
    jobs_dir: Path | None = None  # absolute; it need not exist (yet)
    jobs: tuple[JobConfig, ...] = ()
    files: tuple[Path, ...] = ()  # every file read, for reload-on-edit
