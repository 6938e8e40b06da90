"""The backlog of one follower (``logs -f``, ``events -f``), bounded by bytes. Pure code.

Items that do not fit are not kept, only counted; the reader is told how many it missed
(a gap) at the place they were missed, so a slow reader costs the daemon at most the
bound and never silently loses an item.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sized
from dataclasses import dataclass
from typing import Generic, TypeVar

# What an item costs beyond its length: the object itself and the deque's slot.
_OVERHEAD = 64

T = TypeVar("T", bound=Sized)


@dataclass(frozen=True)
class Gap:
    """This many items were dropped here because the reader fell behind."""

    missed: int


class FollowBacklog(Generic[T]):
    """Items (lines: anything whose ``len`` is about its size in bytes) in order."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: deque[T | Gap] = deque()
        self._bytes = 0
        self._missed = 0

    @property
    def size(self) -> int:
        """Bytes held (an estimate that never undercounts the text)."""
        return self._bytes

    def put(self, item: T) -> None:
        cost = len(item) + _OVERHEAD
        if self._items and self._bytes + cost > self._max_bytes:
            self._missed += 1
            return
        if self._missed:
            self._items.append(Gap(self._missed))
            self._missed = 0
        self._items.append(item)
        self._bytes += cost

    def pop(self) -> T | Gap | None:
        """The next item or gap in order, or None when there is nothing (yet)."""
        if self._items:
            item = self._items.popleft()
            if not isinstance(item, Gap):
                self._bytes -= len(item) + _OVERHEAD
            return item
        if self._missed:
            gap, self._missed = Gap(self._missed), 0
            return gap
        return None
