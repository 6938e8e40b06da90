"""The control protocol: one JSON object per line each way. Pure code.

A request is ``{"command": "status"|"start"|"stop"|"restart"|"reload"|"logs",
"jobs": [...]}`` (plus ``"lines"``/``"follow"`` for ``logs``); a reply is
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_REQUEST = 64 * 1024  # bytes, newline included
REQUEST_TIMEOUT = 5.0  # seconds for a whole request line to arrive

COMMANDS = frozenset({"status", "start", "stop", "restart", "reload", "logs"})
# Commands that change something: only root and the control group may send them.
MUTATING = frozenset({"start", "stop", "restart", "reload"})
NEEDS_JOBS = frozenset({"start", "stop", "restart", "logs"})


class ProtocolError(ValueError):
    """A request that cannot be served; the message goes back to the client."""


@dataclass(frozen=True)
class Request:
    command: str
    jobs: tuple[str, ...] = ()
    lines: int | None = None
    follow: bool = False

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"command": self.command, "jobs": list(self.jobs)}
        if self.command == "logs":
            body["lines"] = self.lines
            body["follow"] = self.follow
        return body


def parse_request(line: bytes) -> Request:
    try:
        body = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError(f"malformed request: not JSON ({error})") from None
    if not isinstance(body, dict):
        raise ProtocolError("malformed request: expected a JSON object")
    command = body.get("command")
    if command not in COMMANDS:
        known = ", ".join(sorted(COMMANDS))
        raise ProtocolError(f"unknown command {command!r}; expected one of: {known}")
    jobs = body.get("jobs", [])
    if not isinstance(jobs, list) or not all(isinstance(name, str) for name in jobs):
        raise ProtocolError('malformed request: "jobs" must be a list of job names')
    if command in NEEDS_JOBS and not jobs:
        raise ProtocolError(f"{command} needs at least one job name")
    lines = body.get("lines")
    if lines is not None and (not isinstance(lines, int) or isinstance(lines, bool) or lines < 0):
        raise ProtocolError('malformed request: "lines" must be a whole number >= 0')
    follow = body.get("follow", False)
    if not isinstance(follow, bool):
        raise ProtocolError('malformed request: "follow" must be true or false')
    return Request(command, tuple(jobs), lines, follow)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def error_reply(message: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": message, **extra}


def decode_reply(line: bytes) -> dict[str, Any]:
    try:
        body = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError(f"malformed reply from watchd: {error}") from None
    if not isinstance(body, dict):
        raise ProtocolError("malformed reply from watchd: expected a JSON object")
    return body
