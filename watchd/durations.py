"""Durations as users write them: ``250ms``, ``2s``, ``1m``, ``1h``, or a bare number of seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$")


def parse_duration(value: object) -> float:
    """Return *value* in seconds; raise ``ValueError`` saying what was expected."""
    if isinstance(value, bool):
        raise ValueError(f'expected a duration like "10s", got {value!r}')
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"expected a duration that is not negative, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            number, unit = match.groups()
            return float(number) * _UNITS[unit or "s"]
    raise ValueError(f'expected a duration like "10s", got {_show(value)}')


def format_duration(seconds: float) -> str:
    """Short human form for status output: ``850ms``, ``12s``, ``3m04s``, ``2h05m``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        minutes, secs = divmod(int(seconds), 60)
        return f"{minutes}m{secs:02d}s"
    hours, rest = divmod(int(seconds), 3600)
    if hours < 48:
        return f"{hours}h{rest // 60:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)
