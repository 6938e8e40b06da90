"""WatchdReloader in this process, driven through Django's ``tick`` contract."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.wait import wait_until

pytest.importorskip("django")

from watchd.contrib.django import WatchdReloader


class RecordingReloader(WatchdReloader):
    """Records the files Django would reload for, instead of ending the process."""

    def __init__(self) -> None:
        super().__init__()
        self.notified: list[Path] = []

    def notify_file_changed(self, path: Path) -> None:
        self.notified.append(path)


@pytest.fixture
def reloader() -> Iterator[RecordingReloader]:
    made = RecordingReloader()
    yield made
    made.stop()


def watcher_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "watchd-reloader"]


def tick_until(ticker: Iterator[None], reloader: RecordingReloader, count: int) -> None:
    def enough() -> bool:
        next(ticker)
        return len(reloader.notified) >= count

    wait_until(enough, f"{count} files notified")


def test_a_second_tick_replaces_the_first_watcher(
    tmp_path: Path, reloader: RecordingReloader
) -> None:
    before = len(watcher_threads())
    reloader.extra_files.add(tmp_path / "settings.toml")
    first = reloader.tick()
    next(first)
    second = reloader.tick()
    next(second)

    wait_until(lambda: len(watcher_threads()) == before + 1, "the first watcher to stop")
    (tmp_path / "settings.toml").write_text("changed")
    tick_until(second, reloader, 1)
    assert reloader.notified == [tmp_path / "settings.toml"]


def test_a_deleted_file_is_reported_once_it_is_back(
    tmp_path: Path, reloader: RecordingReloader
) -> None:
    module, other = tmp_path / "views.py", tmp_path / "other.py"
    module.write_text("v1")
    other.write_text("v1")
    reloader.extra_files.update({module, other})
    ticker = reloader.tick()
    next(ticker)

    module.unlink()
    other.write_text("v2")  # seen after the deletion: by then the deletion was handled
    tick_until(ticker, reloader, 1)
    assert reloader.notified == [other]

    module.write_text("v2")
    tick_until(ticker, reloader, 2)
    assert reloader.notified == [other, module]


def test_a_file_beside_a_watched_one_is_not_a_change(
    tmp_path: Path, reloader: RecordingReloader
) -> None:
    module, beside = tmp_path / "views.py", tmp_path / "scratch.py"
    module.write_text("v1")
    beside.write_text("v1")
    reloader.extra_files.add(module)  # scratch.py was never imported: Django ignores it
    ticker = reloader.tick()
    next(ticker)

    beside.write_text("v2")
    module.write_text("v2")  # after the other: any report of scratch.py comes first
    tick_until(ticker, reloader, 1)
    assert reloader.notified == [module]
