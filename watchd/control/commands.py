"""What each control command does, against the daemon's operations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from watchd.control.follow import FollowBacklog, Gap
from watchd.control.protocol import Request, error_reply, pages
from watchd.control.server import Reply
from watchd.control.status import JobStatus

# How far (in bytes of lines) a slow `logs -f` reader may fall behind before lines are
# dropped and it is told how many (lines are up to 64 KiB each).
FOLLOW_BACKLOG_BYTES = 1024 * 1024


class Controlled(Protocol):
    """The daemon, as the control socket sees it."""

    config_error: str | None

    def job_names(self) -> list[str]: ...

    def job_status(self, names: Sequence[str]) -> list[JobStatus]: ...

    def summary(self) -> str: ...

    async def control_jobs(self, command: str, names: Sequence[str]) -> list[str]: ...

    async def reload(self, why: str) -> bool: ...

    def log_tail(self, name: str, lines: int | None) -> list[str]: ...

    def follow_log(self, name: str, callback: Callable[[str], None]) -> Callable[[], None]: ...


async def execute(daemon: Controlled, request: Request, reply: Reply) -> None:
    known = daemon.job_names()
    unknown = [name for name in request.jobs if name not in known]
    if unknown:
        await reply.send(
            error_reply(
                f"unknown job{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}; "
                f"known jobs: {', '.join(known) or '(none)'}",
                unknown_jobs=unknown,
                known_jobs=known,
            )
        )
        return
    match request.command:
        case "status":
            await reply.send(_status(daemon, request.jobs or known))
        case "start" | "stop" | "restart":
            problems = await daemon.control_jobs(request.command, request.jobs)
            jobs = _wire(daemon.job_status(request.jobs))
            if problems:  # a job that failed to start, or to get ready
                await reply.send(error_reply("\n".join(problems), jobs=jobs))
            else:
                await reply.send({"ok": True, "jobs": jobs})
        case "hold" | "release":  # no job named: every job
            names = request.jobs or tuple(known)
            await daemon.control_jobs(request.command, names)
            await reply.send({"ok": True, "jobs": _wire(daemon.job_status(names))})
        case "reload":
            if await daemon.reload("reload requested by watchctl"):
                await reply.send({"ok": True, "summary": daemon.summary()})
            else:
                await reply.send(error_reply(f"config refused:\n{daemon.config_error}"))
        case "logs":
            await _logs(daemon, request, reply)


def _status(daemon: Controlled, names: Sequence[str]) -> dict[str, Any]:
    return {
        "ok": True,
        "jobs": _wire(daemon.job_status(names)),
        "config_error": daemon.config_error,
        "summary": daemon.summary(),
    }


def _wire(jobs: list[JobStatus]) -> list[dict[str, Any]]:
    return [job.to_wire() for job in jobs]


async def _logs(daemon: Controlled, request: Request, reply: Reply) -> None:
    (name,) = request.jobs[:1]
    if not request.follow:
        await _send_tail(daemon.log_tail(name, request.lines), reply)
        return
    backlog = FollowBacklog(FOLLOW_BACKLOG_BYTES)
    arrived = asyncio.Event()

    def on_line(line: str) -> None:
        backlog.put(line)
        arrived.set()

    unfollow = daemon.follow_log(name, on_line)
    try:
        await _send_tail(daemon.log_tail(name, request.lines), reply)
        hang_up = asyncio.ensure_future(reply.reader.read(1))  # b"" once the client is gone
        try:
            await _follow(backlog, arrived, hang_up, reply)
        finally:
            hang_up.cancel()
    finally:
        unfollow()


async def _send_tail(lines: list[str], reply: Reply) -> None:
    """The lines in pages that fit a reply line: ``"more": true`` on all but the last."""
    chunks = pages(lines)
    for number, chunk in enumerate(chunks, 1):
        more = {"more": True} if number < len(chunks) else {}
        await reply.send({"ok": True, "lines": chunk, **more})


async def _follow(
    backlog: FollowBacklog, arrived: asyncio.Event, hang_up: asyncio.Future[Any], reply: Reply
) -> None:
    while not hang_up.done():
        item = backlog.pop()
        if item is None:
            arrived.clear()
            waiting: asyncio.Future[Any] = asyncio.ensure_future(arrived.wait())
            await asyncio.wait({hang_up, waiting}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
        elif isinstance(item, Gap):
            await reply.send({"gap": item.missed}, timeout=None)
        else:
            # No write timeout: a reader that stalls costs at most the backlog's bound.
            await reply.send({"line": item}, timeout=None)
