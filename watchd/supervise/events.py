"""What a job is told (inputs) and what it asks the driver to do (actions)."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import StrEnum

# ---- inputs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    kind: str = "manual"  # "manual" | "config" (kinds of last_trigger)
    detail: str = "start requested"


@dataclass(frozen=True)
class Stop:
    detail: str = "stop requested"


@dataclass(frozen=True)
class Restart:
    kind: str = "manual"  # "manual" | "config"
    detail: str = "restart requested"


@dataclass(frozen=True)
class ChangeSeen:
    path: str


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


@dataclass(frozen=True)
class BeforeRestartDone:
    ok: bool
    detail: str


class Timer(StrEnum):
    DEBOUNCE = "debounce"
    BACKOFF = "backoff"


@dataclass(frozen=True)
class TimerFired:
    timer: Timer


Input = (
    Start
    | Stop
    | Restart
    | ChangeSeen
    | Spawned
    | SpawnFailed
    | Exited
    | BeforeRestartDone
    | TimerFired
)

# ---- actions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Spawn:
    pass


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
    pass


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

    level: str  # "info" | "warning" | "error"
    message: str


Action = Spawn | StopChild | SignalChild | RunBeforeRestart | SetTimer | CancelTimer | Notice


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"
