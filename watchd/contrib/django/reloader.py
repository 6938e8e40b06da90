"""A Django ``BaseReloader`` driven by watchd's inotify watching (poll as a fallback)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from django.utils import autoreload  # type: ignore[import-untyped]

from watchd.reloader.exiting import RELOAD_STATUS, exit_now
from watchd.reloader.globs import GlobFilter
from watchd.reloader.watching import POLL_INTERVAL, WatchThread, file_specs, present
from watchd.watch.base import Backend, WatchSpec

log = logging.getLogger("watchd.reloader")

# How often to look for modules imported since the last look (a request can import new
# ones). Changes themselves wake the reloader at once; this is not a poll of the files.
RESCAN_INTERVAL = 1.0


class WatchdReloader(autoreload.BaseReloader):  # type: ignore[misc]
    """Django's reloader contract (``tick`` yields, ``notify_file_changed`` decides) with
    ``tick`` blocked on an event that watchd's watcher thread sets, instead of a sleep."""

    backend = Backend.AUTO  # inotify, falling back to polling by itself
    # Only the events for the files Django watches count, and an editor's save is one of
    # them (the rename over the old file, or the close after writing in place): the quiet
    # window need only merge a git checkout's writes, which come back to back.
    debounce = 0.02

    def __init__(self) -> None:
        super().__init__()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._changed: list[str] = []
        self._files: set[Path] = set()
        self._globs: set[tuple[Path, str]] = set()
        self._mark: tuple[object, ...] = ()
        self._watcher: WatchThread | None = None

    def run(self, django_main_thread: threading.Thread) -> None:
        try:
            super().run(django_main_thread)
        except SystemExit as stop:
            if stop.code == RELOAD_STATUS and os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV):
                exit_now(RELOAD_STATUS)
            raise

    @classmethod
    def check_availability(cls) -> bool:
        return True  # the watcher falls back to polling by itself

    def tick(self) -> Iterator[None]:
        if self._watcher is not None:
            self._watcher.stop()  # a second tick() replaces the first one's watches
        self._files, self._globs, self._mark = set(), set(), ()
        watcher = self._watcher = WatchThread(
            self._on_change, backend=self.backend, debounce=self.debounce
        )
        specs, files = self._new_specs()
        watcher.start(specs)
        # Django has said "Watching for file changes with WatchdReloader"; these lines (not
        # shown unless the watchd logger is configured) say the watches are armed.
        log.info("watchd.reloader: watching %d files with %s", len(self._files), watcher.backend)
        self._announce_broken(files)
        while True:
            yield
            self._wake.wait(self._tick_timeout(watcher))
            self._wake.clear()
            for path in self._take_changes():
                self.notify_file_changed(Path(path))  # exits 3 unless a receiver handled it
            specs, files = self._new_specs()
            watcher.add(specs, wait=True)
            self._announce_broken(files)

    @staticmethod
    def _tick_timeout(watcher: WatchThread) -> float:
        """How long one tick waits for a change. Polling sees a change up to one interval
        late, and Django expects a change made between two ticks to be seen by the second."""
        if watcher.backend.startswith("poll"):
            return max(RESCAN_INTERVAL, 2 * POLL_INTERVAL + watcher.debounce)
        return RESCAN_INTERVAL

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        self._wake.set()
        super().stop()

    def _on_change(self, paths: list[str]) -> None:
        """On the watcher's thread."""
        with self._lock:
            self._changed.extend(paths)
        self._wake.set()

    def _take_changes(self) -> list[str]:
        """Changed files that exist: as with StatReloader, a deleted module is not a change
        (a new server would fail to import it); its return is."""
        with self._lock:
            changed, self._changed = self._changed, []
        return present(dict.fromkeys(changed))

    def _new_specs(self) -> tuple[list[WatchSpec], set[Path]]:
        """Specs for module files, extra files and ``watch_dir`` globs not watched yet, and
        those new files. Django's file list is only rebuilt when what feeds it has grown."""
        mark = self._fingerprint()
        if mark == self._mark:
            return [], set()
        self._mark = mark
        files = set(self.watched_files(include_globs=False)) - self._files
        self._files |= files
        specs = file_specs((str(path) for path in files), self.backend)
        for directory, patterns in list(self.directory_globs.items()):
            for pattern in sorted(patterns):
                if (directory, pattern) not in self._globs:
                    self._globs.add((directory, pattern))
                    specs.append(
                        WatchSpec((directory,), GlobFilter(pattern), poll_interval=POLL_INTERVAL)
                    )
        return specs, files

    def _announce_broken(self, files: set[Path]) -> None:
        """Name the newly watched files that failed to import: their fix is awaited."""
        broken = {Path(name).resolve() for name in autoreload._error_files}
        for path in sorted(files & broken):
            log.info("watchd.reloader: watching %s, which failed to load", path)

    def _fingerprint(self) -> tuple[object, ...]:
        modules = sys.modules
        return (
            len(modules),
            next(reversed(modules), None),
            len(autoreload._error_files),
            len(self.extra_files),
            sum(len(patterns) for patterns in self.directory_globs.values()),
        )


def get_reloader() -> WatchdReloader:
    return WatchdReloader()


def install() -> None:
    """Make ``django.utils.autoreload.run_with_reloader`` (runserver) use WatchdReloader."""
    autoreload.get_reloader = get_reloader
