"""Why a job's changes are held back, and the changes kept meanwhile.

Pure code: the driver passes the (monotonic and wall-clock) time and the version-control
locks it found. Changes are held while ``watchctl hold`` is in force, or while a git or
Mercurial operation runs in a watched root (its lock exists); when the last hold ends they
are handed on as one batch, so the job acts once.

A lock left behind by a crashed git must not hold a job forever. The rule: a lock holds
while it is *live*, i.e. it or the watched tree changed within ``stale_after`` seconds. When
first seen, a lock's own modification time says when it last changed (the change that
made us look does not count: it may be the user's edit). A stale lock is ignored until it
changes or goes away (a ``git rebase --continue`` rewrites it: live again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from watchd.watch.base import Change

# How long a lock may sit with nothing changing before it is taken as left behind.
STALE_AFTER = 10.0

MANUAL = "watchctl"

# (st_mtime_ns, st_ino) of a lock file or directory.
Stamp = tuple[int, int]


@dataclass
class _Live:
    stamp: Stamp
    active_at: float  # monotonic: when it, or the tree while it held, last changed


class Holds:
    def __init__(self, stale_after: float = STALE_AFTER) -> None:
        self.stale_after = stale_after
        self.manual = False
        self._held_changes: dict[Change, None] = {}
        self._live: dict[str, _Live] = {}
        self._stale: dict[str, Stamp] = {}

    @property
    def held_by(self) -> str | None:
        """``"watchctl"``, the path of the lock that holds, or None."""
        if self.manual:
            return MANUAL
        return next(iter(self._live), None)

    @property
    def locked(self) -> bool:
        """Is a version-control lock holding (the driver then looks again, and again)?"""
        return bool(self._live)

    def pending(self) -> int:
        return len(self._held_changes)

    def observe(
        self, locks: Mapping[str, Stamp], now: float, wall: float, active: bool = False
    ) -> list[str]:
        """Take in the locks present now; *active*: the tree changed just now, while held.
        Returns the locks that have just become stale (worth a line in the log)."""
        self._stale = {
            path: stamp for path, stamp in self._stale.items() if locks.get(path) == stamp
        }
        was_held = bool(self._live)
        live: dict[str, _Live] = {}
        became_stale: list[str] = []
        for path, stamp in locks.items():
            if self._stale.get(path) == stamp:
                continue
            known = self._live.get(path)
            if known is None or known.stamp != stamp:
                # New, or rewritten: live from its own modification time.
                age = max(0.0, wall - stamp[0] / 1e9) if known is None else 0.0
                known = _Live(stamp, now - age)
            elif active and was_held:
                known.active_at = now
            if now - known.active_at >= self.stale_after:
                self._stale[path] = stamp
                became_stale.append(path)
            else:
                live[path] = known
        self._live = live
        return became_stale

    def offer(self, changes: Iterable[Change]) -> list[Change]:
        """The changes to act on now: none while held (they are kept), else these and
        any kept before."""
        self._held_changes.update(dict.fromkeys(changes))
        return self.flush()

    def flush(self) -> list[Change]:
        """Everything kept, once nothing holds any more."""
        if self.held_by is not None or not self._held_changes:
            return []
        batch, self._held_changes = list(self._held_changes), {}
        return batch
