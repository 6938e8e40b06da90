"""One job's events: what its runner saw and did, told to the daemon's history.

The runner calls these at four places: around each input it drives through the job
machine, before each action it carries out, with each batch of changes, and once its
watches are armed. A state event names the words a user sees (SPEC §4), so moves between
internal states that look the same from outside (running, then building) are not events.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import Any

from watchd.observe.history import History, Kind
from watchd.supervise import events as ev
from watchd.supervise.job import Job
from watchd.supervise.states import StatusWord
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

    def handling(self, event: ev.Input) -> None:
        """*event* is about to be driven through the job."""
        self._exit = _exit_details(event.returncode) if isinstance(event, ev.Exited) else {}

    def acting(self, action: ev.Action) -> None:
        """*action* is about to be carried out (the job is in its new state)."""
        self.settled()
        if isinstance(action, ev.Spawn) and self._job.restarts > 0:
            trigger = self._job.last_trigger
            self._history.record(
                Kind.RESTART,
                self._name,
                reason=None if trigger is None else str(trigger.kind),
                detail=None if trigger is None else trigger.detail,
            )

    def settled(self) -> None:
        """The job may have changed state: if its word did, that is an event."""
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
        self._history.record(
            Kind.FALLBACK, self._name, backend=backend, reason=backend[len("poll (") : -1]
        )


def _exit_details(returncode: int) -> dict[str, Any]:
    if returncode >= 0:
        return {"status": returncode, "signal": None}
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = str(-returncode)
    return {"status": None, "signal": name}
