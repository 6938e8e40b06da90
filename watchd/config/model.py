"""The configuration as frozen dataclasses.

Field names are the YAML key names (``stop_timeout`` in the file is
``JobConfig.stop_timeout`` here and ``stop_timeout`` in the docs).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Backend(StrEnum):
    AUTO = "auto"
    INOTIFY = "inotify"
    POLL = "poll"


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
    backend: Backend = Backend.AUTO
    poll_interval: float = 1.0


@dataclass(frozen=True)
class OnChange:
    """What a file change does: restart the child, send it a signal, or nothing."""

    action: str = "restart"  # "restart" | "signal" | "none"
    signal: signal.Signals | None = None

    def describe(self) -> str:
        if self.action == "signal" and self.signal is not None:
            return f"signal {self.signal.name}"
        return self.action


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
    restart: RestartPolicy = RestartPolicy.ON_FAILURE
    restart_exit_codes: tuple[int, ...] = (3,)
    backoff_initial: float = 0.1
    backoff_max: float = 30.0
    backoff_reset_after: float = 10.0
    start_limit_burst: int = 5
    start_limit_interval: float = 10.0
    output: str = "log"  # "log" (daemon log + buffer), "null", or a file path
    log_lines: int = 1000  # recent output lines kept for ``watchctl logs``

    def same_definition(self, other: JobConfig) -> bool:
        """True when *other* would run the same child the same way (``source`` aside)."""
        return self == other or _without_source(self) == _without_source(other)


def _without_source(job: JobConfig) -> tuple[object, ...]:
    return tuple(getattr(job, name) for name in job.__dataclass_fields__ if name != "source")


@dataclass(frozen=True)
class ControlConfig:
    socket: Path = Path("/run/watchd/control.sock")
    group: str | None = None  # members may change things via watchctl
    mode: int = 0o660


@dataclass(frozen=True)
class DaemonConfig:
    path: Path  # the main file
    control: ControlConfig = field(default_factory=ControlConfig)
    log_level: str = "info"
    jobs_dir: Path | None = None  # absolute; it need not exist (yet)
    jobs: tuple[JobConfig, ...] = ()
    files: tuple[Path, ...] = ()  # every file read, for reload-on-edit

    def job(self, name: str) -> JobConfig | None:
        return next((job for job in self.jobs if job.name == name), None)
