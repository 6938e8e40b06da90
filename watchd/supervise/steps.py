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

from watchd.config.model import ChangeAction, RestartMode, RestartPolicy
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
    if job.state is S.AWAITING_READY:  # not serving yet: nothing to overlap with
        return S.RESTARTING, [*actions, *_stop_serving(job)]
    return _replace_child(job, *actions)


@step(Step.STOP)
def stop(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Stop)
    actions = _forget_changes(job)
    if job.state is S.BUILDING:
        actions.append(ev.CancelBeforeRestart())
    if job.state is S.OVERLAPPING:
        actions.append(_drop_successor(job))
    job.last_trigger = Trigger(TriggerKind.MANUAL, event.detail, at.wall)
    return S.STOPPING, [*actions, *_stop_serving(job)]


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
    if job.config.on_change.action is ChangeAction.NONE:
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
        return _replace_child(job, ev.Notice(Level.INFO, "restarting after before_restart"))
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
    if job.checks_readiness:
        return S.AWAITING_READY, _await_ready(job, event.pid, at)
    return _serving(job, at)


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
    actions += _cancel_child_timers()
    before_ready = job.state is S.AWAITING_READY
    how = _child_gone(job, event.returncode, at.now)
    if event.exec_error is not None:  # it never ran: a spawn failure
        state, more = _spawn_failed(job, event.exec_error, at)
        return state, [*actions, *more]
    level = Level.INFO if event.returncode == 0 else Level.WARNING
    kind = TriggerKind.EXIT
    if event.oom_killed and event.returncode != 0:
        kind, how = TriggerKind.OOM, f"{how} by the OOM killer (limits.memory)"
    if before_ready:
        how += " before it was ready"
        job.start_error = f"child {how}"
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


# ---- readiness, health and the watchdog -----------------------------------------------


@step(Step.BECAME_READY)
def became_ready(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Ready)
    notice = ev.Notice(Level.INFO, f"ready after {_age(job, at):.2f}s ({event.detail})")
    return _serving(job, at, ev.CancelTimer(ev.Timer.READY), notice)


@step(Step.NOT_READY)
def not_ready(job: Job, event: ev.Input, at: Moment) -> Outcome:
    reason = f"not ready within {_ready_timeout(job)}"
    job.start_error = reason
    job.last_trigger = Trigger(TriggerKind.READY_TIMEOUT, reason, at.wall)
    notice = ev.Notice(Level.ERROR, f"{reason}; stopping it: a failed start")
    return S.FAILING, [notice, *_stop_serving(job)]


@step(Step.CHECK_FAILED)
def check_failed(job: Job, event: ev.Input, at: Moment) -> Outcome:
    if isinstance(event, ev.HealthFailed):
        kind, reason = TriggerKind.HEALTH, f"health check failed: {event.detail}"
    else:
        kind, reason = TriggerKind.WATCHDOG, f"no WATCHDOG=1 within {job.config.watchdog or 0:g}s"
    actions: list[ev.Action] = []
    if job.state is S.BUILDING:
        # The change being built for is acted on once the child is gone.
        actions.append(ev.CancelBeforeRestart())
        job.follow_up, job.next_trigger = job.follow_up or job.next_trigger, None
    if job.state is S.OVERLAPPING:
        actions.append(_drop_successor(job))
        job.next_trigger = None
    job.last_trigger = Trigger(kind, reason, at.wall)
    notice = ev.Notice(Level.ERROR, f"{reason}; restarting it")
    return S.FAILING, [*actions, notice, *_stop_serving(job)]


@step(Step.PING)
def ping(job: Job, event: ev.Input, at: Moment) -> Outcome:
    return job.state, _arm_watchdog(job, at)


@step(Step.FAILED_CHILD_GONE)
def failed_child_gone(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Exited)
    notice = ev.Notice(Level.INFO, f"stopped ({_child_gone(job, event.returncode, at.now)})")
    queued, job.follow_up = job.follow_up, None
    if queued is not None:  # a change came meanwhile: it may be the fix, start at once
        job.reset_failures()
        return _spawn(job, queued, notice)
    state, actions = _after_failure(job, at.now)
    return state, [notice, *actions]


# ---- overlap restarts ----------------------------------------------------------------


@step(Step.SUCCESSOR_SPAWNED)
def successor_spawned(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.SuccessorSpawned)
    job.successor_pid, job.successor_started_at = event.pid, at.now
    if job.checks_readiness:
        return S.OVERLAPPING, _await_ready(job, event.pid, at)
    return _hand_over(job, at, "spawned")


@step(Step.HAND_OVER)
def hand_over(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Ready)
    return _hand_over(job, at, event.detail, ev.CancelTimer(ev.Timer.READY))


@step(Step.SUCCESSOR_FAILED)
def successor_failed(job: Job, event: ev.Input, at: Moment) -> Outcome:
    actions: list[ev.Action] = [ev.CancelTimer(ev.Timer.READY)]
    kind = TriggerKind.EXIT
    match event:
        case ev.SuccessorSpawnFailed(error=error) | ev.SuccessorExited(exec_error=str(error)):
            reason = f"failed to start: {error}"
        case ev.SuccessorExited(returncode=code):
            reason = f"ended ({ev.describe_exit(code)}) before it was ready"
        case _:
            kind, reason = TriggerKind.READY_TIMEOUT, f"was not ready within {_ready_timeout(job)}"
            actions.append(_drop_successor(job))
    job.successor_pid = job.successor_started_at = job.next_trigger = None
    detail = f"restart failed: the new child {reason}; pid {job.pid} keeps running"
    job.start_error = detail
    job.last_trigger = Trigger(kind, detail, at.wall)
    actions.append(ev.Notice(Level.ERROR, detail))
    queued, job.follow_up = job.follow_up, None
    if queued is None:
        return S.RUNNING, actions
    state, more = _act_on(job, queued)  # a change came meanwhile: it may be the fix
    return state, [*actions, *more]


@step(Step.PROMOTE)
def promote(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Exited)
    how = _child_gone(job, event.returncode, at.now)
    job.pid, job.started_at = job.successor_pid, job.successor_started_at
    job.successor_pid = job.successor_started_at = None
    if job.next_trigger is not None:
        job.last_trigger, job.next_trigger = job.next_trigger, None
    message = f"the old child ended ({how}) before the new one was ready; pid {job.pid} takes over"
    notice = ev.Notice(Level.WARNING, message)
    return S.AWAITING_READY, [ev.CancelTimer(ev.Timer.WATCHDOG), notice, ev.Promote()]


@step(Step.QUEUE_RESTART)
def queue_restart(job: Job, event: ev.Input, at: Moment) -> Outcome:
    assert isinstance(event, ev.Restart)
    job.reset_failures()
    job.follow_up = Trigger(event.kind, event.detail, at.wall)
    return S.OVERLAPPING, []


# ---- helpers -----------------------------------------------------------------------


def _await_ready(job: Job, pid: int, at: Moment) -> list[ev.Action]:
    deadline = at.now + job.config.ready_timeout
    return [ev.SetTimer(ev.Timer.READY, deadline), ev.AwaitReady(pid)]


def _serving(job: Job, at: Moment, *before: ev.Action) -> Outcome:
    """The job's child is ready: it serves (watched, if the job says so), unless changes
    came while it got ready: then exactly one more restart."""
    job.start_error = None
    actions = [*before, *_arm_watchdog(job, at)]
    if job.config.health is not None and job.pid is not None:
        actions.append(ev.WatchHealth(job.pid))
    queued, job.follow_up = job.follow_up, None
    if queued is None:
        return S.RUNNING, actions
    state, more = _act_on(job, queued)
    return state, [*actions, *more]


def _hand_over(job: Job, at: Moment, detail: str, *before: ev.Action) -> Outcome:
    old = job.pid
    job.pid, job.started_at = job.successor_pid, job.successor_started_at
    job.successor_pid = job.successor_started_at = None
    if job.next_trigger is not None:
        job.last_trigger, job.next_trigger = job.next_trigger, None
    config = job.config
    notice = ev.Notice(
        Level.INFO, f"pid {job.pid} is ready ({detail}); stopping the old child, pid {old}"
    )
    handover = ev.HandOver(config.stop_signal, config.stop_timeout)
    return _serving(job, at, *before, notice, handover)


def _replace_child(job: Job, *before: ev.Action) -> Outcome:
    """Restart the serving child: the new one first (overlap), or once the old is gone."""
    if job.config.restart_mode is RestartMode.OVERLAP:
        job.starts += 1
        job.start_error = None
        # SpawnSuccessor comes last: the driver answers it with an input.
        return S.OVERLAPPING, [*before, ev.SpawnSuccessor()]
    return S.RESTARTING, [*before, *_stop_serving(job)]


def _drop_successor(job: Job) -> ev.Action:
    job.successor_pid = job.successor_started_at = None
    return ev.DropSuccessor(job.config.stop_signal, job.config.stop_timeout)


def _arm_watchdog(job: Job, at: Moment) -> list[ev.Action]:
    if job.config.watchdog is None:
        return []
    return [ev.SetTimer(ev.Timer.WATCHDOG, at.now + job.config.watchdog)]


def _cancel_child_timers() -> list[ev.Action]:
    return [ev.CancelTimer(ev.Timer.READY), ev.CancelTimer(ev.Timer.WATCHDOG)]


def _stop_serving(job: Job) -> list[ev.Action]:
    """Stop the job's child; its readiness and its pings no longer matter."""
    return [*_cancel_child_timers(), _stop_child(job)]


def _age(job: Job, at: Moment) -> float:
    return job.uptime(at.now) or 0.0


def _ready_timeout(job: Job) -> str:
    return f"{job.config.ready_timeout:g}s"


def _spawn_failed(job: Job, error: str, at: Moment) -> Outcome:
    job.start_error = f"failed to start: {error}"
    job.last_trigger = Trigger(TriggerKind.EXIT, f"failed to start: {error}", at.wall)
    state, actions = _after_failure(job, at.now)
    return state, [ev.Notice(Level.ERROR, f"failed to start: {error}"), *actions]


def _spawn(job: Job, trigger: Trigger | None, *before: ev.Action) -> Outcome:
    """Ask for a child. ``Spawn`` comes last: the driver answers it with an input."""
    if trigger is not None:
        job.last_trigger = trigger
    job.starts += 1
    job.next_trigger = job.start_error = None
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
    if on_change.action is ChangeAction.SIGNAL and on_change.signal is not None:
        job.last_trigger = trigger
        notice = ev.Notice(Level.INFO, f"{trigger.detail} changed; sending {on_change.signal.name}")
        return S.RUNNING, [ev.SignalChild(on_change.signal), notice]
    job.next_trigger = trigger
    if job.config.before_restart:
        return S.BUILDING, [ev.RunBeforeRestart()]
    return _replace_child(job, ev.Notice(Level.INFO, f"{trigger.detail} changed; restarting"))


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
