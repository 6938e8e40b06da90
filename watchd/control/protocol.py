"""The control protocol: one JSON object per line each way. Pure code.

A request is ``{"command": "status"|"start"|"stop"|"restart"|"reload"|"logs"|"hold"|"release"|
"events"|"metrics", "jobs": [...]}`` (plus ``"lines"``/``"follow"`` for ``logs`` and
``events``, and ``"since"`` for ``events``); a reply is
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MAX_REQUEST = 64 * 1024  # bytes, newline included
REQUEST_TIMEOUT = 5.0  # seconds for a whole request line to arrive
WRITE_TIMEOUT = 10.0  # seconds a client may leave a reply unread before it is cut off
# Connections at once, beyond root's and watchd's own user's (never refused): so that
# nobody can take every file descriptor the daemon has.
MAX_CONNECTIONS = 128
MAX_CONNECTIONS_PER_UID = 32
# A reply line is at most this long; longer answers (logs) come in pages of PAGE_BYTES.
MAX_REPLY = 4 * 1024 * 1024
PAGE_BYTES = 1024 * 1024


class Command(StrEnum):
    STATUS = "status"
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    RELOAD = "reload"
    LOGS = "logs"
    HOLD = "hold"
    RELEASE = "release"
    EVENTS = "events"
    METRICS = "metrics"


C = Command
COMMANDS = frozenset(Command)
# Commands that take "lines" and "follow".
STREAMING = frozenset({C.LOGS, C.EVENTS})
# Commands that change something: only root and the control group may send them.
MUTATING = frozenset({C.START, C.STOP, C.RESTART, C.RELOAD, C.HOLD, C.RELEASE})
NEEDS_JOBS = frozenset({C.START, C.STOP, C.RESTART})


class ProtocolError(ValueError):
    """A request that cannot be served; the message goes back to the client."""


@dataclass(frozen=True)
class Request:
    command: Command
    jobs: tuple[str, ...] = ()
    lines: int | None = None
    follow: bool = False
    since: int | None = None  # events: those after this seq

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"command": self.command, "jobs": list(self.jobs)}
        if self.command in STREAMING:
            body["lines"] = self.lines
            body["follow"] = self.follow
        if self.command is Command.EVENTS:
            body["since"] = self.since
        return body


def parse_request(line: bytes) -> Request:
    try:
        body = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError(f"malformed request: not JSON ({error})") from None
    except RecursionError:
        raise ProtocolError("malformed request: nested too deeply") from None
    except ValueError as error:  # an integer of more digits than Python converts
        raise ProtocolError(f"malformed request: {error}") from None
    if not isinstance(body, dict):
        raise ProtocolError("malformed request: expected a JSON object")
    command = body.get("command")
    known = ", ".join(sorted(COMMANDS))
    if not isinstance(command, str):
        got = "nothing" if command is None else f"a JSON {type(command).__name__}"
        raise ProtocolError(f'malformed request: "command" must be one of: {known}; got {got}')
    if command not in COMMANDS:
        raise ProtocolError(f"unknown command {command!r}; expected one of: {known}")
    jobs = body.get("jobs", [])
    if not isinstance(jobs, list) or not all(isinstance(name, str) for name in jobs):
        raise ProtocolError('malformed request: "jobs" must be a list of job names')
    if command in NEEDS_JOBS and not jobs:
        raise ProtocolError(f"{command} needs at least one job name")
    lines = _count(body, "lines")
    follow = body.get("follow", False)
    if not isinstance(follow, bool):
        raise ProtocolError('malformed request: "follow" must be true or false')
    return Request(Command(command), tuple(jobs), lines, follow, _count(body, "since"))


def _count(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ProtocolError(f'malformed request: "{key}" must be a whole number >= 0')
    return value


def encode(message: dict[str, Any]) -> bytes:
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode() + b"\n"
    except UnicodeEncodeError:  # a lone surrogate (from a request) has no UTF-8: escape it
        return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def pages(lines: list[str], limit: int = PAGE_BYTES, extra: int = 0) -> list[list[str]]:
    """*lines* cut into runs of about *limit* bytes each (at least one line per run), each
    line counted with *extra* bytes more for what is sent beside it."""
    result: list[list[str]] = [[]]
    size = 0
    for line in lines:
        cost = len(json.dumps(line)) + 1 + extra  # ASCII-escaped: never less than its UTF-8
        if result[-1] and size + cost > limit:
            result.append([])
            size = 0
        result[-1].append(line)
        size += cost
    return result


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
