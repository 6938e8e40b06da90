"""One line per event for people (``watchctl events``); ``--json`` prints them as sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from watchd.show.colour import Palette
from watchd.text import counted

# Paths a change line names before "and N more".
SHOWN_PATHS = 3


def event_line(event: dict[str, Any], palette: Palette, today: str | None = None) -> str:
    seq = "-" if event.get("seq") is None else str(event["seq"])
    when = _when(str(event.get("at", "")), today)
    job = event.get("job") or "-"
    kind = str(event.get("kind", "?"))
    return f"{seq:>6}  {when}  {job}  {kind}  {_what(kind, event, palette)}".rstrip()


def _what(kind: str, event: dict[str, Any], palette: Palette) -> str:
    match kind:
        case "state":
            before, after = event.get("from", "?"), event.get("to", "?")
            return f"{palette.state(before)} -> {palette.state(after)}{_because(event)}"
        case "restart":
            return _restart(event, palette)
        case "change":
            return _paths(event.get("paths") or [], int(event.get("count") or 0))
        case "config":
            return _config(event, palette)
        case "fallback":
            when = "at start" if event.get("at_start") else "while watching"
            return palette.warn(f"now {event.get('backend')} ({when})")
        case "overflow":
            return "events lost; rescanning " + ", ".join(event.get("roots") or [])
        case "gap":
            missed = counted(int(event.get("missed") or 0), "event")
            return palette.warn(f"{missed} not shown (dropped before this reader got them)")
        case "hold":
            return f"held by {event.get('held_by')}; {_changes(event)} kept"
        case "release":
            return f"{event.get('held_by')} no longer holds; acting on {_changes(event)}"
    details = {k: v for k, v in event.items() if k not in ("seq", "at", "job", "kind")}
    return " ".join(f"{key}={value}" for key, value in details.items())


def _restart(event: dict[str, Any], palette: Palette) -> str:
    why = _because(event).strip(" ()") or "restarted"
    if not event.get("overlap"):
        return why
    if event.get("ok"):
        return f"{why}; pid {event.get('pid')} took over from {event.get('old_pid')} (overlap)"
    return f"{why}; " + palette.bad(str(event.get("failure_detail") or "failed"))


def _changes(event: dict[str, Any]) -> str:
    return counted(int(event.get("count") or 0), "change")


def _because(event: dict[str, Any]) -> str:
    reason, detail = event.get("reason"), event.get("detail")
    if not reason and not detail:
        return ""
    return f" ({reason}: {detail})" if reason and detail else f" ({reason or detail})"


def _paths(paths: list[str], count: int) -> str:
    shown = ", ".join(paths[:SHOWN_PATHS])
    rest = count - min(len(paths), SHOWN_PATHS)
    return f"{shown} and {rest} more" if rest > 0 else shown


def _config(event: dict[str, Any], palette: Palette) -> str:
    why = event.get("why") or "config"
    if not event.get("ok"):
        first = str(event.get("error") or "").splitlines()[:1]
        return palette.bad(f"refused ({why}): {first[0] if first else ''}".rstrip(": "))
    parts = [
        f"{len(event[key])} {key} ({', '.join(event[key])})"
        for key in ("added", "removed", "changed")
        if event.get(key)
    ]
    return f"applied ({why})" + (": " + ", ".join(parts) if parts else ": no job changed")


def _when(stamp: str, today: str | None) -> str:
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    return clock(moment, today)


def clock(moment: datetime, today: str | None = None) -> str:
    """``14:02:11.123`` today (*today*: ``YYYY-MM-DD``, else the local date), else
    ``2026-11-23 14:02:11.123``."""
    day = moment.strftime("%Y-%m-%d")
    clock = moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    if day == (today or datetime.now().astimezone().strftime("%Y-%m-%d")):
        return clock
    return f"{day} {clock}"
