"""The poll backend: rescan each subscription's roots every ``poll_interval`` seconds.

For file systems where inotify is blind (NFS and other network or FUSE file systems) and as
the fallback when inotify runs out of watches. Scans run on a small thread pool owned by
the watcher, so the event loop never waits for the disk; a subscription's next scan is
scheduled only after its previous one has finished, so slow scans never pile up.

A scan that finds changes is followed, ``SETTLE`` seconds later, by another; the changes are
delivered once a scan finds nothing new (or after the spec's ``settle_max``), so that an
operation several scans long (a ``git checkout``, an ``rsync``) is one batch, as inotify's
debounced events are.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable

from watchd.watch.base import Change, ChangeKind, OnChanges, WatchSpec
from watchd.watch.scan import ScanAborted, Scanner

log = logging.getLogger("watchd.watch")

# Two threads: one long scan of a big tree does not hold up every other subscription, and
# scans, mostly Python under the GIL, gain nothing from more.
MAX_SCAN_THREADS = 2
# A zero interval would rescan without pause: one core spent on nothing.
MIN_INTERVAL = 0.01
# The wait before the scan that checks whether the tree has settled (at most the interval).
SETTLE = 0.25

# What a path's pending change becomes when a later scan sees it change again: a file
# written while one scan read it is seen added, then modified, and is one addition.
_FOLDED: dict[tuple[ChangeKind, ChangeKind], ChangeKind | None] = {
    (ChangeKind.ADDED, ChangeKind.MODIFIED): ChangeKind.ADDED,
    (ChangeKind.ADDED, ChangeKind.DELETED): None,  # came and went: nothing to report
    (ChangeKind.DELETED, ChangeKind.ADDED): ChangeKind.MODIFIED,
    (ChangeKind.MODIFIED, ChangeKind.DELETED): ChangeKind.DELETED,
}


def fold(pending: dict[str, ChangeKind], changes: list[Change]) -> None:
    """Merge one scan's changes into ``pending``: one change per path, in first-seen order."""
    for change in changes:
        before = pending.get(change.path)
        if before is None:
            pending[change.path] = change.kind
            continue
        after = _FOLDED.get((before, change.kind), before)
        if after is None:
            del pending[change.path]
        else:
            pending[change.path] = after


class PollSubscription:
    """One spec's periodic scans; changes are handed to ``on_changes`` on the event loop."""

    def __init__(
        self,
        spec: WatchSpec,
        on_changes: OnChanges,
        executor: concurrent.futures.ThreadPoolExecutor,
        backend: str = "poll",
        on_close: Callable[[PollSubscription], None] | None = None,
    ) -> None:
        self._scanner = Scanner(spec.roots, spec.filter)
        self._interval = max(MIN_INTERVAL, spec.poll_interval)
        self._settle = min(self._interval, SETTLE)
        self._settle_max = spec.settle_max
        self._on_changes = on_changes
        self._executor = executor
        self._backend = backend
        self._on_close = on_close
        self._task: asyncio.Task[None] | None = None
        self._scanning: concurrent.futures.Future[list[Change]] | None = None
        self._closed = False

    @property
    def backend(self) -> str:
        return self._backend

    def watched_paths(self) -> int:
        return self._scanner.watched_paths()

    async def arm(self) -> None:
        """Take the first snapshot, then start polling: a change made once this returns
        is seen by the next scan."""
        await self._scan()
        if not self._closed:
            name = f"watchd-poll {' '.join(self._scanner.roots)}"[:200]
            self._task = asyncio.get_running_loop().create_task(self._poll_forever(), name=name)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._scanner.aborted = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        scanning = self._scanning
        if scanning is not None and not scanning.done():
            # Wait for the thread to notice the abort, so nothing touches the tree after this.
            waiter = asyncio.wrap_future(scanning)
            await asyncio.wait([waiter])
            if not waiter.cancelled():
                waiter.exception()  # ScanAborted, expected: retrieved so it is not logged
        if self._on_close is not None:
            self._on_close(self)

    async def _poll_forever(self) -> None:
        loop = asyncio.get_running_loop()
        pending: dict[str, ChangeKind] = {}
        since = 0.0
        while True:
            await asyncio.sleep(self._settle if pending else self._interval)
            try:
                changes = await self._scan()
            except ScanAborted:
                return
            except Exception:  # a bug in the scan must not end the watch
                log.exception("poll scan of %s failed", ", ".join(self._scanner.roots))
                continue
            if self._closed:
                return
            if changes:
                if not pending:
                    since = loop.time()
                fold(pending, changes)
                if loop.time() - since < self._settle_max:
                    continue
            if pending:
                batch = [Change(kind, path) for path, kind in pending.items()]
                pending = {}
                self._deliver(batch)

    async def _scan(self) -> list[Change]:
        self._scanning = self._executor.submit(self._scanner.rescan)
        return await asyncio.wrap_future(self._scanning)

    def _deliver(self, changes: list[Change]) -> None:
        try:
            self._on_changes(changes)
        except Exception:
            log.exception("handling changes under %s failed", ", ".join(self._scanner.roots))


class PollWatcher:
    """The poll backend (the ``Watcher`` protocol); owns the threads every scan runs on."""

    def __init__(self, max_threads: int = MAX_SCAN_THREADS) -> None:
        # Threads are started on the first scan, not here.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_threads, thread_name_prefix="watchd-poll"
        )
        self._subscriptions: set[PollSubscription] = set()
        self._closed = False

    async def subscribe(
        self, spec: WatchSpec, on_changes: OnChanges, *, reason: str | None = None
    ) -> PollSubscription:
        """Poll *spec*'s roots; *reason*, when given, says why poll serves instead of
        inotify and becomes part of the subscription's ``backend``."""
        if self._closed:
            raise RuntimeError("the poll watcher is closed")
        backend = "poll" if reason is None else f"poll ({reason})"
        subscription = PollSubscription(
            spec, on_changes, self._executor, backend, self._subscriptions.discard
        )
        self._subscriptions.add(subscription)
        try:
            await subscription.arm()
        except BaseException:
            await subscription.close()
            raise
        return subscription

    async def close(self) -> None:
        self._closed = True
        for subscription in list(self._subscriptions):
            await subscription.close()
        # No scan is running any more, so this only stops idle threads.
        self._executor.shutdown(wait=True)
