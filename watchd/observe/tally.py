"""Counters the metrics need that no status snapshot holds, kept from the event history.
Pure code: it is told of each event and of the time.

Restarts by reason, each job's last exit, config reloads, inotify overflows, holds by who
held, fallbacks to polling, and how long a change takes to become a new running child.
What can be read off the jobs at any moment (state, uptime, watched paths, whether held)
is read at scrape time instead.
"""

from __future__ import annotations

import bisect
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from watchd.observe.history import Event, Kind
from watchd.watch.holds import MANUAL

# Seconds from a change to the new child running: debounce (100 ms by default) plus the
# old child's stop and the new one's start.
CHANGE_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bound, then +Inf; not cumulative
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs as the exposition wants them, ending with ``+Inf``."""
        running, pairs = 0, []
        for bound, count in zip((*map(repr, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            pairs.append((bound, running))
        return pairs


class Tally:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.restarts: Counter[tuple[str, str]] = Counter()  # (job, reason)
        self.last_exit: dict[str, int] = {}  # exit status, or 128 + the signal's number
        self.reloads: Counter[bool] = Counter()  # by ok
        self.last_reload_ok = True
        self.overflows: Counter[str] = Counter()  # by job: events lost under its watches
        self.holds: Counter[tuple[str, str]] = Counter()  # (job, "watchctl" | "vcs")
        self.fallbacks: Counter[str] = Counter()  # by job: moves to polling
        self.change_to_running = Histogram(CHANGE_BUCKETS)
        self._first_change: dict[str, float] = {}  # job -> when its pending changes began

    def __call__(self, event: Event, details: Mapping[str, Any]) -> None:
        """A :data:`watchd.observe.history.Listener`."""
        job = event.job
        match event.kind:
            case Kind.RESTART if job is not None:
                self.restarts[job, str(details.get("reason"))] += 1
                if details.get("overlap"):
                    self._overlapped(job, details)
            case Kind.STATE if job is not None:
                self._state(job, details)
            case Kind.CHANGE if job is not None:
                self._first_change.setdefault(job, self._clock())
            case Kind.CONFIG:
                self.reloads[bool(details.get("ok"))] += 1
                self.last_reload_ok = bool(details.get("ok"))
                for name in details.get("removed") or ():
                    self.forget(name)
            case Kind.OVERFLOW if job is not None:
                self.overflows[job] += 1
            case Kind.HOLD if job is not None:
                self.holds[job, "watchctl" if details.get("held_by") == MANUAL else "vcs"] += 1
            case Kind.FALLBACK if job is not None:
                self.fallbacks[job] += 1

    def forget(self, job: str) -> None:
        """A job left the config: its series go with it."""
        for counter in (self.restarts, self.holds):
            for key in [key for key in counter if key[0] == job]:
                del counter[key]
        self.fallbacks.pop(job, None)
        self.last_exit.pop(job, None)
        self.overflows.pop(job, None)
        self._first_change.pop(job, None)

    def _state(self, job: str, details: Mapping[str, Any]) -> None:
        status, sig = details.get("status"), details.get("signal")
        if isinstance(status, int):
            self.last_exit[job] = status
        elif isinstance(sig, str):
            self.last_exit[job] = 128 + _signal_number(sig)
        if details.get("to") != "running":
            return
        began = self._first_change.pop(job, None)
        if began is not None and details.get("reason") == "change":
            self.change_to_running.observe(self._clock() - began)

    def _overlapped(self, job: str, details: Mapping[str, Any]) -> None:
        """An overlap restart ended: its new child, if it took over, runs from now."""
        began = self._first_change.pop(job, None)
        if began is not None and details.get("ok") and details.get("reason") == "change":
            self.change_to_running.observe(self._clock() - began)


def _signal_number(name: str) -> int:
    try:
        return int(signal.Signals[name])
    except KeyError:
        return int(name) if name.isdigit() else 0
