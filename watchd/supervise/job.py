"""One job's supervision policy as a pure state machine: ``handle(input, at) -> actions``.

The job holds the state and the data its steps need; :mod:`watchd.supervise.states` says
what each input does in each state, :mod:`watchd.supervise.steps` computes it. :func:`drive`
is the one loop that feeds a job an input and the answers to its actions: the runner and
the unit tests both go through it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from watchd.config.model import JobConfig
from watchd.supervise import events as ev
from watchd.supervise.states import (
    SERVING,
    WORDS,
    IllegalTransition,
    State,
    StatusWord,
    lookup,
)
from watchd.supervise.steps import STEPS
from watchd.supervise.trigger import Trigger
from watchd.watch.debounce import Burst

# Changed paths remembered per burst, for the "last trigger" line only.
MAX_REMEMBERED_PATHS = 100_000


class Job:
    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self.state = State.STOPPED
        self.pid: int | None = None
        self.started_at: float | None = None  # monotonic, while a child runs
        # The new child of an overlap restart, while it gets ready beside the old one.
        self.successor_pid: int | None = None
        self.successor_started_at: float | None = None
        # Why the last start or restart failed (spawn, exit or timeout before ready, a
        # failed overlap); None once a child got ready. ``watchctl start`` reports it.
        self.start_error: str | None = None
        self.starts = 0  # children asked for, the first included
        self.last_trigger: Trigger | None = None
        # Why the start under way (or the one after the stop under way) happens.
        self.next_trigger: Trigger | None = None
        # The one change queued behind a restart under way (SPEC §4: exactly one more).
        self.follow_up: Trigger | None = None
        self.burst = Burst(config.debounce, config.debounce_max, MAX_REMEMBERED_PATHS)
        self.backoff = config.backoff_initial
        self.failure_times: deque[float] = deque()  # within the start-limit window
        self.restart_me_exits: deque[float] = deque()

    def handle(self, event: ev.Input, at: ev.Moment) -> list[ev.Action]:
        """Apply *event*; raises :class:`IllegalTransition`, changing nothing, when the
        table has no row for it in this state."""
        found = lookup(self.state, event)
        if found is None:
            return []
        state, actions = STEPS[found.step](self, event, at)
        if state not in found.targets:
            raise IllegalTransition(
                f"{found.step.value} chose {state.value} from {self.state.value}; "
                f"the table allows {', '.join(sorted(found.targets))}"
            )
        self.state = state
        return actions

    @property
    def failures(self) -> int:
        """Failures within the current start-limit window."""
        return len(self.failure_times)

    @property
    def restarts(self) -> int:
        return max(self.starts - 1, 0)

    @property
    def word(self) -> StatusWord:
        return WORDS[self.state]

    @property
    def checks_readiness(self) -> bool:
        return self.config.ready.kind != "none"

    @property
    def ready(self) -> bool | None:
        """Whether the job's child is ready; None when the job has no readiness check."""
        if not self.checks_readiness:
            return None
        return self.state in SERVING

    @property
    def settled(self) -> bool:
        """Running, with no change waiting out its debounce."""
        return self.state is State.RUNNING and not self.burst.pending

    def uptime(self, now: float) -> float | None:
        return None if self.started_at is None else now - self.started_at

    def reset_failures(self) -> None:
        self.failure_times.clear()
        self.restart_me_exits.clear()
        self.backoff = self.config.backoff_initial


# Carries out one action; returns the input it produced at once, if any (``Spawn`` answers
# with ``Spawned`` or ``SpawnFailed``).
Perform = Callable[[ev.Action], ev.Input | None]


def drive(
    job: Job, first: ev.Input, clock: Callable[[], ev.Moment], perform: Perform
) -> list[ev.Action]:
    """Feed *first* to *job*, carry out its actions in order, and feed back every input
    they produce, in turn (first in, first out). Returns the actions carried out."""
    queue: deque[ev.Input] = deque([first])
    done: list[ev.Action] = []
    while queue:
        for action in job.handle(queue.popleft(), clock()):
            done.append(action)
            answer = perform(action)
            if answer is not None:
                queue.append(answer)
    return done
