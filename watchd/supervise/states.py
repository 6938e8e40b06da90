"""The job state machine's table: for each state and input, where the job goes and which
step computes the actions. Everything an input does in any state is read here.

A pair in :data:`TABLE` runs its step, which picks the next state among the row's targets
(most rows have one) and returns the actions. A pair in :data:`IGNORED` does nothing. Any
other pair raises :class:`IllegalTransition` before the job changes. The steps themselves
live in :mod:`watchd.supervise.steps`; :mod:`watchd.supervise.job` applies the table.

Adding a state is a member of :class:`State`, its word in :data:`WORDS`, and rows; adding
an input is a class in :mod:`watchd.supervise.events` and rows. A row that needs new
behaviour names a new :class:`Step`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from watchd.supervise import events as ev


class State(StrEnum):
    STOPPED = "stopped"  # no child, none wanted (every job's first state)
    STARTING = "starting"  # spawn requested; no child yet
    AWAITING_READY = "awaiting-ready"  # a child runs, not ready yet (ready_timeout runs)
    RUNNING = "running"  # a child runs (and is ready, when the job checks readiness)
    OVERLAPPING = "overlapping"  # the old child serves while a new one gets ready beside it
    BUILDING = "building"  # a child runs while before_restart prepares its replacement
    RESTARTING = "restarting"  # the child was asked to stop; a new one starts once it is gone
    STOPPING = "stopping"  # the child was asked to stop; the job stays down after
    FAILING = "failing"  # a child that failed a check is asked to stop; backoff follows
    BACKOFF = "backoff"  # the child failed; waiting before the next start
    EXITED = "exited"  # the child ended and the restart policy says stay down
    FAILED = "failed"  # the start limit was hit; waits for a change, a restart or an edit


class StatusWord(StrEnum):
    """The states a user sees (``watchctl status``, the status JSON): SPEC §4."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    BACKOFF = "backoff"
    EXITED = "exited"
    FAILED = "failed"
    STOPPED = "stopped"


S, W = State, StatusWord

WORDS: dict[State, StatusWord] = {
    S.STOPPED: W.STOPPED,
    S.STARTING: W.STARTING,
    S.AWAITING_READY: W.STARTING,
    S.RUNNING: W.RUNNING,
    S.OVERLAPPING: W.RUNNING,  # the old child keeps serving (SPEC §14)
    S.BUILDING: W.RUNNING,  # the old child keeps serving
    S.RESTARTING: W.STOPPING,  # the old child is on its way out
    S.STOPPING: W.STOPPING,
    S.FAILING: W.STOPPING,
    S.BACKOFF: W.BACKOFF,
    S.EXITED: W.EXITED,
    S.FAILED: W.FAILED,
}

# States a control request waits out before it replies (the job is between two states).
TRANSIENT = frozenset(
    {S.STARTING, S.AWAITING_READY, S.OVERLAPPING, S.RESTARTING, S.STOPPING, S.FAILING}
)
# States in which a child process exists.
WITH_CHILD = frozenset(
    {S.AWAITING_READY, S.RUNNING, S.OVERLAPPING, S.BUILDING, S.RESTARTING, S.STOPPING, S.FAILING}
)
# States in which the job's child is ready (the old one, during an overlap).
SERVING = frozenset({S.RUNNING, S.OVERLAPPING, S.BUILDING})


class Step(StrEnum):
    """What a row does; each is one function in :mod:`watchd.supervise.steps`."""

    START_NOW = "start_now"  # reset the failure count, start a child at once
    START_AFTER_STOP = "start_after_stop"  # start again once the stopping child is gone
    RESTART = "restart"  # stop the child, start a new one once it is gone
    STOP = "stop"  # stop the child; stay down
    STAY_DOWN = "stay_down"  # no child: cancel timers, stay down
    FORGET_CHANGES = "forget_changes"  # already stopping: drop queued work
    NOTE_CHANGE = "note_change"  # remember a changed path; (re)arm the debounce timer
    ACT_ON_CHANGE = "act_on_change"  # the burst settled: signal, build, or restart
    QUEUE_CHANGE = "queue_change"  # the burst settled mid-restart: one more, afterwards
    WAKE_ON_CHANGE = "wake_on_change"  # the burst settled while down: start at once
    RETRY = "retry"  # backoff elapsed: start again
    SPAWNED = "spawned"  # the child runs; act on a change queued meanwhile
    SPAWN_FAILED = "spawn_failed"  # a failure: backoff, start limit, or policy
    # On its own: restart at once, back off, fail, or stay down (an exec that failed after
    # the fork is a spawn failure).
    CHILD_EXITED = "child_exited"
    STOPPED = "stopped"  # the child we stopped is gone
    RESPAWN = "respawn"  # the child we stopped for a restart is gone: start the new one
    BUILD_DONE = "build_done"  # before_restart ended: restart, or keep the old child
    BECAME_READY = "became_ready"  # the child is ready: it serves; act on a queued change
    NOT_READY = "not_ready"  # ready_timeout passed: stop the child, a failed start
    CHECK_FAILED = "check_failed"  # health or watchdog failed: stop the child, back off
    PING = "ping"  # WATCHDOG=1: the next one is due an interval from now
    FAILED_CHILD_GONE = "failed_child_gone"  # the child that failed a check is gone
    SUCCESSOR_SPAWNED = "successor_spawned"  # the new child runs: wait until it is ready
    HAND_OVER = "hand_over"  # the new child is ready: it serves, the old one stops
    SUCCESSOR_FAILED = "successor_failed"  # the new child failed: the old one keeps serving
    PROMOTE = "promote"  # the old child ended mid-overlap: the new one is the job's child
    QUEUE_RESTART = "queue_restart"  # a restart request mid-overlap: one more, afterwards


@dataclass(frozen=True)
class Row:
    step: Step
    targets: frozenset[State]


def row(step: Step, *targets: State) -> Row:
    return Row(step, frozenset(targets))


# Where a child that has just become ready (or a start that needs no readiness) goes: it
# serves, unless a change queued meanwhile restarts it at once.
ACTED_ON = (S.RUNNING, S.BUILDING, S.RESTARTING, S.OVERLAPPING)
# Where a child that ended on its own leaves the job: the restart policy decides.
AFTER_EXIT = (S.STARTING, S.BACKOFF, S.FAILED, S.EXITED)

# Several steps pick among targets: ``CHILD_EXITED`` follows the exit code and the restart
# policy (at once, backoff, start limit, stay down); ``ACT_ON_CHANGE`` follows on_change
# (a signal leaves the child running) and before_restart; ``*_CHANGE`` steps stay put while
# the burst has not settled.
TABLE: dict[tuple[State, type[ev.Input]], Row] = {
    # ---- stopped: no child, none wanted ------------------------------------------------
    (S.STOPPED, ev.Start): row(Step.START_NOW, S.STARTING),
    (S.STOPPED, ev.Restart): row(Step.START_NOW, S.STARTING),
    # ---- starting: the spawn is under way ----------------------------------------------
    (S.STARTING, ev.Spawned): row(Step.SPAWNED, S.AWAITING_READY, *ACTED_ON),
    (S.STARTING, ev.SpawnFailed): row(Step.SPAWN_FAILED, S.BACKOFF, S.FAILED, S.EXITED),
    (S.STARTING, ev.ChangeSeen): row(Step.NOTE_CHANGE, S.STARTING),
    (S.STARTING, ev.DebounceDue): row(Step.QUEUE_CHANGE, S.STARTING),
    # ---- awaiting ready: a child runs; READY=1 or a probe makes it serve ---------------
    # A change waits for the start under way, as in starting; ready_timeout bounds it.
    (S.AWAITING_READY, ev.Ready): row(Step.BECAME_READY, *ACTED_ON),
    (S.AWAITING_READY, ev.ReadyTimeout): row(Step.NOT_READY, S.FAILING),
    (S.AWAITING_READY, ev.Stop): row(Step.STOP, S.STOPPING),
    (S.AWAITING_READY, ev.Restart): row(Step.RESTART, S.RESTARTING),
    (S.AWAITING_READY, ev.ChangeSeen): row(Step.NOTE_CHANGE, S.AWAITING_READY),
    (S.AWAITING_READY, ev.DebounceDue): row(Step.QUEUE_CHANGE, S.AWAITING_READY),
    (S.AWAITING_READY, ev.Exited): row(Step.CHILD_EXITED, *AFTER_EXIT),
    # ---- running -----------------------------------------------------------------------
    (S.RUNNING, ev.Stop): row(Step.STOP, S.STOPPING),
    (S.RUNNING, ev.Restart): row(Step.RESTART, S.RESTARTING, S.OVERLAPPING),
    (S.RUNNING, ev.ChangeSeen): row(Step.NOTE_CHANGE, S.RUNNING),
    (S.RUNNING, ev.DebounceDue): row(Step.ACT_ON_CHANGE, *ACTED_ON),
    (S.RUNNING, ev.Exited): row(Step.CHILD_EXITED, *AFTER_EXIT),
    (S.RUNNING, ev.HealthFailed): row(Step.CHECK_FAILED, S.FAILING),
    (S.RUNNING, ev.WatchdogExpired): row(Step.CHECK_FAILED, S.FAILING),
    (S.RUNNING, ev.WatchdogPing): row(Step.PING, S.RUNNING),
    # ---- overlapping: the old child serves, the new one gets ready beside it -----------
    (S.OVERLAPPING, ev.SuccessorSpawned): row(Step.SUCCESSOR_SPAWNED, S.OVERLAPPING, *ACTED_ON),
    (S.OVERLAPPING, ev.SuccessorSpawnFailed): row(Step.SUCCESSOR_FAILED, *ACTED_ON),
    (S.OVERLAPPING, ev.Ready): row(Step.HAND_OVER, *ACTED_ON),
    (S.OVERLAPPING, ev.ReadyTimeout): row(Step.SUCCESSOR_FAILED, *ACTED_ON),
    (S.OVERLAPPING, ev.SuccessorExited): row(Step.SUCCESSOR_FAILED, *ACTED_ON),
    (S.OVERLAPPING, ev.Exited): row(Step.PROMOTE, S.AWAITING_READY),
    (S.OVERLAPPING, ev.Stop): row(Step.STOP, S.STOPPING),
    (S.OVERLAPPING, ev.Restart): row(Step.QUEUE_RESTART, S.OVERLAPPING),
    (S.OVERLAPPING, ev.ChangeSeen): row(Step.NOTE_CHANGE, S.OVERLAPPING),
    (S.OVERLAPPING, ev.DebounceDue): row(Step.QUEUE_CHANGE, S.OVERLAPPING),
    (S.OVERLAPPING, ev.WatchdogPing): row(Step.PING, S.OVERLAPPING),
    # The serving child hung: both go, and a fresh start follows the backoff.
    (S.OVERLAPPING, ev.WatchdogExpired): row(Step.CHECK_FAILED, S.FAILING),
    # ---- building: before_restart runs, the old child keeps serving --------------------
    (S.BUILDING, ev.Stop): row(Step.STOP, S.STOPPING),
    (S.BUILDING, ev.Restart): row(Step.RESTART, S.RESTARTING, S.OVERLAPPING),
    (S.BUILDING, ev.ChangeSeen): row(Step.NOTE_CHANGE, S.BUILDING),
    (S.BUILDING, ev.DebounceDue): row(Step.QUEUE_CHANGE, S.BUILDING),
    (S.BUILDING, ev.BeforeRestartDone): row(Step.BUILD_DONE, S.RESTARTING, *ACTED_ON),
    (S.BUILDING, ev.Exited): row(Step.CHILD_EXITED, *AFTER_EXIT),
    (S.BUILDING, ev.HealthFailed): row(Step.CHECK_FAILED, S.FAILING),
    (S.BUILDING, ev.WatchdogExpired): row(Step.CHECK_FAILED, S.FAILING),
    (S.BUILDING, ev.WatchdogPing): row(Step.PING, S.BUILDING),
    # ---- restarting: the old child is asked to stop, a new one follows -----------------
    (S.RESTARTING, ev.Start): row(Step.START_AFTER_STOP, S.RESTARTING),
    (S.RESTARTING, ev.Restart): row(Step.START_AFTER_STOP, S.RESTARTING),
    (S.RESTARTING, ev.Stop): row(Step.FORGET_CHANGES, S.STOPPING),
    (S.RESTARTING, ev.ChangeSeen): row(Step.NOTE_CHANGE, S.RESTARTING),
    (S.RESTARTING, ev.DebounceDue): row(Step.QUEUE_CHANGE, S.RESTARTING),
    (S.RESTARTING, ev.Exited): row(Step.RESPAWN, S.STARTING),
    # ---- stopping: the child is asked to stop, the job stays down ----------------------
    (S.STOPPING, ev.Start): row(Step.START_AFTER_STOP, S.RESTARTING),
    (S.STOPPING, ev.Restart): row(Step.START_AFTER_STOP, S.RESTARTING),
    (S.STOPPING, ev.Stop): row(Step.FORGET_CHANGES, S.STOPPING),
    (S.STOPPING, ev.Exited): row(Step.STOPPED, S.STOPPED),
    # ---- failing: a child that failed a check stops; a failed start, with backoff ------
    (S.FAILING, ev.Exited): row(Step.FAILED_CHILD_GONE, S.STARTING, S.BACKOFF, S.FAILED, S.EXITED),
    (S.FAILING, ev.Start): row(Step.START_AFTER_STOP, S.RESTARTING),
    (S.FAILING, ev.Restart): row(Step.START_AFTER_STOP, S.RESTARTING),
    (S.FAILING, ev.Stop): row(Step.FORGET_CHANGES, S.STOPPING),
    (S.FAILING, ev.ChangeSeen): row(Step.NOTE_CHANGE, S.FAILING),
    (S.FAILING, ev.DebounceDue): row(Step.QUEUE_CHANGE, S.FAILING),
    # ---- backoff: waiting to try again; a request or a change starts at once -----------
    (S.BACKOFF, ev.BackoffElapsed): row(Step.RETRY, S.STARTING),
    (S.BACKOFF, ev.Start): row(Step.START_NOW, S.STARTING),
    (S.BACKOFF, ev.Restart): row(Step.START_NOW, S.STARTING),
    (S.BACKOFF, ev.Stop): row(Step.STAY_DOWN, S.STOPPED),
    (S.BACKOFF, ev.ChangeSeen): row(Step.NOTE_CHANGE, S.BACKOFF),
    (S.BACKOFF, ev.DebounceDue): row(Step.WAKE_ON_CHANGE, S.BACKOFF, S.STARTING),
    # ---- exited: the policy says stay down; a request or a change starts it ------------
    (S.EXITED, ev.Start): row(Step.START_NOW, S.STARTING),
    (S.EXITED, ev.Restart): row(Step.START_NOW, S.STARTING),
    (S.EXITED, ev.Stop): row(Step.STAY_DOWN, S.STOPPED),
    (S.EXITED, ev.ChangeSeen): row(Step.NOTE_CHANGE, S.EXITED),
    (S.EXITED, ev.DebounceDue): row(Step.WAKE_ON_CHANGE, S.EXITED, S.STARTING),
    # ---- failed: past the start limit; a request or a change starts it -----------------
    (S.FAILED, ev.Start): row(Step.START_NOW, S.STARTING),
    (S.FAILED, ev.Restart): row(Step.START_NOW, S.STARTING),
    (S.FAILED, ev.Stop): row(Step.STAY_DOWN, S.STOPPED),
    (S.FAILED, ev.ChangeSeen): row(Step.NOTE_CHANGE, S.FAILED),
    (S.FAILED, ev.DebounceDue): row(Step.WAKE_ON_CHANGE, S.FAILED, S.STARTING),
}

# Inputs that may arrive late, after the state they were for has passed: a timer that fired
# as it was cancelled, a probe or a READY=1 that lost a race with an exit. Ignored wherever
# they have no row.
LATE: tuple[type[ev.Input], ...] = (
    ev.BackoffElapsed,
    ev.BeforeRestartDone,
    ev.Ready,
    ev.ReadyTimeout,
    ev.HealthFailed,
    ev.WatchdogPing,
    ev.WatchdogExpired,
)

IGNORED: frozenset[tuple[State, type[ev.Input]]] = frozenset(
    {
        # Already up, or on the way up.
        (S.STARTING, ev.Start),
        (S.AWAITING_READY, ev.Start),
        (S.RUNNING, ev.Start),
        (S.OVERLAPPING, ev.Start),
        (S.BUILDING, ev.Start),
        # Nothing to stop, and no change matters while down by request.
        (S.STOPPED, ev.Stop),
        (S.STOPPED, ev.ChangeSeen),
        (S.STOPPING, ev.ChangeSeen),
        # A timer or a result that lost a race with the state it was for.
        (S.STOPPED, ev.DebounceDue),
        (S.STOPPING, ev.DebounceDue),
        *((state, kind) for state in State for kind in LATE if (state, kind) not in TABLE),
    }
)


class IllegalTransition(RuntimeError):
    pass


def lookup(state: State, event: ev.Input) -> Row | None:
    """The row for *event* in *state*; ``None`` when it is ignored; raises when neither."""
    key = (state, type(event))
    found = TABLE.get(key)
    if found is None and key not in IGNORED:
        raise IllegalTransition(f"{type(event).__name__} is not expected while {state.value}")
    return found
