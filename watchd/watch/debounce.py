"""Coalesce bursts of changes into one action: a quiet window with an upper bound.

Pure code: the caller passes the (monotonic) time and schedules a wake-up at
:meth:`Debouncer.deadline`.
"""

from __future__ import annotations


class Debouncer:
    """Fires once the events have paused for ``quiet`` seconds, or ``cap`` seconds after
    the first event of the burst, whichever comes first."""

    def __init__(self, quiet: float, cap: float) -> None:
        self.quiet = max(0.0, quiet)
        self.cap = max(self.quiet, cap)
        self._first: float | None = None
        self._last: float | None = None

    @property
    def pending(self) -> bool:
        return self._first is not None

    def add(self, now: float) -> None:
        """Record an event seen at *now*."""
        if self._first is None:
            self._first = now
        self._last = now

    def deadline(self) -> float | None:
        """When the pending burst should fire, or ``None`` when nothing is pending."""
        if self._first is None or self._last is None:
            return None
        return min(self._last + self.quiet, self._first + self.cap)

    def fire(self, now: float) -> bool:
        """If the burst is due at *now*, forget it and return True."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return False
        self.reset()
        return True

    def reset(self) -> None:
        self._first = None
        self._last = None
