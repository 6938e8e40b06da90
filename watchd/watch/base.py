"""The watcher interface every backend implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from watchd.watch.filters import PathFilter


class Backend(StrEnum):
    """How a job's paths are watched (``watch.backend``)."""

    AUTO = "auto"  # inotify, falling back to polling where inotify cannot serve
    INOTIFY = "inotify"
    POLL = "poll"


class ChangeKind(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    # Events were lost (IN_Q_OVERFLOW): anything under ``path`` (a root) may have changed.
    OVERFLOW = "overflow"


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    path: str  # absolute


@dataclass(frozen=True)
class WatchSpec:
    """What one subscriber wants to hear about.

    A root may be a directory (watched recursively), a file, or a path that does not
    exist yet (watched from its nearest existing parent until it appears). The filter
    sees paths relative to their root, in POSIX form.
    """

    roots: tuple[Path, ...]
    filter: PathFilter
    poll_interval: float = 1.0  # used by the poll backend only
    # Poll only: changes found by a scan wait for a scan that finds nothing new (the tree
    # has settled: a checkout is one batch, not one per scan that landed in it), but at
    # most this long.
    settle_max: float = 2.0


# Called on the event loop with a non-empty batch of changes.
OnChanges = Callable[[Sequence[Change]], None]


class Subscription(Protocol):
    @property
    def backend(self) -> str:
        """``"inotify"``, ``"poll"``, or ``"poll (why inotify could not serve)"``."""

    def watched_paths(self) -> int:
        """How many paths this subscription currently watches (directories for inotify,
        files and directories for poll)."""

    async def close(self) -> None:
        """Stop delivering changes and release the watches."""


@runtime_checkable
class ReportsLimit(Protocol):
    """A subscription that can run out of kernel watches after it was armed: it calls
    ``on_limit`` (once), when set, instead of only logging."""

    on_limit: Callable[[Exception], None] | None


class Watcher(Protocol):
    async def subscribe(self, spec: WatchSpec, on_changes: OnChanges) -> Subscription:
        """Arm the watches for *spec*; return only once they are armed."""

    async def close(self) -> None:
        """Release everything; subscriptions stop delivering."""
