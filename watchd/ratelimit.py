"""Flood limiting of one job's output lines: a token bucket that counts what it drops.

Pure: the caller passes the (monotonic) time, so tests run on a virtual clock.
"""

from __future__ import annotations


class FloodLimit:
    """Lets *burst* lines through at once and *rate* lines a second after that.

    What it refuses is counted and handed back as a gap to report: before the next line
    it lets through, or, while the flood goes on, every *report_every* seconds, so a
    reader learns of the loss within that time even if the job then falls silent.
    """

    def __init__(self, rate: float, burst: int, report_every: float = 1.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.report_every = report_every
        self._tokens = float(burst)
        self._last: float | None = None
        self._dropped = 0
        self._dropping_since: float | None = None

    def admit(self, now: float) -> tuple[bool, int]:
        """One more line at *now*: (whether it goes through, lines dropped to report first)."""
        self._refill(now)
        if self._tokens >= 1:
            self._tokens -= 1
            return True, self._take()
        self._dropped += 1
        if self._dropping_since is None:
            self._dropping_since = now
        return False, self.due(now)

    def due(self, now: float) -> int:
        """The gap to report at *now* (taking it), if one is due; else 0."""
        deadline = self.report_at()
        if deadline is None or now < deadline:
            return 0
        return self._take()

    def report_at(self) -> float | None:
        """When the lines dropped so far must be reported, if no line gets through first."""
        if self._dropping_since is None:
            return None
        return self._dropping_since + self.report_every

    def _take(self) -> int:
        dropped, self._dropped, self._dropping_since = self._dropped, 0, None
        return dropped

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        if self._last is None or now > self._last:
            self._last = now
