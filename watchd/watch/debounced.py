"""The event-loop side of :class:`~watchd.watch.debounce.Debouncer`: one timer per burst.

Used wherever changes outside the job state machine are coalesced (the daemon's own
config files, the reloader's modules); jobs schedule their debounce through their actions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from watchd.watch.debounce import Debouncer


class DebouncedCall:
    """Calls *action* on the loop once the :meth:`poke` calls of a burst have paused for
    *quiet* seconds, or *cap* seconds after the first of them."""

    def __init__(
        self,
        quiet: float,
        cap: float,
        action: Callable[[], None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._debouncer = Debouncer(quiet, cap)
        self._action = action
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> bool:
        return self._debouncer.pending

    def poke(self) -> None:
        """An event happened now (call on the loop's thread)."""
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        self._debouncer.add(loop.time())
        # A timer already set fires early at worst, and then sets the next one: a storm
        # of events costs no timer churn.
        if self._timer is None:
            self._schedule()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._debouncer.reset()

    def _schedule(self) -> None:
        deadline = self._debouncer.deadline()
        assert self._loop is not None and deadline is not None
        self._timer = self._loop.call_at(deadline, self._due)

    def _due(self) -> None:
        assert self._loop is not None
        self._timer = None
        if self._debouncer.fire(self._loop.time()):
            self._action()
        elif self._debouncer.pending:
            self._schedule()
