"""What each control command does, against the daemon's operations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from watchd.control.events import send_events
from watchd.control.logs import LogSource, send_logs
from watchd.control.protocol import Request, error_reply, pages
from watchd.control.server import Reply
from watchd.control.status import JobStatus
from watchd.observe.history import History


class Controlled(LogSource, Protocol):
    """The daemon, as the control socket sees it."""

    config_error: str | None
    history: History

    def job_names(self) -> list[str]: ...

    def job_status(self, names: Sequence[str]) -> list[JobStatus]: ...

    def summary(self) -> str: ...

    def metrics_text(self) -> str: ...

    async def control_jobs(self, command: str, names: Sequence[str]) -> list[str]: ...

    async def reload(self, why: str) -> bool: ...


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
        case "logs":  # no job named: every job there is now
            await send_logs(daemon, replace(request, jobs=request.jobs or tuple(known)), reply)
        case "events":
            await send_events(daemon.history, request, reply)
        case "metrics":
            await _send_tail(daemon.metrics_text().splitlines(), reply)


def _status(daemon: Controlled, names: Sequence[str]) -> dict[str, Any]:
    return {
        "ok": True,
        "jobs": _wire(daemon.job_status(names)),
        "config_error": daemon.config_error,
        "summary": daemon.summary(),
    }


def _wire(jobs: list[JobStatus]) -> list[dict[str, Any]]:
    return [job.to_wire() for job in jobs]


async def _send_tail(lines: list[str], reply: Reply) -> None:
    """The lines in pages that fit a reply line: ``"more": true`` on all but the last."""
    chunks = pages(lines)
    for number, chunk in enumerate(chunks, 1):
        more = {"more": True} if number < len(chunks) else {}
        await reply.send({"ok": True, "lines": chunk, **more})
