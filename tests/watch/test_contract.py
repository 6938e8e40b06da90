"""The contract every watch backend keeps, run against inotify and against poll.

Nothing sleeps and hopes: a test waits (with a timeout) for what it expects, and shows
that something was *not* reported by making a later sentinel change that must be seen.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.helpers.wait import async_wait_until
from tests.watch.conftest import Backend, Recorder, inotify_watches_in_kernel
from watchd.errors import WatchLimitError
from watchd.watch.base import Change, ChangeKind
from watchd.watch.filters import PathFilter
from watchd.watch.inotify import InotifyKernel, InotifyWatcher
from watchd.watch.translate import IN_Q_OVERFLOW, RawEvent

ADDED = {ChangeKind.ADDED}
MODIFIED = {ChangeKind.MODIFIED}
DELETED = {ChangeKind.DELETED}
WRITTEN = {ChangeKind.ADDED, ChangeKind.MODIFIED}


def test_created_modified_and_deleted_files_are_reported(backend: Backend, tree: Path) -> None:
    existing = tree / "old.py"
    existing.write_text("x = 1\n")

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            subscription = await watcher.subscribe(backend.spec(tree), seen)
            new = tree / "new.py"
            new.write_text("print('hello')\n")
            await seen.wait_for(new, ADDED)
            existing.write_text("x = 2  # longer\n")
            await seen.wait_for(existing, MODIFIED)
            new.unlink()
            await seen.wait_for(new, DELETED)
            await subscription.close()

    asyncio.run(main())


def test_atomic_save_is_reported_with_the_target_path(backend: Backend, tree: Path) -> None:
    target = tree / "app.py"
    target.write_text("old\n")

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            await watcher.subscribe(backend.spec(tree), seen)
            temporary = tree / "app.py.tmp"
            temporary.write_text("new content\n")
            os.rename(temporary, target)
            await seen.wait_for(target, WRITTEN)

    asyncio.run(main())


def test_file_in_a_new_nested_directory_is_reported(backend: Backend, tree: Path) -> None:
    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            await watcher.subscribe(backend.spec(tree), seen)
            # Written before the new directories can have a watch of their own.
            os.makedirs(tree / "a" / "b" / "c")
            (tree / "a" / "b" / "c" / "f.py").write_text("x\n")
            await seen.wait_for(tree / "a" / "b" / "c" / "f.py", ADDED)
            # And the new directories are watched from then on.
            (tree / "a" / "b" / "g.py").write_text("y\n")
            await seen.wait_for(tree / "a" / "b" / "g.py", ADDED)

    asyncio.run(main())


def test_excluded_file_produces_nothing(backend: Backend, tree: Path) -> None:
    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            spec = backend.spec(tree, filter=PathFilter(exclude=["*.log"]))
            await watcher.subscribe(spec, seen)
            (tree / "server.log").write_text("noise\n")
            (tree / "sentinel.py").write_text("x\n")
            await seen.wait_for(tree / "sentinel.py")
            assert not seen.saw(tree / "server.log")

    asyncio.run(main())


def test_editor_swap_and_backup_files_produce_nothing(backend: Backend, tree: Path) -> None:
    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            await watcher.subscribe(backend.spec(tree), seen)
            noise = [tree / ".x.py.swp", tree / "x.py~", tree / "4913", tree / ".#x.py"]
            for path in noise:
                path.write_text("swap\n")
            (tree / "x.py").write_text("saved\n")
            await seen.wait_for(tree / "x.py")
            assert not [path for path in noise if seen.saw(path)]

    asyncio.run(main())


def test_pruned_directory_gets_no_watch_and_reports_nothing(backend: Backend, tree: Path) -> None:
    os.makedirs(tree / "node_modules" / "pkg" / "lib")
    (tree / "src").mkdir()

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            spec = backend.spec(tree, filter=PathFilter(exclude=["node_modules/", "build/"]))
            subscription = await watcher.subscribe(spec, seen)
            if backend.name == "inotify":
                assert subscription.watched_paths() == 2  # the root and src
            (tree / "node_modules" / "pkg" / "index.js").write_text("x\n")
            os.makedirs(tree / "build" / "out")  # pruned when it appears, too
            (tree / "build" / "out" / "a.o").write_text("x\n")
            (tree / "src" / "sentinel.py").write_text("x\n")
            await seen.wait_for(tree / "src" / "sentinel.py")
            assert seen.saw_under(tree / "node_modules") == []
            assert seen.saw_under(tree / "build") == []
            if backend.name == "inotify":
                assert subscription.watched_paths() == 2

    asyncio.run(main())


def test_missing_root_is_picked_up_when_created(backend: Backend, tmp_path: Path) -> None:
    root = tmp_path.resolve() / "later" / "app"

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            subscription = await watcher.subscribe(backend.spec(root), seen)
            if backend.name == "inotify":
                assert subscription.watched_paths() == 1  # its nearest existing ancestor
            os.makedirs(root / "pkg")
            (root / "pkg" / "main.py").write_text("x\n")
            await seen.wait_for(root / "pkg" / "main.py", ADDED)
            (root / "pkg" / "main.py").write_text("changed, longer\n")
            await seen.wait_for(root / "pkg" / "main.py", MODIFIED)

    asyncio.run(main())


def test_missing_root_behind_a_file_in_the_way_is_picked_up(
    backend: Backend, tmp_path: Path
) -> None:
    blocker = tmp_path.resolve() / "later"
    blocker.write_text("not a directory\n")
    root = blocker / "app"

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            await watcher.subscribe(backend.spec(root), seen)
            blocker.unlink()
            os.makedirs(root)
            (root / "main.py").write_text("x\n")
            await seen.wait_for(root / "main.py", ADDED)

    asyncio.run(main())


@pytest.mark.parametrize("which", ["subdirectory", "root"])
def test_deleted_and_recreated_directory_keeps_being_watched(
    backend: Backend, tmp_path: Path, which: str
) -> None:
    root = tmp_path.resolve() / "root"
    directory = root / "sub" if which == "subdirectory" else root
    os.makedirs(directory)
    (directory / "a.py").write_text("x\n")

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            await watcher.subscribe(backend.spec(root), seen)
            for round_ in range(3):
                shutil.rmtree(directory)
                await seen.wait_for(directory / "a.py", DELETED)
                os.makedirs(directory)
                (directory / "a.py").write_text(f"round {round_}\n")
                await seen.wait_for(directory / "a.py", ADDED)
                seen.batches.clear()

    asyncio.run(main())


def test_file_root_reports_only_that_file(backend: Backend, tree: Path) -> None:
    settings = tree / "settings.py"
    settings.write_text("DEBUG = False\n")

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            await watcher.subscribe(backend.spec(settings), seen)
            (tree / "other.py").write_text("x\n")
            settings.write_text("DEBUG = True  # now\n")
            await seen.wait_for(settings, MODIFIED)
            assert seen.paths() == {str(settings)}
            # An editor's atomic save replaces the file: still that file.
            (tree / "settings.py.tmp").write_text("DEBUG = None  # replaced\n")
            os.rename(tree / "settings.py.tmp", settings)
            await seen.wait_for(settings, WRITTEN)
            assert seen.paths() == {str(settings)}

    asyncio.run(main())


def test_two_subscriptions_on_one_directory_both_get_events(backend: Backend, tree: Path) -> None:
    async def main() -> None:
        async with backend.watcher() as watcher:
            first, second = Recorder(), Recorder()
            await watcher.subscribe(backend.spec(tree), first)
            await watcher.subscribe(backend.spec(tree), second)
            if isinstance(watcher, InotifyWatcher):
                fd = watcher.fileno()
                assert fd is not None
                # The tree, and the directories on the way to its own (shared too).
                assert watcher.kernel_watches() == len(tree.parents)
                assert inotify_watches_in_kernel(fd) == len(tree.parents)
            (tree / "a.py").write_text("x\n")
            await first.wait_for(tree / "a.py", ADDED)
            await second.wait_for(tree / "a.py", ADDED)

    asyncio.run(main())


def test_subscribe_returns_only_when_armed(backend: Backend, tree: Path) -> None:
    deep = tree / "a" / "b" / "c"
    os.makedirs(deep)

    async def main() -> None:
        async with backend.watcher() as watcher:
            for attempt in range(20):
                seen = Recorder()
                subscription = await watcher.subscribe(backend.spec(tree), seen)
                made = deep / f"new{attempt}.py"
                made.write_text("x\n")  # no await in between: nothing else could run
                await seen.wait_for(made, ADDED)
                await subscription.close()

    asyncio.run(main())


def test_closing_a_subscription_stops_delivery_and_releases_its_watches(
    backend: Backend, tree: Path
) -> None:
    (tree / "sub").mkdir()

    async def main() -> None:
        async with backend.watcher() as watcher:
            closed, kept = Recorder(), Recorder()
            gone = await watcher.subscribe(backend.spec(tree), closed)
            other = tree.parent / "other"
            other.mkdir()
            stays = await watcher.subscribe(backend.spec(other), kept)
            await gone.close()
            if isinstance(watcher, InotifyWatcher):
                assert gone.watched_paths() == 0
                fd = watcher.fileno()
                assert fd is not None
                # other, and the directories on the way to its own.
                assert watcher.kernel_watches() == len(other.parents)
                assert inotify_watches_in_kernel(fd) == len(other.parents)
            (tree / "sub" / "late.py").write_text("x\n")
            (other / "sentinel.py").write_text("x\n")
            await kept.wait_for(other / "sentinel.py")
            assert closed.changes == []
            await stays.close()
            if isinstance(watcher, InotifyWatcher):
                assert fd is not None
                assert inotify_watches_in_kernel(fd) == 0

    asyncio.run(main())


def test_moved_in_directory_is_watched_and_its_files_reported(backend: Backend, tree: Path) -> None:
    outside = tree.parent / "outside"
    os.makedirs(outside / "pkg")
    (outside / "pkg" / "mod.py").write_text("x\n")

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            subscription = await watcher.subscribe(backend.spec(tree), seen)
            os.rename(outside, tree / "moved")
            await seen.wait_for(tree / "moved" / "pkg" / "mod.py", ADDED)
            (tree / "moved" / "pkg" / "new.py").write_text("y\n")
            await seen.wait_for(tree / "moved" / "pkg" / "new.py", ADDED)
            if backend.name == "inotify":
                assert subscription.watched_paths() == 3

    asyncio.run(main())


def test_moved_out_directory_is_forgotten(backend: Backend, tree: Path) -> None:
    os.makedirs(tree / "pkg")
    (tree / "pkg" / "mod.py").write_text("x\n")
    outside = tree.parent / "outside"

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            subscription = await watcher.subscribe(backend.spec(tree), seen)
            os.rename(tree / "pkg", outside)
            await seen.wait_for(tree / "pkg", DELETED)
            (outside / "after.py").write_text("x\n")
            (tree / "sentinel.py").write_text("x\n")
            await seen.wait_for(tree / "sentinel.py")
            assert not [c for c in seen.changes if "after.py" in c.path]
            if backend.name == "inotify":
                assert subscription.watched_paths() == 1

    asyncio.run(main())


def test_renamed_directory_inside_the_tree_is_watched_under_its_new_name(
    backend: Backend, tree: Path
) -> None:
    os.makedirs(tree / "old" / "deep")

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            subscription = await watcher.subscribe(backend.spec(tree), seen)
            os.rename(tree / "old", tree / "new")
            await seen.wait_for(tree / "new", ADDED)
            (tree / "new" / "deep" / "a.py").write_text("x\n")
            await seen.wait_for(tree / "new" / "deep" / "a.py", ADDED)
            stale = [c for c in seen.saw_under(tree / "old") if c.kind is not ChangeKind.DELETED]
            assert stale == []
            if backend.name == "inotify":
                assert subscription.watched_paths() == 3

    asyncio.run(main())


def test_symlinks_and_hard_links_are_reported(backend: Backend, tree: Path) -> None:
    (tree / "real.py").write_text("x\n")
    (tree / "dir").mkdir()

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            subscription = await watcher.subscribe(backend.spec(tree), seen)
            watched = subscription.watched_paths()
            os.symlink("real.py", tree / "link.py")
            os.link(tree / "real.py", tree / "hard.py")
            os.symlink("..", tree / "dir" / "loop")  # listed, never followed
            await seen.wait_for(tree / "link.py", ADDED)
            await seen.wait_for(tree / "hard.py", ADDED)
            await seen.wait_for(tree / "dir" / "loop", ADDED)
            if backend.name == "inotify":
                assert subscription.watched_paths() == watched

    asyncio.run(main())


def test_symlinked_root_is_followed_and_reported_under_its_own_name(
    backend: Backend, tree: Path
) -> None:
    (tree / "releases" / "1").mkdir(parents=True)
    (tree / "releases" / "2").mkdir()
    current = tree / "current"
    current.symlink_to("releases/1")

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            await watcher.subscribe(backend.spec(current), seen)
            (tree / "releases" / "1" / "app.py").write_text("x\n")
            await seen.wait_for(current / "app.py", ADDED)
            seen.batches.clear()
            # Deployed the way release tools do: a new link renamed over the old one.
            (tree / "next").symlink_to("releases/2")
            os.rename(tree / "next", current)
            # Seen as a change of the root (inotify) or of what is in it (poll).
            await seen.wait_for_under(current)
            (tree / "releases" / "2" / "fresh.py").write_text("x\n")
            await seen.wait_for(current / "fresh.py", ADDED)

    asyncio.run(main())


def test_a_symlink_on_the_way_to_the_root_is_followed_when_switched(
    backend: Backend, tree: Path
) -> None:
    for release in ("v1", "v2"):
        (tree / "releases" / release / "src").mkdir(parents=True)
    (tree / "current").symlink_to("releases/v1")
    root = tree / "current" / "src"  # the link is not the root itself

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            await watcher.subscribe(backend.spec(root), seen)
            (tree / "next").symlink_to("releases/v2")
            os.rename(tree / "next", tree / "current")
            await seen.wait_for_under(root)
            (tree / "releases" / "v2" / "src" / "new.py").write_text("x\n")
            await seen.wait_for(root / "new.py", ADDED)
            seen.batches.clear()
            (tree / "releases" / "v1" / "src" / "old.py").write_text("x\n")
            (tree / "releases" / "v2" / "src" / "sentinel.py").write_text("x\n")
            await seen.wait_for(root / "sentinel.py", ADDED)
            assert not seen.saw(root / "old.py")

    asyncio.run(main())


def test_a_moved_parent_leaves_the_root_missing_until_it_is_back(
    backend: Backend, tree: Path
) -> None:
    app = tree / "app"
    root = app / "src"
    root.mkdir(parents=True)
    (root / "main.py").write_text("x\n")

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            await watcher.subscribe(backend.spec(root), seen)
            os.rename(app, tree / "app.old")
            await seen.wait_for_under(root)
            # Moved away: what happens there is no longer the root's business.
            (tree / "app.old" / "src" / "moved.py").write_text("x\n")
            # And the root, now missing, is watched for again.
            root.mkdir(parents=True)
            (root / "main.py").write_text("y\n")
            await seen.wait_for(root / "main.py", WRITTEN)
            assert not seen.saw(root / "moved.py")
            assert not [c for c in seen.changes if "app.old" in c.path]

    asyncio.run(main())


def test_a_removed_parent_is_noticed_and_the_root_watched_for_again(
    backend: Backend, tree: Path
) -> None:
    root = tree / "app" / "src"
    root.mkdir(parents=True)
    (root / "main.py").write_text("x\n")

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            await watcher.subscribe(backend.spec(root), seen)
            shutil.rmtree(tree / "app")
            await seen.wait_for(root / "main.py", DELETED)
            root.mkdir(parents=True)
            (root / "again.py").write_text("x\n")
            await seen.wait_for(root / "again.py", ADDED)

    asyncio.run(main())


def test_content_and_mode_changes_count_and_an_access_time_alone_does_not(
    backend: Backend, tree: Path
) -> None:
    touched, chmodded, read = tree / "touched.py", tree / "run.sh", tree / "read.py"
    for path in (touched, chmodded, read):
        path.write_text("x\n")
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # long ago: any change shows

    async def main() -> None:
        async with backend.watcher() as watcher:
            seen = Recorder()
            await watcher.subscribe(backend.spec(tree), seen)
            subprocess.run(["touch", "-a", str(read)], check=True)  # touch -a: now
            os.utime(touched)  # touch: both times now
            await seen.wait_for(touched, MODIFIED)
            os.chmod(chmodded, 0o755)
            await seen.wait_for(chmodded, MODIFIED)
            (tree / "sentinel.py").write_text("x\n")
            await seen.wait_for(tree / "sentinel.py")
            assert not seen.saw(read)

    asyncio.run(main())


# ---- inotify only ---------------------------------------------------------------------

INOTIFY = Backend("inotify", InotifyWatcher)


class LossyKernel(InotifyKernel):
    """Throws away what it reads while ``losing``: events lost as in a queue overflow."""

    def __init__(self) -> None:
        super().__init__()
        self.losing = False
        self.lost = 0

    def read(self) -> list[RawEvent]:
        events = super().read()
        if self.losing:
            self.lost += len(events)
            return []
        return events


class LimitedKernel(InotifyKernel):
    """Fails like the kernel at ``fs.inotify.max_user_watches`` after *limit* watches."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.wds: set[int] = set()

    def add_watch(self, path: str, mask: int) -> int:
        wd = super().add_watch(path, mask)
        if wd not in self.wds and len(self.wds) >= self.limit:
            super().rm_watch(wd)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        self.wds.add(wd)
        return wd

    def rm_watch(self, wd: int) -> None:
        self.wds.discard(wd)
        super().rm_watch(wd)


def test_inotify_subscription_names_its_backend(tree: Path) -> None:
    async def main() -> None:
        async with INOTIFY.watcher() as watcher:
            subscription = await watcher.subscribe(INOTIFY.spec(tree), Recorder())
            assert subscription.backend == "inotify"

    asyncio.run(main())


def test_half_written_file_is_reported_only_once_closed(tree: Path) -> None:
    async def main() -> None:
        async with INOTIFY.watcher() as watcher:
            seen = Recorder()
            await watcher.subscribe(INOTIFY.spec(tree), seen)
            with open(tree / "slow.py", "w") as slow:
                slow.write("part one\n")
                slow.flush()
                os.chmod(tree / "slow.py", 0o600)
                (tree / "sentinel.py").write_text("x\n")
                await seen.wait_for(tree / "sentinel.py")
                assert not seen.saw(tree / "slow.py")
                slow.write("part two\n")
            await seen.wait_for(tree / "slow.py", ADDED)

    asyncio.run(main())


def test_overflow_reports_every_root_and_resynchronises(tmp_path: Path) -> None:
    base = tmp_path.resolve()
    one, two = base / "one", base / "two"
    os.makedirs(one)
    os.makedirs(two / "gone")
    kernel = LossyKernel()

    async def main() -> None:
        watcher = InotifyWatcher(lambda: kernel)
        try:
            first, second = Recorder(), Recorder()
            both = await watcher.subscribe(INOTIFY.spec(one, two), first)
            await watcher.subscribe(INOTIFY.spec(two), second)
            kernel.losing = True
            (two / "new").mkdir()
            (two / "gone").rmdir()
            await async_wait_until(lambda: kernel.lost >= 2, "the events to be read and lost")
            kernel.losing = False
            watcher.handle_events([RawEvent(-1, IN_Q_OVERFLOW, 0, "")])
            assert first.changes == [
                Change(ChangeKind.OVERFLOW, str(one)),
                Change(ChangeKind.OVERFLOW, str(two)),
            ]
            assert second.changes == [Change(ChangeKind.OVERFLOW, str(two))]
            # Resynchronised: the new directory is watched, the deleted one forgotten.
            assert both.watched_paths() == 3
            assert watcher.kernel_watches() == 3 + len(base.parents)  # and the way to base
            (two / "new" / "a.py").write_text("x\n")
            await first.wait_for(two / "new" / "a.py", ADDED)
            await second.wait_for(two / "new" / "a.py", ADDED)
        finally:
            await watcher.close()

    asyncio.run(main())


def test_watch_limit_raises_and_releases_what_the_subscription_added(tmp_path: Path) -> None:
    base = tmp_path.resolve()
    small, big = base / "small", base / "big"
    small.mkdir()
    for name in "abcde":
        os.makedirs(big / name)
    on_the_way = len(base.parents)  # watched for every root below base, shared
    kernel = LimitedKernel(limit=on_the_way + 1 + 3)

    async def main() -> None:
        watcher = InotifyWatcher(lambda: kernel)
        try:
            seen = Recorder()
            await watcher.subscribe(INOTIFY.spec(small), seen)
            with pytest.raises(WatchLimitError, match="max_user_watches"):
                await watcher.subscribe(INOTIFY.spec(big), Recorder())
            fd = watcher.fileno()
            assert fd is not None
            assert watcher.kernel_watches() == on_the_way + 1
            assert inotify_watches_in_kernel(fd) == on_the_way + 1
            (small / "still.py").write_text("x\n")
            await seen.wait_for(small / "still.py", ADDED)
        finally:
            await watcher.close()

    asyncio.run(main())


def test_watch_limit_reached_later_is_logged_and_watching_goes_on(
    tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kernel = LimitedKernel(limit=len(tree.parents) + 1)  # the tree, the way to it, and a/

    async def main() -> None:
        watcher = InotifyWatcher(lambda: kernel)
        try:
            seen = Recorder()
            await watcher.subscribe(INOTIFY.spec(tree), seen)
            (tree / "a").mkdir()
            (tree / "b").mkdir()
            await seen.wait_for(tree / "b", ADDED)
            (tree / "a" / "x.py").write_text("x\n")
            await seen.wait_for(tree / "a" / "x.py", ADDED)
        finally:
            await watcher.close()

    with caplog.at_level(logging.WARNING, logger="watchd.watch"):
        asyncio.run(main())
    assert "max_user_watches" in caplog.text


def test_a_failing_change_handler_harms_nothing_else(
    tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(batch: Sequence[Change]) -> None:
        raise RuntimeError("handler bug")

    async def main() -> None:
        async with INOTIFY.watcher() as watcher:
            seen = Recorder()
            await watcher.subscribe(INOTIFY.spec(tree), explode)
            await watcher.subscribe(INOTIFY.spec(tree), seen)
            for name in ("one.py", "two.py"):
                (tree / name).write_text("x\n")
                await seen.wait_for(tree / name, ADDED)

    with caplog.at_level(logging.ERROR, logger="watchd.watch"):
        asyncio.run(main())
    assert "handler bug" in caplog.text
