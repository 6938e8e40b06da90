"""Job output lines for people (``watchctl logs``): plain, or with time and job name."""

from __future__ import annotations

from datetime import datetime

from watchd.show.colour import Palette
from watchd.show.events import clock


class LogLines:
    """Formats lines of the jobs *names*: ``14:02:11.123 web    | text`` when *stamped*
    (several jobs, or ``--timestamps``), else the text alone, as the job printed it."""

    def __init__(self, names: list[str], stamped: bool, palette: Palette) -> None:
        self._stamped = stamped
        self._palette = palette
        self._width = max((len(name) for name in names), default=0)
        self._names = names

    def line(self, text: str, at: float | None, job: str | None, today: str | None = None) -> str:
        if not self._stamped:
            return text
        when = "-" if at is None else clock(datetime.fromtimestamp(at).astimezone(), today)
        name = job or "?"
        padding = " " * (self._width - len(name))
        index = self._names.index(name) if name in self._names else 0
        return f"{when} {self._palette.job(name, index)}{padding} | {text}"
