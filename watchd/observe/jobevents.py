"""One job's events: what its runner saw and did, told to the daemon's history.

The runner calls these around each input it drives through the job machine, before each
action it carries out, with each batch of changes, once its watches are armed, when they
fall back to polling later, and when its changes are held or released. A state event
names the words a user sees (SPEC §4), so moves between internal states that look the same
from outside (running, then building, or overlapping) are not events. An overlap restart
is one ``restart`` event, told once its outcome is known: the new child took over (``ok``)
or the old one keeps running (not ``ok``, with why).
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import Any

from watchd.observe.history import History, Kind
from watchd.supervise import events as ev
from watchd.supervise.job import Job
from watchd.supervise.states import State, StatusWord
from watchd.supervise.trigger import Trigger
from watchd.watch.base import Change, ChangeKind

# Paths named in one change event; the rest are counted.
MAX_PATHS = 20


class JobEvents:
    def __init__(self, history: History, job: Job, name: str) -> None:
        self._history = history
        self._job = job
        self._name = name
        self._word: StatusWord = job.word
        self._exit: dict[str, Any] = {}  # the exit being handled, for the next state event
        # The overlap restart under way: why, and the child it is to replace.
        self._overlap: tuple[Trigger | None, int | None] | None = None

    def handling(self, event: ev.Input) -> None:
        """*event* is about to be driven through the job."""
        self._exit = _exit_details(event.returncode) if isinstance(event, ev.Exited) else {}

    def acting(self, action: ev.Action) -> None:
        """*action* is about to be carried out (the job is in its new state)."""
        self.settled()
        if isinstance(action, ev.SpawnSuccessor):
            self._overlap_ended()  # a failed one, followed at once by the next
            self._overlap = (self._job.next_trigger, self._job.pid)
        elif isinstance(action, ev.Spawn) and self._job.restarts > 0:
            self._restart(self._job.last_trigger)

    def settled(self) -> None:
        """The job may have changed state: if its word did, that is an event."""
        self._state()
        if self._overlap is not None and not (
            self._job.state is State.OVERLAPPING and self._job.pid == self._overlap[1]
        ):
            self._overlap_ended()

    def _restart(self, trigger: Trigger | None, **details: Any) -> None:
        self._history.record(
            Kind.RESTART,
            self._name,
            reason=None if trigger is None else str(trigger.kind),
            detail=None if trigger is None else trigger.detail,
            **details,
        )

    def _overlap_ended(self) -> None:
        if self._overlap is None:
            return
        (cause, old), self._overlap = self._overlap, None
        job = self._job
        if job.pid is not None and job.pid != old:
            self._restart(cause, overlap=True, ok=True, pid=job.pid, old_pid=old)
            return
        failure = job.last_trigger
        self._restart(
            cause,
            overlap=True,
            ok=False,
            pid=job.pid,
            failure=None if failure is None else str(failure.kind),
            failure_detail=None if failure is None else failure.detail,
        )

    def _state(self) -> None:
        word = self._job.word
        if word is self._word:
            return
        before, self._word = self._word, word
        job = self._job
        trigger = job.next_trigger or job.last_trigger
        exit_details, self._exit = self._exit, {}
        self._history.record(
            Kind.STATE,
            self._name,
            **{"from": str(before), "to": str(word)},
            pid=job.pid,
            reason=None if trigger is None else str(trigger.kind),
            detail=None if trigger is None else trigger.detail,
            **exit_details,
        )

    def changes(self, changes: Sequence[Change]) -> None:
        """A batch of changes reached the job."""
        lost = [change.path for change in changes if change.kind is ChangeKind.OVERFLOW]
        if lost:
            self._history.record(Kind.OVERFLOW, self._name, roots=lost[:MAX_PATHS])
        seen = [change.path for change in changes if change.kind is not ChangeKind.OVERFLOW]
        if seen:
            self._history.record(Kind.CHANGE, self._name, paths=seen[:MAX_PATHS], count=len(seen))

    def armed(self, backend: str | None, configured: str) -> None:
        """The watches are armed with *backend*; a fallback from *configured* is an event."""
        if backend is None or configured == "poll" or not backend.startswith("poll ("):
            return
        self.fell_back(backend, at_start=True)

    def fell_back(self, backend: str, at_start: bool = False) -> None:
        """The watches moved to *backend* (``poll (why)``), at arming or later."""
        fallback_event(self._history, self._name, backend, at_start)

    def held(self, before: str | None, now: str | None, count: int) -> None:
        """What holds the job's changes is now *now* (None: released); *count* changes are
        kept (on a release: are acted on)."""
        if now is None:
            self._history.record(Kind.RELEASE, self._name, held_by=before, count=count)
        else:
            self._history.record(Kind.HOLD, self._name, held_by=now, previous=before, count=count)


def fallback_event(history: History, job: str | None, backend: str, at_start: bool) -> None:
    reason = backend.removeprefix("poll (").removesuffix(")")
    history.record(Kind.FALLBACK, job, backend=backend, reason=reason, at_start=at_start)


def _exit_details(returncode: int) -> dict[str, Any]:
    if returncode >= 0:
        return {"status": returncode, "signal": None}
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = str(-returncode)
    return {"status": None, "signal": name}
