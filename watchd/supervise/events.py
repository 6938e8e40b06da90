"""What a job is told (inputs) and what it asks the driver to do (actions)."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import StrEnum


class TriggerKind(StrEnum):
    """Why a job last (re)started or stopped: ``last_trigger.kind`` in status."""

    CHANGE = "change"
    EXIT = "exit"
    MANUAL = "manual"
    CONFIG = "config"
    OOM = "oom-killed"  # the kernel's OOM killer ended the child (its cgroup's memory limit)


class Level(StrEnum):
    """How loud a :class:`Notice` is in the daemon's log."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


# ---- inputs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    kind: TriggerKind = TriggerKind.MANUAL  # MANUAL or CONFIG
    detail: str = "start requested"


@dataclass(frozen=True)
class Stop:
    detail: str = "stop requested"


@dataclass(frozen=True)
class Restart:
    kind: TriggerKind = TriggerKind.MANUAL  # MANUAL or CONFIG
    detail: str = "restart requested"


@dataclass(frozen=True)
class ChangeSeen:
    path: str


@dataclass(frozen=True)
class DebounceDue:
    """The debounce timer fired: the changes seen may have settled."""


@dataclass(frozen=True)
class BackoffElapsed:
    """The backoff timer fired: time to try the child again."""


@dataclass(frozen=True)
class Spawned:
    pid: int


@dataclass(frozen=True)
class SpawnFailed:
    error: str


@dataclass(frozen=True)
class Exited:
    """The child ended and its process group is gone."""

    returncode: int  # negative: killed by that signal (subprocess convention)
    # Set when the child never ran the command: the exec after the fork failed.
    exec_error: str | None = None
    oom_killed: bool = False  # the OOM killer killed a process of the child's cgroup


@dataclass(frozen=True)
class BeforeRestartDone:
    ok: bool
    detail: str


Input = (
    Start
    | Stop
    | Restart
    | ChangeSeen
    | DebounceDue
    | BackoffElapsed
    | Spawned
    | SpawnFailed
    | Exited
    | BeforeRestartDone
)

# ---- actions ------------------------------------------------------------------------


class Timer(StrEnum):
    DEBOUNCE = "debounce"
    BACKOFF = "backoff"

    def fired(self) -> Input:
        """The input the driver feeds back when this timer goes off."""
        return DebounceDue() if self is Timer.DEBOUNCE else BackoffElapsed()


@dataclass(frozen=True)
class Spawn:
    """Start the child; the driver answers with :class:`Spawned` or :class:`SpawnFailed`."""


@dataclass(frozen=True)
class StopChild:
    """Send ``signal`` to the child's process group; SIGKILL it after ``timeout``."""

    signal: signal.Signals
    timeout: float


@dataclass(frozen=True)
class SignalChild:
    signal: signal.Signals


@dataclass(frozen=True)
class RunBeforeRestart:
    """Run the before_restart step; the driver answers with :class:`BeforeRestartDone`."""


@dataclass(frozen=True)
class CancelBeforeRestart:
    """Stop the before_restart step under way, if any; its result is not wanted."""


@dataclass(frozen=True)
class SetTimer:
    timer: Timer
    at: float  # monotonic


@dataclass(frozen=True)
class CancelTimer:
    timer: Timer


@dataclass(frozen=True)
class Notice:
    """Something worth a line in the daemon's log."""

    level: Level
    message: str


Action = (
    Spawn
    | StopChild
    | SignalChild
    | RunBeforeRestart
    | CancelBeforeRestart
    | SetTimer
    | CancelTimer
    | Notice
)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


@dataclass(frozen=True)
class Moment:
    """When an input is handled: ``now`` (monotonic) times intervals, ``wall`` (epoch
    seconds) is for display only."""

    now: float
    wall: float
