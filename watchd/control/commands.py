"""What each control command does, against the daemon's operations."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from watchd.control.protocol import Request, error_reply
from watchd.control.server import Reply

# How many live lines a slow `logs -f` reader may fall behind before lines are dropped.
FOLLOW_BACKLOG = 10_000


class Controlled(Protocol):
    """The daemon, as the control socket sees it."""

    config_error: str | None

    def job_names(self) -> list[str]: ...

    def job_status(self, names: Sequence[str]) -> list[dict[str, Any]]: ...

    def summary(self) -> str: ...

    async def control_jobs(self, command: str, names: Sequence[str]) -> None: ...

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
            await daemon.control_jobs(request.command, request.jobs)
            await reply.send({"ok": True, "jobs": daemon.job_status(request.jobs)})
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
        "jobs": daemon.job_status(names),
        "config_error": daemon.config_error,
        "summary": daemon.summary(),
    }


async def _logs(daemon: Controlled, request: Request, reply: Reply) -> None:
    (name,) = request.jobs[:1]
    if not request.follow:
        await reply.send({"ok": True, "lines": daemon.log_tail(name, request.lines)})
        return
    queue: asyncio.Queue[str] = asyncio.Queue(FOLLOW_BACKLOG)

    def on_line(line: str) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(line)

    unfollow = daemon.follow_log(name, on_line)
    try:
        await reply.send({"ok": True, "lines": daemon.log_tail(name, request.lines)})
        hang_up = asyncio.ensure_future(reply.reader.read(1))  # b"" once the client is gone
        try:
            while True:
                next_line = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {hang_up, next_line}, return_when=asyncio.FIRST_COMPLETED
                )
                if hang_up in done:
                    next_line.cancel()
                    return
                await reply.send({"line": next_line.result()})
        finally:
            hang_up.cancel()
    finally:
        unfollow()
