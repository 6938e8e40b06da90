"""The backends under test, and a recorder of what a subscription reports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.wait import async_wait_until
from watchd.watch.base import Change, ChangeKind, Watcher, WatchSpec
from watchd.watch.filters import PathFilter
from watchd.watch.inotify import InotifyWatcher

EVERY_KIND = frozenset(ChangeKind)


@dataclass(frozen=True)
class Backend:
    name: str
    make: Callable[[], Watcher]
    poll_interval: float = 1.0

    def spec(self, *roots: Path, filter: PathFilter | None = None) -> WatchSpec:
        return WatchSpec(tuple(roots), filter or PathFilter(), poll_interval=self.poll_interval)

    @asynccontextmanager
    async def watcher(self) -> AsyncIterator[Watcher]:
        """A watcher that is closed when the block ends, whatever happens in it."""
        watcher = self.make()
        try:
            yield watcher
        finally:
            await watcher.close()


def _poll_backend() -> Backend:
    poll = pytest.importorskip("watchd.watch.poll")
    return Backend("poll", poll.PollWatcher, poll_interval=0.05)


@pytest.fixture(params=["inotify", "poll"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "poll":
        return _poll_backend()
    return Backend("inotify", InotifyWatcher)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """An empty directory to watch; symlinks resolved, so reported paths compare equal."""
    root = tmp_path.resolve() / "tree"
    root.mkdir()
    return root


class Recorder:
    """An ``on_changes`` callback that keeps every batch it is handed."""

    def __init__(self) -> None:
        self.batches: list[Sequence[Change]] = []

    def __call__(self, batch: Sequence[Change]) -> None:
        assert batch, "a batch is never empty"
        self.batches.append(list(batch))

    @property
    def changes(self) -> list[Change]:
        return [change for batch in self.batches for change in batch]

    def paths(self) -> set[str]:
        return {change.path for change in self.changes}

    def saw(self, path: Path | str, kinds: Collection[ChangeKind] = EVERY_KIND) -> bool:
        return any(c.path == str(path) and c.kind in kinds for c in self.changes)

    def saw_under(self, directory: Path) -> list[Change]:
        prefix = f"{directory}/"
        return [c for c in self.changes if c.path == str(directory) or c.path.startswith(prefix)]

    async def wait_for_under(self, directory: Path) -> None:
        await async_wait_until(
            lambda: self.saw_under(directory), f"a change in {directory}; got {self.changes}"
        )

    async def wait_for(self, path: Path | str, kinds: Collection[ChangeKind] = EVERY_KIND) -> None:
        names = "/".join(sorted(kind.value for kind in kinds))
        await async_wait_until(
            lambda: self.saw(path, kinds), f"a change ({names}) of {path}; got {self.changes}"
        )


def inotify_watches_in_kernel(fd: int) -> int:
    """How many watches the kernel holds for the inotify instance *fd*."""
    with open(f"/proc/self/fdinfo/{fd}") as info:
        return sum(1 for line in info if line.startswith("inotify wd:"))
