"""What each row of the job table does: compute the actions and pick the next state.

A step may update the job's counters (failures, backoff, restarts) and the data the job
carries between states (the trigger of the start under way, the one change queued behind
a restart); it never sets ``job.state``: :meth:`Job.handle` does, once, after checking the
step's choice against the row.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from watchd.config.model import RestartPolicy
from watchd.supervise import events as ev
from watchd.supervise.events import Level, Moment, TriggerKind
from watchd.supervise.states import State, Step
from watchd.supervise.trigger import Trigger, describe_paths

if TYPE_CHECKING:
    from watchd.supervise.job import Job

S = State
Outcome = tuple[State, list[ev.Action]]
StepFunction = Callable[["Job", ev.Input, Moment], Outcome]

# A child that exits with a "restart me" code this often is treated as failing (SPEC §9).
RESTART_ME_BURST = 10
RESTART_ME_INTERVAL = 10.0

STEPS: dict[Step, StepFunction] = {}


def step(name: Step) -> Callable[[StepFunction], StepFunction]:
    def register(function: StepFunction) -> StepFunction:
        STEPS[name] = function
        return function

    return register


# ---- requests ----------------------------------------------------------------------


@step(Step.START_NOW)
def start_now(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Start | ev.Restart)
    job.reset_failures()
    return _spawn(job, Trigger(event.kind, event.detail, at.wall), ev.CancelTimer(ev.Timer.BACKOFF))


@step(Step.START_AFTER_STOP)
def start_after_stop(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Start | ev.Restart)
    if isinstance(event, ev.Restart):
        job.reset_failures()
    job.next_trigger = Trigger(event.kind, event.detail, at.wall)
    return S.RESTARTING, []


@step(Step.RESTART)
def restart(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Restart)
    job.reset_failures()
    actions: list[ev.Action] = []
    if job.state is S.BUILDING:
        # The change being built for still gets its build, once the new child runs.
        actions.append(ev.CancelBeforeRestart())
        job.follow_up = job.follow_up or job.next_trigger
    job.next_trigger = Trigger(event.kind, event.detail, at.wall)
    return S.RESTARTING, [*actions, _stop_child(job)]


@step(Step.STOP)
def stop(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Stop)
    actions = _forget_changes(job)
    if job.state is S.BUILDING:
        actions.append(ev.CancelBeforeRestart())
    job.last_trigger = Trigger(TriggerKind.MANUAL, event.detail, at.wall)
    return S.STOPPING, [*actions, _stop_child(job)]


@step(Step.STAY_DOWN)
def stay_down(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Stop)
    actions = _forget_changes(job)
    job.last_trigger = Trigger(TriggerKind.MANUAL, event.detail, at.wall)
    return S.STOPPED, [*actions, ev.CancelTimer(ev.Timer.BACKOFF)]


@step(Step.FORGET_CHANGES)
def forget_changes(job: Job, event: ev.Input, at: Moment) -> Outcome:
    return S.STOPPING, _forget_changes(job)


# ---- changes -----------------------------------------------------------------------


@step(Step.NOTE_CHANGE)
def note_change(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.ChangeSeen)
    if job.config.on_change.action == "none":
        return job.state, []
    deadline = job.burst.add(event.path, at.now)
    return job.state, [ev.SetTimer(ev.Timer.DEBOUNCE, deadline)]


@step(Step.ACT_ON_CHANGE)
def act_on_change(job: Job, event: ev.Input, at: Moment) -> Outcome:
    trigger = _settled_burst(job, at)
    if trigger is None:
        return job.state, _rearm(job)
    return _act_on(job, trigger)


@step(Step.QUEUE_CHANGE)
def queue_change(job: Job, event: ev.Input, at: Moment) -> Outcome:
    trigger = _settled_burst(job, at)
    if trigger is None:
        return job.state, _rearm(job)
    job.follow_up = trigger  # however many bursts settle meanwhile: exactly one more
    return job.state, []


@step(Step.WAKE_ON_CHANGE)
def wake_on_change(job: Job, event: ev.Input, at: Moment) -> Outcome:
    trigger = _settled_burst(job, at)
    if trigger is None:
        return job.state, _rearm(job)
    job.reset_failures()
    return _spawn(job, trigger, ev.CancelTimer(ev.Timer.BACKOFF))


@step(Step.BUILD_DONE)
def build_done(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.BeforeRestartDone)
    if event.ok:
        notice = ev.Notice(Level.INFO, "restarting after before_restart")
        return S.RESTARTING, [notice, _stop_child(job)]
    job.next_trigger = None
    notice = ev.Notice(
        Level.ERROR, f"before_restart failed ({event.detail}); keeping the old child"
    )
    queued, job.follow_up = job.follow_up, None
    if queued is None:
        return S.RUNNING, [notice]
    # A change came while the step ran: it may be the fix, so build again.
    state, actions = _act_on(job, queued)
    return state, [notice, *actions]


# ---- the child ---------------------------------------------------------------------


@step(Step.RETRY)
def retry(job: Job, event: ev.Input, at: Moment) -> Outcome:
    return _spawn(job, job.last_trigger)


@step(Step.SPAWNED)
def spawned(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Spawned)
    job.pid = event.pid
    job.started_at = at.now
    queued, job.follow_up = job.follow_up, None
    if queued is None:
        return S.RUNNING, []
    # Changes came while this start was under way: exactly one more restart.
    return _act_on(job, queued)


@step(Step.SPAWN_FAILED)
def spawn_failed(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.SpawnFailed)
    return _spawn_failed(job, event.error, at)


@step(Step.CHILD_EXITED)
def child_exited(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Exited)
    actions: list[ev.Action] = []
    if job.state is S.BUILDING:
        # The step was preparing a child that is gone; its change is acted on again once
        # a child runs.
        actions.append(ev.CancelBeforeRestart())
        job.follow_up, job.next_trigger = job.follow_up or job.next_trigger, None
    how = _child_gone(job, event.returncode, at.now)
    if event.exec_error is not None:  # it never ran: a spawn failure
        state, more = _spawn_failed(job, event.exec_error, at)
        return state, [*actions, *more]
    level = Level.INFO if event.returncode == 0 else Level.WARNING
    kind = TriggerKind.EXIT
    if event.oom_killed and event.returncode != 0:
        kind, how = TriggerKind.OOM, f"{how} by the OOM killer (limits.memory)"
    actions.append(ev.Notice(level, f"child {how}"))
    job.last_trigger = Trigger(kind, how, at.wall)
    state, more = _after_unexpected_exit(job, event.returncode, at.now)
    return state, [*actions, *more]


@step(Step.STOPPED)
def stopped(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Exited)
    how = _child_gone(job, event.returncode, at.now)
    return S.STOPPED, [ev.Notice(Level.INFO, f"stopped ({how})")]


@step(Step.RESPAWN)
def respawn(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Exited)
    _child_gone(job, event.returncode, at.now)
    # A change queued during the stop still gets its own restart once the new child runs
    # (a before_restart step may not have seen that change).
    return _spawn(job, job.next_trigger)


# ---- helpers -----------------------------------------------------------------------


def _spawn_failed(job: Job, error: str, at: Moment) -> Outcome:
    job.last_trigger = Trigger(TriggerKind.EXIT, f"failed to start: {error}", at.wall)
    state, actions = _after_failure(job, at.now)
    return state, [ev.Notice(Level.ERROR, f"failed to start: {error}"), *actions]


def _spawn(job: Job, trigger: Trigger | None, *before: ev.Action) -> Outcome:
    """Ask for a child. ``Spawn`` comes last: the driver answers it with an input."""
    if trigger is not None:
        job.last_trigger = trigger
    job.starts += 1
    job.next_trigger = None
    return S.STARTING, [*before, ev.Spawn()]


def _stop_child(job: Job) -> ev.Action:
    return ev.StopChild(job.config.stop_signal, job.config.stop_timeout)


def _forget_changes(job: Job) -> list[ev.Action]:
    job.burst.reset()
    job.follow_up = job.next_trigger = None
    return [ev.CancelTimer(ev.Timer.DEBOUNCE)]


def _settled_burst(job: Job, at: Moment) -> Trigger | None:
    paths = job.burst.take(at.now)
    return None if paths is None else Trigger(TriggerKind.CHANGE, describe_paths(paths), at.wall)


def _rearm(job: Job) -> list[ev.Action]:
    deadline = job.burst.deadline()
    return [] if deadline is None else [ev.SetTimer(ev.Timer.DEBOUNCE, deadline)]


def _act_on(job: Job, trigger: Trigger) -> Outcome:
    """A settled change reaches a running child: signal it, build, or restart it."""
    on_change = job.config.on_change
    if on_change.action == "signal" and on_change.signal is not None:
        job.last_trigger = trigger
        notice = ev.Notice(Level.INFO, f"{trigger.detail} changed; sending {on_change.signal.name}")
        return S.RUNNING, [ev.SignalChild(on_change.signal), notice]
    job.next_trigger = trigger
    if job.config.before_restart:
        return S.BUILDING, [ev.RunBeforeRestart()]
    notice = ev.Notice(Level.INFO, f"{trigger.detail} changed; restarting")
    return S.RESTARTING, [notice, _stop_child(job)]


def _child_gone(job: Job, returncode: int, now: float) -> str:
    """Forget the child; return how it ended."""
    uptime = job.uptime(now) or 0.0
    job.pid = job.started_at = None
    if uptime >= job.config.backoff_reset_after:
        job.backoff = job.config.backoff_initial
    return ev.describe_exit(returncode)


def _after_unexpected_exit(job: Job, returncode: int, now: float) -> Outcome:
    config = job.config
    if returncode in config.restart_exit_codes:
        if _within_burst(job.restart_me_exits, now, RESTART_ME_BURST, RESTART_ME_INTERVAL):
            return _spawn(job, job.last_trigger)
        state, actions = _after_failure(job, now)
        notice = ev.Notice(Level.WARNING, "restart-me exits in a tight loop; backing off")
        return state, [notice, *actions]
    if returncode == 0:
        if config.restart is RestartPolicy.ALWAYS:
            return _enter_backoff(job, now)
        return S.EXITED, []
    if config.restart is RestartPolicy.NEVER:
        return S.EXITED, []
    return _after_failure(job, now)


def _after_failure(job: Job, now: float) -> Outcome:
    burst, window = job.config.start_limit_burst, job.config.start_limit_interval
    if not _within_burst(job.failure_times, now, burst - 1, window):
        message = (
            f"failed {burst} times within {window:g}s; giving up until a file changes or a "
            "restart is requested"
        )
        return S.FAILED, [ev.Notice(Level.ERROR, message)]
    if job.config.restart is RestartPolicy.NEVER:
        return S.EXITED, []
    return _enter_backoff(job, now)


def _enter_backoff(job: Job, now: float) -> Outcome:
    delay = job.backoff
    job.backoff = min(job.backoff * 2, job.config.backoff_max)
    return S.BACKOFF, [
        ev.Notice(Level.INFO, f"restarting in {delay:g}s"),
        ev.SetTimer(ev.Timer.BACKOFF, now + delay),
    ]


def _within_burst(times: deque[float], now: float, burst: int, window: float) -> bool:
    """Record an occurrence at *now*; True while no more than *burst* fall within *window*."""
    times.append(now)
    while times and times[0] <= now - window:
        times.popleft()
    return len(times) <= burst
