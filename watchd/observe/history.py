"""The daemon's events, each with a sequence number, in one bounded history. Pure code.

Every fact worth telling (a state change, a change batch, a restart, a config reload) is
recorded once, here; ``watchctl events`` and the metrics are readers of it. The history
keeps the newest events up to a count and a byte bound; a reader asking for events that
have already been dropped is told how many it missed, never silently skipped.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The history's bounds: whichever is reached first drops the oldest events.
MAX_EVENTS = 10_000
MAX_BYTES = 4 * 1024 * 1024
# What an event costs beyond its text: the objects holding it and the deque's slot.
_OVERHEAD = 160
# A detail string longer than this is cut (a path list is already cut by the recorder).
MAX_DETAIL = 4096


class Kind:
    """``kind`` of an event (SPEC §14)."""

    STATE = "state"
    CHANGE = "change"
    RESTART = "restart"
    CONFIG = "config"
    HOLD = "hold"
    RELEASE = "release"
    FALLBACK = "fallback"
    OVERFLOW = "overflow"
    GAP = "gap"


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded event: its number, its job (or None) and its JSON text as sent."""

    seq: int
    job: str | None
    kind: str
    line: str

    @property
    def cost(self) -> int:
        return len(self.line) + _OVERHEAD


# Told of every event as it is recorded, with its details (typed readers: the metrics).
Listener = Callable[[Event, Mapping[str, Any]], None]


def stamp(wall: float) -> str:
    """ISO-8601 in local time, to the millisecond: ``2026-12-01T14:02:11.123+00:00``."""
    return datetime.fromtimestamp(wall).astimezone().isoformat(timespec="milliseconds")


def gap_line(missed: int, wall: float) -> str:
    """The record a reader gets where *missed* events were dropped (it has no ``seq``)."""
    return _encode(
        {"seq": None, "at": stamp(wall), "job": None, "kind": Kind.GAP, "missed": missed}
    )


class History:
    def __init__(
        self,
        max_events: int = MAX_EVENTS,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._events: deque[Event] = deque()
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._bytes = 0
        self._clock = clock
        self._seq = 0
        self._listeners: list[Listener] = []

    @property
    def last_seq(self) -> int:
        """The newest event's number (0 before the first)."""
        return self._seq

    @property
    def first_seq(self) -> int:
        """The oldest event still held (``last_seq + 1`` when none is)."""
        return self._events[0].seq if self._events else self._seq + 1

    @property
    def max_events(self) -> int:
        return self._max_events

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @property
    def size(self) -> int:
        """Bytes held (an estimate that never undercounts the text)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._events)

    def record(self, kind: str, job: str | None = None, **details: Any) -> Event:
        """Number *kind*'s event, keep it, and tell every listener."""
        self._seq += 1
        body = {"seq": self._seq, "at": stamp(self._clock()), "job": job, "kind": kind}
        body.update({key: _bounded(value) for key, value in details.items()})
        event = Event(self._seq, job, kind, _encode(body))
        self._events.append(event)
        self._bytes += event.cost
        while len(self._events) > self._max_events or (
            self._bytes > self._max_bytes and len(self._events) > 1
        ):
            self._bytes -= self._events.popleft().cost
        for listener in list(self._listeners):
            listener(event, details)
        return event

    def since(self, seq: int) -> tuple[int, list[Event]]:
        """The events after *seq*, and how many of those were already dropped."""
        first = self.first_seq
        missed = max(first - seq - 1, 0)
        if not self._events or seq >= self._seq:
            return missed, []
        start = max(seq + 1 - first, 0)
        return missed, list(itertools.islice(self._events, start, None))

    def newest(self, count: int) -> list[Event]:
        return list(self._events)[-count:] if count > 0 else []

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call *listener* for every new event; returns the function that stops it."""
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop


def _bounded(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_DETAIL:
        return value[: MAX_DETAIL - 1] + "…"
    return value


def _encode(body: Mapping[str, Any]) -> str:
    try:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        text.encode()
        return text
    except UnicodeEncodeError:  # a lone surrogate (from a file name) has no UTF-8: escape it
        return json.dumps(body, separators=(",", ":"))
