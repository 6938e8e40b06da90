"""The reloader's watcher: watchd's WatchHub on an asyncio loop in a background thread.

Both sides of the reloader use it: the serving child (to exit 3 on a change while ``main``
owns the main thread) and the parent (to wait for a fix after a failure, or to restart a
command). Changes are debounced and handed to a callback on the watcher's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from watchd.watch.base import Backend, Change, OnChanges, Subscription, WatchSpec
from watchd.watch.choose import WatchHub
from watchd.watch.debounced import DebouncedCall
from watchd.watch.filters import PathFilter

log = logging.getLogger("watchd.reloader")

DEFAULT_DEBOUNCE = 0.05  # one editor save (write, rename, chmod) is one restart
DEBOUNCE_MAX = 2.0
ARM_TIMEOUT = 30.0
# Where inotify cannot serve: a change is seen within half a second, as a developer who
# saves and reloads the page expects (StatReloader looks once a second).
POLL_INTERVAL = 0.5

# Asynchronous signals the watcher thread must never take: Python runs handlers in the main
# thread only, and a signal landing here would not interrupt a main thread blocked in C.
_NOT_BLOCKED = {
    signal.SIGKILL,
    signal.SIGSTOP,
    signal.SIGSEGV,
    signal.SIGBUS,
    signal.SIGFPE,
    signal.SIGILL,
    signal.SIGTRAP,
    signal.SIGSYS,
    signal.SIGABRT,
    signal.SIGPIPE,
    signal.SIGXFSZ,
}
ASYNC_SIGNALS = frozenset(signal.valid_signals()) - _NOT_BLOCKED

OnPaths = Callable[[list[str]], None]


@dataclass(frozen=True)
class WatchOptions:
    """What to watch besides the program's modules, and how."""

    extra_files: tuple[Path, ...] = ()  # files, or directories (recursively)
    extra_patterns: tuple[str, ...] = ()  # gitignore-style; a change in a directory must match
    exclude_patterns: tuple[str, ...] = ()  # gitignore-style; added to the editor defaults
    backend: Backend = Backend.AUTO
    debounce: float = DEFAULT_DEBOUNCE

    @classmethod
    def build(
        cls,
        extra_files: Iterable[str | os.PathLike[str]] = (),
        extra_patterns: Iterable[str] = (),
        backend: Backend | str = Backend.AUTO,
        debounce: float = DEFAULT_DEBOUNCE,
        exclude_patterns: Iterable[str] = (),
    ) -> WatchOptions:
        files = tuple(Path(os.path.abspath(path)) for path in extra_files)
        return cls(
            files, tuple(extra_patterns), tuple(exclude_patterns), Backend(backend), debounce
        )

    def directory_filter(self) -> PathFilter:
        return PathFilter(self.extra_patterns, self.exclude_patterns)

    def extra_specs(self) -> list[WatchSpec]:
        """Named files are watched as they are; directories through ``extra_patterns``."""
        files = [path for path in self.extra_files if path.is_file()]
        others = [path for path in self.extra_files if not path.is_file()]
        specs = file_specs((str(path) for path in files), self.backend)
        if others:
            specs.append(WatchSpec(tuple(others), self.directory_filter(), POLL_INTERVAL))
        return [spec for spec in specs if spec.roots]


class FilesFilter(PathFilter):
    """Files directly in a root directory, by name; nothing below it is watched. Where
    several roots share the filter, ``files`` (the absolute paths) says which name counts
    in which directory: the watcher drops the rest before they count as a change."""

    def __init__(self, files: Iterable[str]) -> None:
        super().__init__(default_excludes=False)
        self.files = frozenset(files)
        self.names = frozenset(os.path.basename(path) for path in self.files)

    def accepts(self, relpath: str, is_dir: bool = False) -> bool:
        return not is_dir and relpath in self.names

    def wanted(self, relpath: str, is_dir: bool = False) -> bool:
        return self.accepts(relpath, is_dir)

    def prunes(self, reldir: str) -> bool:
        return bool(reldir) and reldir != "."

    def _key(self) -> tuple[object, ...]:
        return ("files", self.files)


def file_specs(files: Iterable[str], backend: Backend = Backend.AUTO) -> list[WatchSpec]:
    """Exactly these files. For inotify, one spec whose roots are their directories: a
    directory costs one watch (and the watches on the way to it are set up once) however
    many modules it holds, where a thousand modules as file roots each set up their own
    way from ``/``, which took seconds. A file that is a symlink is a file root of its own,
    so that its target is watched too. Polling looks at file roots alone, which costs
    less than listing their directories every interval."""
    plain: list[str] = []
    links: list[str] = []
    for path in files:
        if backend is Backend.POLL or os.path.islink(path):
            links.append(path)
        else:
            plain.append(path)
    specs = []
    if plain:
        directories = sorted({Path(os.path.dirname(path)) for path in plain})
        specs.append(WatchSpec(tuple(directories), FilesFilter(plain), POLL_INTERVAL))
    if links:
        roots = tuple(Path(path) for path in sorted(links))
        specs.append(WatchSpec(roots, PathFilter(default_excludes=False), POLL_INTERVAL))
    return specs


def source_dir_spec(directories: Iterable[str]) -> WatchSpec:
    """New or changed ``*.py`` files directly in these directories (not below them)."""
    return WatchSpec(
        tuple(Path(path) for path in sorted(directories)),
        PathFilter(include=["*.py"], exclude=["*/"]),
        POLL_INTERVAL,
    )


def present(paths: Iterable[str]) -> list[str]:
    """The *paths* that exist. A module file that was deleted is not a change to reload
    for (the new process would fail to import it): its return is."""
    return [path for path in paths if os.path.lexists(path)]


def _watched(specs: Sequence[WatchSpec]) -> list[str]:
    """What *specs* watch, as a log line names them: the files where they are named."""
    named: list[str] = []
    for spec in specs:
        if isinstance(spec.filter, FilesFilter):
            named += sorted(spec.filter.files)
        else:
            named += [str(root) for root in spec.roots]
    return named


class WatchThread:
    """Runs the watches; calls ``on_change(paths)`` on its own thread once changes settle.

    ``refresh``, if given, is called every ``refresh_interval`` seconds on the watcher's
    thread and returns specs to add (the modules imported since the last call).
    """

    def __init__(
        self,
        on_change: OnPaths,
        *,
        backend: Backend = Backend.AUTO,
        debounce: float = DEFAULT_DEBOUNCE,
        refresh: Callable[[], Sequence[WatchSpec]] | None = None,
        refresh_interval: float = 0.5,
    ) -> None:
        self._on_change = on_change
        self._backend = backend
        self._refresh = refresh
        self._refresh_interval = refresh_interval
        self.debounce = debounce
        self._burst = DebouncedCall(debounce, max(debounce, DEBOUNCE_MAX), self._burst_over)
        self._changed: dict[str, None] = {}  # paths of the burst, in order, without repeats
        self._thread = threading.Thread(target=self._run, name="watchd-reloader", daemon=True)
        self._initial: list[WatchSpec] = []
        self._armed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._hub: WatchHub | None = None
        self._subscriptions: list[Subscription] = []
        self._error: BaseException | None = None

    @property
    def backend(self) -> str:
        """The first subscription's backend: ``inotify``, or ``poll`` (and why)."""
        return self._subscriptions[0].backend if self._subscriptions else "none"

    def watched_paths(self) -> int:
        return sum(subscription.watched_paths() for subscription in self._subscriptions)

    def start(self, specs: Sequence[WatchSpec], timeout: float = ARM_TIMEOUT) -> None:
        """Start the thread; return once *specs* are armed (or after *timeout*)."""
        self._initial = list(specs)
        self._thread.start()
        if not self._armed.wait(timeout):
            log.warning("watchd.reloader: watches not armed after %.0fs; going on", timeout)
        if self._error is not None:
            raise self._error

    def add(self, specs: Sequence[WatchSpec], wait: bool = False) -> None:
        """Watch *specs* too; callable from any thread."""
        if self._loop is None or not specs:
            return
        future = asyncio.run_coroutine_threadsafe(self._subscribe(specs, announce=True), self._loop)
        if wait:
            future.result(ARM_TIMEOUT)

    def stop(self, timeout: float = 5.0) -> None:
        """Release the watches and end the thread."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # ---- on the watcher's thread ----------------------------------------------------

    def _run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, ASYNC_SIGNALS)
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported by start(), or logged
            if not self._armed.is_set():
                self._error = error
            else:
                log.exception("watchd.reloader: the watcher stopped")
        finally:
            self._armed.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        hub = WatchHub()
        self._hub = hub
        refresher: asyncio.Task[None] | None = None
        try:
            await self._subscribe(self._initial)
            self._armed.set()
            if self._refresh is not None:
                refresher = asyncio.create_task(self._refresh_forever(self._refresh))
            await self._stop.wait()
        finally:
            if refresher is not None:
                refresher.cancel()
            self._burst.cancel()
            for subscription in self._subscriptions:
                await subscription.close()
            await hub.close()

    async def _subscribe(self, specs: Sequence[WatchSpec], announce: bool = False) -> None:
        assert self._hub is not None
        for spec in specs:
            if spec.roots:
                on_changes: OnChanges = self._on_changes
                if isinstance(spec.filter, FilesFilter):
                    on_changes = functools.partial(self._on_files, spec.filter.files)
                subscription = await self._hub.subscribe(spec, self._backend, on_changes)
                self._subscriptions.append(subscription)
        if announce and specs:
            log.debug("watchd.reloader: now watching %s", ", ".join(_watched(specs)))

    async def _refresh_forever(self, refresh: Callable[[], Sequence[WatchSpec]]) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval)
            try:
                await self._subscribe(refresh(), announce=True)
            except Exception:
                log.exception("watchd.reloader: could not watch newly imported modules")

    def _on_files(self, files: frozenset[str], batch: Sequence[Change]) -> None:
        self._on_changes([change for change in batch if change.path in files])

    def _on_changes(self, batch: Sequence[Change]) -> None:
        if not batch:
            return
        for change in batch:
            self._changed[change.path] = None
        self._burst.poke()

    def _burst_over(self) -> None:
        paths = list(self._changed)
        self._changed.clear()
        self._on_change(paths)
