"""The poll backend's own promises, beyond the contract every backend keeps."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.helpers.wait import async_wait_until
from watchd.watch.base import Change, ChangeKind, WatchSpec
from watchd.watch.filters import PathFilter
from watchd.watch.poll import PollSubscription, PollWatcher, fold
from watchd.watch.scan import Scanner

INTERVAL = 0.05
# Generous for a noisy machine, yet far below the 1 s default interval.
WITHIN = 100 * INTERVAL


class Collector:
    """Records every batch a subscription delivers."""

    def __init__(self) -> None:
        self.changes: list[Change] = []

    def __call__(self, batch: Sequence[Change]) -> None:
        self.changes.extend(batch)

    def saw(self, kind: ChangeKind, path: Path) -> bool:
        return Change(kind, str(path)) in self.changes

    def paths(self) -> set[str]:
        return {change.path for change in self.changes}

    async def wait(self, kind: ChangeKind, path: Path, timeout: float = WITHIN) -> None:
        await async_wait_until(lambda: self.saw(kind, path), f"{kind} {path}", timeout)


@asynccontextmanager
async def polling(
    *roots: Path, path_filter: PathFilter | None = None, interval: float = INTERVAL
) -> AsyncIterator[tuple[PollSubscription, Collector]]:
    watcher = PollWatcher()
    collector = Collector()
    spec = WatchSpec(roots, path_filter or PathFilter(), interval)
    try:
        yield await watcher.subscribe(spec, collector), collector
    finally:
        await watcher.close()


def write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_created_modified_and_deleted_files_are_reported(tmp_path: Path) -> None:
    async def main() -> None:
        async with polling(tmp_path) as (_, seen):
            path = write(tmp_path / "app.py", "one")
            await seen.wait(ChangeKind.ADDED, path)
            path.write_text("two, longer")
            await seen.wait(ChangeKind.MODIFIED, path)
            path.unlink()
            await seen.wait(ChangeKind.DELETED, path)

    asyncio.run(main())


def test_an_mtime_set_back_with_the_same_size_is_a_change(tmp_path: Path) -> None:
    path = write(tmp_path / "app.py")
    now = time.time_ns()
    os.utime(path, ns=(now, now))

    async def main() -> None:
        async with polling(tmp_path) as (_, seen):
            os.utime(path, ns=(now - 10**10, now - 10**10))
            await seen.wait(ChangeKind.MODIFIED, path)

    asyncio.run(main())


def test_a_file_replaced_by_one_of_the_same_size_and_mtime_is_a_change(tmp_path: Path) -> None:
    path, other = write(tmp_path / "app.py", "a"), write(tmp_path / "new.py", "b")
    now = time.time_ns()
    for each in (path, other):
        os.utime(each, ns=(now, now))

    async def main() -> None:
        async with polling(tmp_path) as (_, seen):
            os.rename(other, path)  # only the inode tells them apart
            await seen.wait(ChangeKind.MODIFIED, path)
            await seen.wait(ChangeKind.DELETED, other)

    asyncio.run(main())


class SlowFilter(PathFilter):
    """Burns CPU (holding the GIL) for every path it is asked about."""

    def accepts(self, relpath: str, is_dir: bool = False) -> bool:
        end = time.perf_counter() + 0.0003
        while time.perf_counter() < end:
            pass
        return super().accepts(relpath, is_dir)


def test_a_long_scan_never_blocks_the_event_loop(tmp_path: Path) -> None:
    for number in range(1500):
        write(tmp_path / f"d{number % 10}" / f"f{number}.py")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ticks: list[float] = []

        async def heartbeat() -> None:
            while True:
                ticks.append(loop.time())
                await asyncio.sleep(0.005)

        beating = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        start = loop.time()
        async with polling(tmp_path, path_filter=SlowFilter()):
            end = loop.time()
        beating.cancel()
        await asyncio.wait([beating])
        during = [start, *(tick for tick in ticks if start < tick < end), end]
        longest_gap = max(later - earlier for earlier, later in itertools.pairwise(during))
        assert end - start > 0.3, "the scan was meant to take a while"
        assert len(during) > 10
        assert longest_gap < (end - start) / 2

    asyncio.run(main())


class RecordingFilter(PathFilter):
    """Remembers every path it was asked about."""

    def __init__(self, exclude: Sequence[str]) -> None:
        super().__init__(exclude=exclude)
        self.asked: list[str] = []

    def accepts(self, relpath: str, is_dir: bool = False) -> bool:
        self.asked.append(relpath)
        return super().accepts(relpath, is_dir)

    def prunes(self, reldir: str) -> bool:
        self.asked.append(reldir)
        return super().prunes(reldir)


def test_pruned_directories_are_never_scanned(tmp_path: Path) -> None:
    write(tmp_path / "node_modules" / "left-pad" / "index.js")
    write(tmp_path / "src" / "app.py")
    path_filter = RecordingFilter(exclude=["node_modules/"])

    async def main() -> None:
        async with polling(tmp_path, path_filter=path_filter) as (subscription, seen):
            assert subscription.watched_paths() == 3  # src, src/app.py and the root itself
            write(tmp_path / "node_modules" / "left-pad" / "new.js")
            sentinel = write(tmp_path / "src" / "later.py")
            await seen.wait(ChangeKind.ADDED, sentinel)
        assert seen.paths() == {str(sentinel)}
        assert not [path for path in path_filter.asked if path.startswith("node_modules/")]

    asyncio.run(main())


def test_the_filter_is_asked_about_each_path_once(tmp_path: Path) -> None:
    write(tmp_path / "src" / "app.py")
    write(tmp_path / "src" / "app.pyc")
    path_filter = RecordingFilter(exclude=[])

    async def main() -> None:
        async with polling(tmp_path, path_filter=path_filter) as (_, seen):
            sentinel = write(tmp_path / "src" / "later.py")
            await seen.wait(ChangeKind.ADDED, sentinel)
            await seen.wait(ChangeKind.MODIFIED, write(sentinel, "longer"))
        assert sorted(path_filter.asked) == sorted(
            ["src", "src", "src/app.py", "src/app.pyc", "src/later.py"]  # prunes, then accepts
        )

    asyncio.run(main())


def test_a_root_that_does_not_exist_yet_is_reported_when_it_appears(tmp_path: Path) -> None:
    root = tmp_path / "later"

    async def main() -> None:
        async with polling(root) as (subscription, seen):
            assert subscription.watched_paths() == 0
            path = write(root / "pkg" / "app.py")
            await seen.wait(ChangeKind.ADDED, path)
            assert seen.saw(ChangeKind.ADDED, root)
            assert seen.saw(ChangeKind.ADDED, root / "pkg")
            shutil.rmtree(root)
            await seen.wait(ChangeKind.DELETED, path)
            assert seen.saw(ChangeKind.DELETED, root)

    asyncio.run(main())


def test_a_file_root_watches_that_file_only(tmp_path: Path) -> None:
    config = write(tmp_path / "watchd.yaml", "a: 1")
    neighbour = write(tmp_path / "notes.txt")

    async def main() -> None:
        async with polling(config) as (subscription, seen):
            assert subscription.watched_paths() == 1
            write(neighbour, "changed")
            config.write_text("a: 22")
            await seen.wait(ChangeKind.MODIFIED, config)
        assert seen.paths() == {str(config)}

    asyncio.run(main())


def test_symlinks_in_the_tree_are_not_followed(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside" / "lib.py").parent
    root = tmp_path / "root"
    root.mkdir()
    link = root / "lib"
    link.symlink_to(outside, target_is_directory=True)

    async def main() -> None:
        async with polling(root) as (subscription, seen):
            assert subscription.watched_paths() == 2  # the root and the link itself
            write(outside / "lib.py", "changed behind the link")
            link.unlink()
            link.symlink_to(tmp_path)  # retargeted: a new inode
            await seen.wait(ChangeKind.MODIFIED, link)
        assert seen.paths() == {str(link)}

    asyncio.run(main())


def sabotaging_filter(when: str, action: Callable[[], object]) -> PathFilter:
    """A filter that runs *action*, once, when first asked about the path *when*."""
    pending = [action]

    class Sabotage(PathFilter):
        def accepts(self, relpath: str, is_dir: bool = False) -> bool:
            self._sabotage(relpath)
            return super().accepts(relpath, is_dir)

        def prunes(self, reldir: str) -> bool:
            self._sabotage(reldir)
            return super().prunes(reldir)

        def _sabotage(self, relpath: str) -> None:
            if relpath == when and pending:
                pending.pop()()

    return Sabotage()


def test_a_directory_vanishing_mid_scan_is_skipped(tmp_path: Path) -> None:
    doomed = write(tmp_path / "doomed" / "a.py").parent
    write(tmp_path / "kept.py")
    scanner = Scanner([tmp_path], sabotaging_filter("doomed", lambda: shutil.rmtree(doomed)))
    scanner.rescan()  # the first scan: everything is new
    assert f"{doomed}/" not in scanner.snapshot
    assert set(scanner.snapshot[f"{tmp_path}/"]) == {"kept.py", "doomed"}
    assert scanner.rescan() == [Change(ChangeKind.DELETED, str(doomed))]


def test_a_file_vanishing_between_listing_and_stat_is_skipped(tmp_path: Path) -> None:
    doomed = write(tmp_path / "doomed.py")
    write(tmp_path / "kept.py")
    scanner = Scanner([tmp_path], sabotaging_filter("doomed.py", doomed.unlink))
    scanner.rescan()
    assert set(scanner.snapshot[f"{tmp_path}/"]) == {"kept.py"}
    assert scanner.rescan() == []


def test_an_unreadable_directory_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = write(tmp_path / "secret" / "key.pem").parent
    write(tmp_path / "app.py")
    if os.geteuid() == 0:  # root reads every directory: make this one refuse
        real_open = os.open

        def refusing_open(path: str, flags: int, *args: int, **kwargs: int) -> int:
            if path == str(secret):
                raise PermissionError(13, "Permission denied", path)
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refusing_open)
    secret.chmod(0)
    try:
        scanner = Scanner([tmp_path], PathFilter())
        scanner.rescan()
        assert set(scanner.snapshot[f"{tmp_path}/"]) == {"app.py", "secret"}
        assert f"{secret}/" not in scanner.snapshot
        assert scanner.rescan() == []
    finally:
        secret.chmod(0o755)


def test_scans_never_overlap_and_each_waits_a_full_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: list[float] = []
    ends: list[float] = []
    running = 0
    most = 0
    lock = threading.Lock()
    rescan = Scanner.rescan

    def slow_rescan(scanner: Scanner) -> list[Change]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            starts.append(time.monotonic())
        time.sleep(0.03)
        try:
            return rescan(scanner)
        finally:
            with lock:
                running -= 1
                ends.append(time.monotonic())

    monkeypatch.setattr(Scanner, "rescan", slow_rescan)

    async def main() -> None:
        async with polling(tmp_path, interval=0.01):
            await async_wait_until(lambda: len(ends) >= 6, "six scans")

    asyncio.run(main())
    assert most == 1
    assert all(start - end >= 0.009 for end, start in zip(ends, starts[1:], strict=False))


def test_closing_stops_the_scans_and_their_threads(tmp_path: Path) -> None:
    async def main() -> None:
        watcher = PollWatcher()
        closed, kept = Collector(), Collector()
        spec = WatchSpec((tmp_path,), PathFilter(), INTERVAL)
        subscription = await watcher.subscribe(spec, closed)
        await watcher.subscribe(spec, kept)
        await subscription.close()
        sentinel = write(tmp_path / "app.py")
        await kept.wait(ChangeKind.ADDED, sentinel)
        assert closed.changes == []
        await watcher.close()

    asyncio.run(main())
    assert not [thread for thread in threading.enumerate() if "watchd-poll" in thread.name]


def test_backend_says_why_poll_serves(tmp_path: Path) -> None:
    async def main() -> None:
        watcher = PollWatcher()
        spec = WatchSpec((tmp_path,), PathFilter(), INTERVAL)
        try:
            plain = await watcher.subscribe(spec, Collector())
            fallback = await watcher.subscribe(
                spec, Collector(), reason="inotify watch limit reached"
            )
            assert plain.backend == "poll"
            assert fallback.backend == "poll (inotify watch limit reached)"
        finally:
            await watcher.close()

    asyncio.run(main())


def test_a_failing_callback_does_not_end_the_watch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Collector()

    def flaky(batch: Sequence[Change]) -> None:
        seen(batch)
        if len(seen.changes) == 1:
            raise RuntimeError("handler bug")

    async def main() -> None:
        watcher = PollWatcher()
        try:
            await watcher.subscribe(WatchSpec((tmp_path,), PathFilter(), INTERVAL), flaky)
            write(tmp_path / "first.py")
            await async_wait_until(lambda: seen.changes, "the first change")
            second = write(tmp_path / "second.py")
            await seen.wait(ChangeKind.ADDED, second)
        finally:
            await watcher.close()

    asyncio.run(main())
    assert "handler bug" in caplog.text


def test_an_operation_longer_than_a_scan_interval_is_delivered_as_one_batch(
    tmp_path: Path,
) -> None:
    """A checkout or an rsync that several scans land in is one batch, not one per scan."""
    batches: list[Sequence[Change]] = []
    interval = 0.1
    written = 40

    async def main() -> None:
        watcher = PollWatcher()
        spec = WatchSpec((tmp_path,), PathFilter(), interval, settle_max=60.0)
        try:
            await watcher.subscribe(spec, batches.append)
            # Spread over about four intervals, never pausing for a whole one.
            for number in range(written):
                write(tmp_path / f"f{number}.py")
                await asyncio.sleep(interval / 10)
            await async_wait_until(lambda: batches, "the batch")
            # A later change is a batch of its own.
            write(tmp_path / "later.py")
            await async_wait_until(lambda: len(batches) >= 2, "a second batch")
        finally:
            await watcher.close()

    asyncio.run(main())
    assert len(batches[0]) == written
    assert batches[1] == [Change(ChangeKind.ADDED, str(tmp_path / "later.py"))]


def test_a_tree_that_never_settles_is_still_delivered_within_settle_max(tmp_path: Path) -> None:
    batches: list[Sequence[Change]] = []
    stop = False

    async def keep_writing() -> None:
        for number in itertools.count():
            if stop:
                return
            write(tmp_path / f"f{number}.py")
            await asyncio.sleep(0.01)

    async def main() -> None:
        nonlocal stop
        watcher = PollWatcher()
        spec = WatchSpec((tmp_path,), PathFilter(), 0.05, settle_max=0.3)
        writer = asyncio.get_running_loop().create_task(keep_writing())
        try:
            await watcher.subscribe(spec, batches.append)
            await async_wait_until(lambda: len(batches) >= 2, "batches while writes go on")
        finally:
            stop = True
            await writer
            await watcher.close()

    asyncio.run(main())
    assert all(batches)


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        ([ChangeKind.ADDED, ChangeKind.MODIFIED], [ChangeKind.ADDED]),
        ([ChangeKind.ADDED, ChangeKind.DELETED], []),
        ([ChangeKind.DELETED, ChangeKind.ADDED], [ChangeKind.MODIFIED]),
        ([ChangeKind.MODIFIED, ChangeKind.DELETED], [ChangeKind.DELETED]),
        ([ChangeKind.MODIFIED, ChangeKind.MODIFIED], [ChangeKind.MODIFIED]),
        ([ChangeKind.ADDED, ChangeKind.MODIFIED, ChangeKind.DELETED], []),
    ],
)
def test_scans_that_see_one_path_change_again_fold_into_one_change(
    seen: list[ChangeKind], expected: list[ChangeKind]
) -> None:
    """A file caught half-written by one scan is added, then modified: one addition."""
    pending: dict[str, ChangeKind] = {"/other": ChangeKind.MODIFIED}
    for kind in seen:
        fold(pending, [Change(kind, "/f")])
    assert [kind for path, kind in pending.items() if path == "/f"] == expected
    assert pending["/other"] is ChangeKind.MODIFIED
