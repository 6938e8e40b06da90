"""``logs``: the named jobs' recent output, interleaved in the order it was read, then
(with ``follow``) each new line.

The tail comes in pages (``"more": true`` on all but the last), each ``{"ok": true,
"lines": [...], "at": [...], "job": [...]}``: ``lines[i]`` was read at ``at[i]`` (seconds
since the epoch) from job ``job[i]``. A follower then gets ``{"line": ..., "at": ...,
"job": ...}`` per line, and ``{"gap": N}`` where N lines (of any of its jobs) were dropped
because it read too slowly.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from watchd.control.follow import Gap
from watchd.control.protocol import Request, pages
from watchd.control.server import Reply
from watchd.control.streams import Follower

# What "at" and the separators add to a line in a page (the job name comes on top).
_STAMP_BYTES = 24


class LogSource(Protocol):
    def log_tail(self, name: str, lines: int | None) -> list[tuple[float, str]]: ...

    def follow_log(
        self, name: str, callback: Callable[[float, str], None]
    ) -> Callable[[], None]: ...


class LogLine:
    """One line of one job's output and when watchd read it."""

    __slots__ = ("at", "job", "text")

    def __init__(self, at: float, job: str, text: str) -> None:
        self.at, self.job, self.text = at, job, text

    def __len__(self) -> int:  # what a follower's backlog counts it as
        return len(self.text) + len(self.job) + _STAMP_BYTES


def interleaved(source: LogSource, names: Sequence[str], count: int | None) -> list[LogLine]:
    """The last *count* lines (all kept when None) of the jobs *names* together, oldest
    first; lines read at the same moment keep the order of *names*."""
    if count == 0:
        return []
    tails = [
        [LogLine(at, name, text) for at, text in source.log_tail(name, count)] for name in names
    ]
    merged = list(heapq.merge(*tails, key=lambda line: line.at))
    return merged if count is None else merged[-count:]


async def send_logs(source: LogSource, request: Request, reply: Reply) -> None:
    names = list(dict.fromkeys(request.jobs))
    follower = Follower[LogLine]() if request.follow else None
    unfollow = []
    if follower is not None:
        # Following before the tail is taken, with no wait between: no line falls between.
        for name in names:
            unfollow.append(source.follow_log(name, _put_as(follower, name)))
    try:
        await _send_tail(interleaved(source, names, request.lines), names, reply)
        if follower is not None:
            await follower.pump(reply, _follow_message)
    finally:
        for stop in unfollow:
            stop()


def _put_as(follower: Follower[LogLine], name: str) -> Callable[[float, str], None]:
    return lambda at, text: follower.put(LogLine(at, name, text))


async def _send_tail(lines: list[LogLine], names: Sequence[str], reply: Reply) -> None:
    extra = _STAMP_BYTES + max((len(json.dumps(name)) for name in names), default=0)
    start = 0
    chunks = pages([line.text for line in lines], extra=extra)
    for number, chunk in enumerate(chunks, 1):
        part = lines[start : start + len(chunk)]
        start += len(chunk)
        more = {"more": True} if number < len(chunks) else {}
        body = {
            "ok": True,
            "lines": chunk,
            "at": [round(line.at, 3) for line in part],
            "job": [line.job for line in part],
        }
        await reply.send({**body, **more})


def _follow_message(item: LogLine | Gap) -> dict[str, Any]:
    if isinstance(item, Gap):
        return {"gap": item.missed}
    return {"line": item.text, "at": round(item.at, 3), "job": item.job}
