"""Reading what the children stamped."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stamp:
    event: str  # start | signal | exit
    pid: int
    ns: int


class Record:
    """The stamp file of one tool run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("")

    def stamps(self, event: str | None = None) -> list[Stamp]:
        found = []
        for line in self.path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and (event is None or parts[0] == event):
                found.append(Stamp(parts[0], int(parts[1]), int(parts[2])))
        return found

    def starts(self) -> list[Stamp]:
        return self.stamps("start")

    def wait_starts(self, count: int, timeout: float) -> list[Stamp] | None:
        """The first *count* starts, or None when they do not come within *timeout*."""
        deadline = time.monotonic() + timeout
        while True:
            starts = self.starts()
            if len(starts) >= count:
                return starts
            if time.monotonic() > deadline:
                return None
            time.sleep(0.002)

    def ended(self, pid: int) -> Stamp | None:
        """When *pid* was told to stop (its signal stamp), else when it exited."""
        own = [stamp for stamp in self.stamps() if stamp.pid == pid and stamp.event != "start"]
        return own[0] if own else None
