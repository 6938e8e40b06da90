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
    READY_TIMEOUT = "ready-timeout"  # not ready within ready_timeout
    HEALTH = "health"  # failed its health check ``retries`` times in a row
    WATCHDOG = "watchdog"  # its WATCHDOG=1 pings stopped


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


@dataclass(frozen=True)
class Ready:
    """The child waited on (the new one, during an overlap) is ready: READY=1 or a probe
    that passed."""

    detail: str = "ready"


@dataclass(frozen=True)
class ReadyTimeout:
    """The ready timer fired: the child waited on was not ready within ready_timeout."""


@dataclass(frozen=True)
class SuccessorSpawned:
    """The new child of an overlap runs beside the old one."""

    pid: int


@dataclass(frozen=True)
class SuccessorSpawnFailed:
    error: str


@dataclass(frozen=True)
class SuccessorExited:
    """The new child of an overlap ended before it took over."""

    returncode: int
    exec_error: str | None = None


@dataclass(frozen=True)
class HealthFailed:
    """The serving child failed its health check ``retries`` times in a row."""

    detail: str


@dataclass(frozen=True)
class WatchdogPing:
    """The serving child sent WATCHDOG=1."""


@dataclass(frozen=True)
class WatchdogExpired:
    """The watchdog timer fired: no WATCHDOG=1 within the job's ``watchdog`` interval."""


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
    | Ready
    | ReadyTimeout
    | SuccessorSpawned
    | SuccessorSpawnFailed
    | SuccessorExited
    | HealthFailed
    | WatchdogPing
    | WatchdogExpired
)

# ---- actions ------------------------------------------------------------------------


class Timer(StrEnum):
    DEBOUNCE = "debounce"
    BACKOFF = "backoff"
    READY = "ready"  # ready_timeout of the child waited on
    WATCHDOG = "watchdog"  # the serving child's next WATCHDOG=1 is due

    def fired(self) -> Input:
        """The input the driver feeds back when this timer goes off."""
        return _FIRED[self]()


@dataclass(frozen=True)
class Spawn:
    """Start the child; the driver answers with :class:`Spawned` or :class:`SpawnFailed`."""


@dataclass(frozen=True)
class SpawnSuccessor:
    """Start a new child beside the running one (an overlap restart); the driver answers
    with :class:`SuccessorSpawned` or :class:`SuccessorSpawnFailed`."""


@dataclass(frozen=True)
class AwaitReady:
    """Find out when child *pid* is ready: probe it, or listen for its READY=1 (which the
    notify socket does anyway); the driver feeds back :class:`Ready`."""

    pid: int


@dataclass(frozen=True)
class HandOver:
    """The new child is ready: it becomes the job's child, and the old one is stopped with
    ``signal`` (SIGKILL after ``timeout``) while the new one serves."""

    signal: signal.Signals
    timeout: float


@dataclass(frozen=True)
class DropSuccessor:
    """The new child of an overlap is not wanted: stop it; the old one keeps serving."""

    signal: signal.Signals
    timeout: float


@dataclass(frozen=True)
class Promote:
    """The old child ended during an overlap: the new one is the job's child from now."""


@dataclass(frozen=True)
class WatchHealth:
    """Check the health of child *pid*, every ``interval``, for as long as it serves."""

    pid: int


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
    | SpawnSuccessor
    | AwaitReady
    | HandOver
    | DropSuccessor
    | Promote
    | WatchHealth
    | StopChild
    | SignalChild
    | RunBeforeRestart
    | CancelBeforeRestart
    | SetTimer
    | CancelTimer
    | Notice
)


_FIRED: dict[Timer, type[DebounceDue | BackoffElapsed | ReadyTimeout | WatchdogExpired]] = {
    Timer.DEBOUNCE: DebounceDue,
    Timer.BACKOFF: BackoffElapsed,
    Timer.READY: ReadyTimeout,
    Timer.WATCHDOG: WatchdogExpired,
}


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
