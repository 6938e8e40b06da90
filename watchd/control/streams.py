"""Sending a follower (``logs -f``, ``events -f``) its backlog until it hangs up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sized
from typing import Any, Generic, TypeVar

from watchd.control.follow import FollowBacklog, Gap
from watchd.control.server import Reply

T = TypeVar("T", bound=Sized)

# How far (in bytes of lines) a slow follower may fall behind before lines are dropped
# and it is told how many (log lines are up to 64 KiB each).
FOLLOW_BACKLOG_BYTES = 1024 * 1024


class Follower(Generic[T]):
    """A bounded backlog, filled by the daemon's callbacks and emptied into one reply."""

    def __init__(self, max_bytes: int = FOLLOW_BACKLOG_BYTES) -> None:
        self.backlog: FollowBacklog[T] = FollowBacklog(max_bytes)
        self._arrived = asyncio.Event()

    def put(self, item: T) -> None:
        self.backlog.put(item)
        self._arrived.set()

    async def pump(self, reply: Reply, render: Callable[[T | Gap], dict[str, Any]]) -> None:
        """Send each item (rendered as one message) until the client hangs up."""
        hang_up = asyncio.ensure_future(reply.reader.read(1))  # b"" once the client is gone
        try:
            while not hang_up.done():
                item = self.backlog.pop()
                if item is None:
                    self._arrived.clear()
                    waiting: asyncio.Future[Any] = asyncio.ensure_future(self._arrived.wait())
                    await asyncio.wait({hang_up, waiting}, return_when=asyncio.FIRST_COMPLETED)
                    waiting.cancel()
                else:
                    # No write timeout: a reader that stalls costs at most the backlog's bound.
                    await reply.send(render(item), timeout=None)
        finally:
            hang_up.cancel()
