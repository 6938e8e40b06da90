"""The backlog of one ``logs -f`` reader, bounded by bytes. Pure code.

Lines that do not fit are not kept, only counted; the reader is told how many it missed
(a gap) at the place they were missed, so a slow reader costs the daemon at most the
bound and never silently loses lines.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

# What a line costs beyond its characters: the str object and the deque's slot.
_OVERHEAD = 64


@dataclass(frozen=True)
class Gap:
    """This many lines were dropped here because the reader fell behind."""

    missed: int


class FollowBacklog:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: deque[str | Gap] = deque()
        self._bytes = 0
        self._missed = 0

    @property
    def size(self) -> int:
        """Bytes held (an estimate that never undercounts the text)."""
        return self._bytes

    def put(self, line: str) -> None:
        cost = _cost(line)
        if self._items and self._bytes + cost > self._max_bytes:
            self._missed += 1
            return
        if self._missed:
            self._items.append(Gap(self._missed))
            self._missed = 0
        self._items.append(line)
        self._bytes += cost

    def pop(self) -> str | Gap | None:
        """The next line or gap in order, or None when there is nothing (yet)."""
        if self._items:
            item = self._items.popleft()
            if isinstance(item, str):
                self._bytes -= _cost(item)
            return item
        if self._missed:
            gap, self._missed = Gap(self._missed), 0
            return gap
        return None


def _cost(line: str) -> int:
    return len(line) + _OVERHEAD
