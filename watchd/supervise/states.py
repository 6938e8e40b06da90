"""Job states and every legal transition between them.

This table is the documentation: a transition that is not listed raises
:class:`IllegalTransition`.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    STARTING = "starting"  # spawn requested; no child yet
    RUNNING = "running"  # a child runs
    STOPPING = "stopping"  # the child (and its group) was asked to stop; waiting for it
    BACKOFF = "backoff"  # the child failed; waiting before the next start
    EXITED = "exited"  # the child ended and the restart policy says stay down
    FAILED = "failed"  # the start limit was hit; waits for a change, a restart or an edit
    STOPPED = "stopped"  # not running, by request


S = State

TRANSITIONS: dict[State, frozenset[State]] = {
    # Initial state of every job, and where `stop` leads.
    S.STOPPED: frozenset({S.STARTING}),
    # Spawn succeeded -> RUNNING; spawn failed -> BACKOFF, FAILED or EXITED (a failure,
    # then the policy); stop requested while the spawn was under way -> STOPPING.
    S.STARTING: frozenset({S.RUNNING, S.BACKOFF, S.FAILED, S.EXITED, S.STOPPING}),
    # Restart/stop requested -> STOPPING; the child exited on its own -> STARTING ("restart
    # me" code, or policy), BACKOFF (failure), FAILED (start limit), EXITED (policy).
    S.RUNNING: frozenset({S.STOPPING, S.STARTING, S.BACKOFF, S.FAILED, S.EXITED}),
    # The child is gone: -> STARTING when a restart is queued, else STOPPED.
    S.STOPPING: frozenset({S.STARTING, S.STOPPED}),
    # Backoff elapsed, a change, or a manual start -> STARTING; stop -> STOPPED.
    S.BACKOFF: frozenset({S.STARTING, S.STOPPED}),
    S.EXITED: frozenset({S.STARTING, S.STOPPED}),
    S.FAILED: frozenset({S.STARTING, S.STOPPED}),
}


class IllegalTransition(RuntimeError):
    pass


def check_transition(old: State, new: State) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"illegal job state transition {old.value} -> {new.value}")
