"""One job's supervision policy as a pure state machine: ``handle(input, now) -> actions``.

Everything that decides *when* a child starts, stops, backs off or fails lives here; the
driver (runner.py) only carries out the actions and reports what happened. ``now`` is a
monotonic time in seconds; ``wall`` (epoch seconds) is kept for display only.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from watchd.config.model import JobConfig, RestartPolicy
from watchd.supervise import events as ev
from watchd.supervise.states import State, check_transition
from watchd.watch.debounce import Debouncer

# A child that exits with a "restart me" code this often is treated as failing (SPEC §9).
RESTART_ME_BURST = 10
RESTART_ME_INTERVAL = 10.0
# Changed paths remembered per burst, for the "last trigger" line only.
MAX_REMEMBERED_PATHS = 100_000


@dataclass(frozen=True)
class Trigger:
    """Why the job last (re)started or stopped: shown by ``watchctl status``."""

    kind: str  # "change" | "exit" | "manual" | "config"
    detail: str
    at: float  # wall-clock seconds


class Job:
    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self.state = State.STOPPED
        self.pid: int | None = None
        self.started_at: float | None = None  # monotonic, while a child runs
        self.restarts = 0
        self.last_trigger: Trigger | None = None
        self._ever_started = False
        self._backoff = config.backoff_initial
        self._failures: deque[float] = deque()
        self._restart_me_exits: deque[float] = deque()
        self._debouncer = Debouncer(config.debounce, config.debounce_max)
        self._changed_paths: dict[str, None] = {}  # ordered set, bounded
        self._restart_queued = False  # start again once the current child is gone
        self._queued_change: Trigger | None = None  # came while a restart was under way
        self._building = False  # before_restart runs; the old child keeps running
        self._pending: Trigger | None = None  # why the restart under way happens

    # ---- public ---------------------------------------------------------------------

    def handle(self, event: ev.Input, now: float, wall: float | None = None) -> list[ev.Action]:
        wall = now if wall is None else wall
        match event:
            case ev.Start():
                return self._on_start(Trigger(event.kind, event.detail, wall))
            case ev.Stop():
                return self._on_stop(Trigger("manual", event.detail, wall))
            case ev.Restart():
                return self._on_restart(Trigger(event.kind, event.detail, wall))
            case ev.ChangeSeen():
                return self._on_change_seen(event.path, now)
            case ev.TimerFired(timer=ev.Timer.DEBOUNCE):
                return self._on_debounce_due(now, wall)
            case ev.TimerFired(timer=ev.Timer.BACKOFF):
                return self._on_backoff_elapsed()
            case ev.Spawned():
                return self._on_spawned(event.pid, now)
            case ev.SpawnFailed():
                return self._on_spawn_failed(event.error, now, wall)
            case ev.Exited():
                return self._on_exited(event.returncode, now, wall)
            case ev.BeforeRestartDone():
                return self._on_before_restart_done(event.ok, event.detail)
        raise TypeError(f"unknown input {event!r}")

    @property
    def failures(self) -> int:
        """Failures within the current start-limit window."""
        return len(self._failures)

    @property
    def settled(self) -> bool:
        """Running, with no change waiting out its debounce and no restart queued."""
        return (
            self.state is State.RUNNING
            and not self._debouncer.pending
            and self._queued_change is None
            and not (self._building or self._restart_queued)
        )

    def uptime(self, now: float) -> float | None:
        return None if self.started_at is None else now - self.started_at

    # ---- requests -------------------------------------------------------------------

    def _on_start(self, trigger: Trigger) -> list[ev.Action]:
        if self.state in (State.RUNNING, State.STARTING):
            return []
        if self.state is State.STOPPING:
            self._restart_queued = True
            self._pending = trigger
            return []
        self._reset_failures()
        return self._spawn(trigger)

    def _on_stop(self, trigger: Trigger) -> list[ev.Action]:
        self._restart_queued = self._building = False
        self._queued_change = None
        self._debouncer.reset()
        actions: list[ev.Action] = [ev.CancelTimer(ev.Timer.DEBOUNCE)]
        if self.state in (State.RUNNING, State.STARTING):
            self.last_trigger = trigger
            return actions + self._begin_stop()
        if self.state is State.STOPPING:
            return actions
        if self.state is not State.STOPPED:
            self.last_trigger = trigger
            self._set_state(State.STOPPED)
            actions.append(ev.CancelTimer(ev.Timer.BACKOFF))
        return actions

    def _on_restart(self, trigger: Trigger) -> list[ev.Action]:
        self._reset_failures()
        if self.state is State.RUNNING:
            self._restart_queued = True
            self._pending = trigger
            return self._begin_stop()
        if self.state in (State.STOPPING, State.STARTING):
            self._restart_queued = True
            self._pending = trigger
            return []
        return self._wake(trigger)

    # ---- changes --------------------------------------------------------------------

    def _on_change_seen(self, path: str, now: float) -> list[ev.Action]:
        if self.config.on_change.action == "none" or self.state is State.STOPPED:
            return []
        self._debouncer.add(now)
        # Most recent last: after an atomic save the trigger names the saved file, not the temp.
        if (
            self._changed_paths.pop(path, 0) is None
            or len(self._changed_paths) < MAX_REMEMBERED_PATHS
        ):
            self._changed_paths[path] = None
        deadline = self._debouncer.deadline()
        assert deadline is not None
        return [ev.SetTimer(ev.Timer.DEBOUNCE, deadline)]

    def _on_debounce_due(self, now: float, wall: float) -> list[ev.Action]:
        if not self._debouncer.fire(now):
            deadline = self._debouncer.deadline()
            return [] if deadline is None else [ev.SetTimer(ev.Timer.DEBOUNCE, deadline)]
        paths, self._changed_paths = list(self._changed_paths), {}
        if self.state is State.STOPPED:
            return []
        trigger = Trigger("change", _describe_paths(paths), wall)
        if self.state in (State.BACKOFF, State.FAILED, State.EXITED):
            self._reset_failures()
            return self._wake(trigger)
        if self._building or self.state in (State.STOPPING, State.STARTING):
            self._queued_change = trigger
            return []
        return self._act_on_change(trigger)

    def _act_on_change(self, trigger: Trigger) -> list[ev.Action]:
        on_change = self.config.on_change
        if on_change.action == "signal" and on_change.signal is not None:
            self.last_trigger = trigger
            return [
                ev.SignalChild(on_change.signal),
                ev.Notice("info", f"{trigger.detail} changed; sending {on_change.signal.name}"),
            ]
        self._pending = trigger
        if self.config.before_restart:
            self._building = True
            return [ev.RunBeforeRestart()]
        self._restart_queued = True
        return [ev.Notice("info", f"{trigger.detail} changed; restarting"), *self._begin_stop()]

    def _on_before_restart_done(self, ok: bool, detail: str) -> list[ev.Action]:
        if not self._building:
            return []
        self._building = False
        if self.state is not State.RUNNING:
            return []
        if not ok:
            self._pending = None
            return [ev.Notice("error", f"before_restart failed ({detail}); keeping the old child")]
        self._restart_queued = True
        return [ev.Notice("info", "restarting after before_restart"), *self._begin_stop()]

    # ---- the child ------------------------------------------------------------------

    def _on_spawned(self, pid: int, now: float) -> list[ev.Action]:
        self.pid = pid
        self.started_at = now
        self._set_state(State.RUNNING)
        queued, self._queued_change = self._queued_change, None
        if queued is not None:
            # Changes came in while this restart was under way: exactly one more.
            return self._act_on_change(queued)
        return []

    def _on_spawn_failed(self, error: str, now: float, wall: float) -> list[ev.Action]:
        self.pid = self.started_at = None  # exec may fail after the fork was reported
        self.last_trigger = Trigger("exit", f"failed to start: {error}", wall)
        return [ev.Notice("error", f"failed to start: {error}"), *self._after_failure(now)]

    def _on_exited(self, returncode: int, now: float, wall: float) -> list[ev.Action]:
        uptime = self.uptime(now) or 0.0
        self.pid = None
        self.started_at = None
        if uptime >= self.config.backoff_reset_after:
            self._backoff = self.config.backoff_initial
        how = ev.describe_exit(returncode)
        if self.state is State.STOPPING:
            return self._after_stop(how)
        notice = ev.Notice("info" if returncode == 0 else "warning", f"child {how}")
        self.last_trigger = Trigger("exit", how, wall)
        return [notice, *self._after_unexpected_exit(returncode, now)]

    def _after_stop(self, how: str) -> list[ev.Action]:
        if self._restart_queued:
            # A change queued during the stop still gets its own restart once the new
            # child runs (a before_restart step may not have seen that change).
            self._restart_queued = False
            return self._spawn(self._pending)
        self._queued_change = None
        self._set_state(State.STOPPED)
        return [ev.Notice("info", f"stopped ({how})")]

    def _after_unexpected_exit(self, returncode: int, now: float) -> list[ev.Action]:
        policy = self.config.restart
        if returncode in self.config.restart_exit_codes:
            if _within_burst(self._restart_me_exits, now, RESTART_ME_BURST, RESTART_ME_INTERVAL):
                return self._spawn(self.last_trigger)
            return [
                ev.Notice("warning", "restart-me exits in a tight loop; backing off"),
                *self._after_failure(now),
            ]
        if returncode == 0:
            if policy is RestartPolicy.ALWAYS:
                return self._enter_backoff(now)
            self._set_state(State.EXITED)
            return []
        if policy is RestartPolicy.NEVER:
            self._set_state(State.EXITED)
            return []
        return self._after_failure(now)

    def _after_failure(self, now: float) -> list[ev.Action]:
        burst, window = self.config.start_limit_burst, self.config.start_limit_interval
        if not _within_burst(self._failures, now, burst - 1, window):
            self._set_state(State.FAILED)
            return [
                ev.Notice(
                    "error",
                    f"failed {burst} times within {window:g}s; giving up until a file "
                    "changes or a restart is requested",
                )
            ]
        if self.config.restart is RestartPolicy.NEVER:
            self._set_state(State.EXITED)
            return []
        return self._enter_backoff(now)

    def _enter_backoff(self, now: float) -> list[ev.Action]:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self.config.backoff_max)
        self._set_state(State.BACKOFF)
        return [
            ev.Notice("info", f"restarting in {delay:g}s"),
            ev.SetTimer(ev.Timer.BACKOFF, now + delay),
        ]

    def _on_backoff_elapsed(self) -> list[ev.Action]:
        if self.state is not State.BACKOFF:
            return []
        return self._spawn(self.last_trigger)

    # ---- helpers --------------------------------------------------------------------

    def _wake(self, trigger: Trigger) -> list[ev.Action]:
        """Start a job that is down (backoff, exited, failed, stopped) at once."""
        return [ev.CancelTimer(ev.Timer.BACKOFF), *self._spawn(trigger)]

    def _spawn(self, trigger: Trigger | None) -> list[ev.Action]:
        if trigger is not None:
            self.last_trigger = trigger
        if self._ever_started:
            self.restarts += 1
        self._ever_started = True
        self._pending = None
        self._set_state(State.STARTING)
        return [ev.Spawn()]

    def _begin_stop(self) -> list[ev.Action]:
        self._set_state(State.STOPPING)
        return [ev.StopChild(self.config.stop_signal, self.config.stop_timeout)]

    def _reset_failures(self) -> None:
        self._failures.clear()
        self._restart_me_exits.clear()
        self._backoff = self.config.backoff_initial

    def _set_state(self, new: State) -> None:
        if new is not self.state:
            check_transition(self.state, new)
            self.state = new


def _within_burst(times: deque[float], now: float, burst: int, window: float) -> bool:
    """Record an occurrence at *now*; True while no more than *burst* fall within *window*."""
    times.append(now)
    while times and times[0] <= now - window:
        times.popleft()
    return len(times) <= burst


def _describe_paths(paths: list[str]) -> str:
    if not paths:
        return "files"
    if len(paths) == 1:
        return paths[0]
    return f"{paths[-1]} and {len(paths) - 1} more"
