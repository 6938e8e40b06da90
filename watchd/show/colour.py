"""Colours for a terminal, off when stdout is not one or ``NO_COLOR`` is set."""

from __future__ import annotations

import os
from typing import TextIO

_RESET = "\033[0m"
_STATES = {
    "running": "\033[32m",  # green
    "starting": "\033[33m",  # yellow: on its way
    "stopping": "\033[33m",
    "backoff": "\033[33m",
    "failed": "\033[1;31m",  # bold red: needs someone
    "exited": "\033[31m",
    "stopped": "\033[2m",  # dim: down by request
}
# Job names in several jobs' lines, one colour each in turn (as docker compose does).
_JOBS = ("\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m", "\033[1;36m")
_WARN = "\033[33m"
_BAD = "\033[31m"


def wants_colour(choice: str, stream: TextIO) -> bool:
    """``always``, ``never``, or ``auto``: a terminal, ``NO_COLOR`` unset or empty (see
    no-color.org) and a terminal that is not ``dumb``."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


class Palette:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def state(self, word: str) -> str:
        return self._paint(_STATES.get(word), word)

    def job(self, name: str, index: int) -> str:
        """The *index*-th job named on the command line, in its own colour."""
        return self._paint(_JOBS[index % len(_JOBS)], name)

    def warn(self, text: str) -> str:
        return self._paint(_WARN, text)

    def bad(self, text: str) -> str:
        return self._paint(_BAD, text)

    def _paint(self, code: str | None, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.enabled and code else text
