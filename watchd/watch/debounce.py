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


class Burst:
    """The paths changed in one burst, most recent last, and when to act on them.

    Only the paths are kept beyond :class:`Debouncer`: they name the trigger. At most
    *max_paths* are remembered; the most recent always is.
    """

    def __init__(self, quiet: float, cap: float, max_paths: int = 100_000) -> None:
        self._debouncer = Debouncer(quiet, cap)
        self._paths: dict[str, None] = {}  # an ordered set
        self._max_paths = max_paths

    @property
    def pending(self) -> bool:
        return self._debouncer.pending

    def add(self, path: str, now: float) -> float:
        """Record *path* changed at *now*; return when the burst is due."""
        self._debouncer.add(now)
        # Most recent last: after an atomic save the trigger names the saved file, not the temp.
        known = self._paths.pop(path, 0) is None
        if known or len(self._paths) < self._max_paths:
            self._paths[path] = None
        deadline = self._debouncer.deadline()
        assert deadline is not None
        return deadline

    def deadline(self) -> float | None:
        return self._debouncer.deadline()

    def take(self, now: float) -> list[str] | None:
        """The burst's paths if it is due at *now* (and forget them), else ``None``."""
        if not self._debouncer.fire(now):
            return None
        paths, self._paths = list(self._paths), {}
        return paths

    def reset(self) -> None:
        self._debouncer.reset()
        self._paths = {}
