"""One job's watch, as its config describes it: the filter (with ``.gitignore`` files read
again when they change), the subscription through the hub, the job's own output file left
out, and the holds (``watchctl hold``, a git or Mercurial operation in progress).

Holding is a gate in front of the job: while held, changes are kept here and the job hears
nothing; when the hold ends it hears of them once, as one batch. The job's state machine
needs no state for it (a held job is still ``running``, ``stopped``, …).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from watchd.config.model import FileOutput, JobConfig, WatchConfig
from watchd.watch import vcs
from watchd.watch.base import Change, OnChanges, Subscription, WatchSpec
from watchd.watch.choose import OnFallback, WatchHub
from watchd.watch.filters import GITIGNORE, PathFilter
from watchd.watch.holds import MANUAL, STALE_AFTER, Holds

log = logging.getLogger("watchd.watch")

# How a runner gets its job's watch: the daemon decides where the watches come from.
WatchFactory = Callable[[JobConfig, OnChanges], "JobWatch"]

# How often the locks are looked at again while one holds a job's changes.
LOCK_CHECK = 0.1

# Told when what holds the job's changes is no longer the same: the holder before and now
# (``held_by``; None: not held), and how many changes are kept (on a release: acted on).
OnHold = Callable[[str | None, str | None, int], None]


class JobWatch:
    @classmethod
    def for_job(cls, hub: WatchHub, config: JobConfig, on_changes: OnChanges) -> JobWatch:
        """The watch *config* asks for; its own ``output:`` file never counts as a change."""
        own = (str(config.output.path),) if isinstance(config.output, FileOutput) else ()
        return cls(
            config.name,
            config.watch,
            hub,
            on_changes,
            own_files=own,
            settle_max=config.debounce_max,
        )

    def __init__(
        self,
        name: str,
        watch: WatchConfig,
        hub: WatchHub,
        on_changes: OnChanges,
        *,
        own_files: Sequence[str] = (),
        settle_max: float = 2.0,
        stale_after: float = STALE_AFTER,
        on_hold: OnHold | None = None,
        on_fallback: OnFallback | None = None,
    ) -> None:
        self.name = name
        # Told of holds and releases, and of a fallback to polling after arming.
        self.on_hold = on_hold
        self.on_fallback = on_fallback
        self._watch = watch
        self._hub = hub
        self._on_changes = on_changes
        self._roots = tuple(os.path.abspath(root) for root in watch.paths)
        self._own_files = tuple(os.path.abspath(path) for path in own_files)
        self._settle_max = settle_max
        self._holds = Holds(stale_after)
        self._gitignores = frozenset(os.path.join(root, GITIGNORE) for root in self._roots)
        self._subscription: Subscription | None = None
        self._filter: PathFilter | None = None
        self._check: asyncio.TimerHandle | None = None
        self._refilter: asyncio.Task[None] | None = None
        self._refilter_again = False
        self._closed = False
        self.reloads = 0  # times watched again after a .gitignore changed

    # ---- lifecycle ------------------------------------------------------------------

    async def arm(self) -> None:
        """Set up the watches; returns once they are armed."""
        self._subscription = await self._subscribe()

    async def close(self) -> None:
        self._closed = True
        if self._check is not None:
            self._check.cancel()
            self._check = None
        if self._refilter is not None:
            self._refilter.cancel()
            await asyncio.gather(self._refilter, return_exceptions=True)
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.close()

    # ---- status ---------------------------------------------------------------------

    @property
    def backend(self) -> str | None:
        return None if self._subscription is None else self._subscription.backend

    def watched_paths(self) -> int:
        return 0 if self._subscription is None else self._subscription.watched_paths()

    @property
    def held(self) -> bool:
        return self._holds.held_by is not None

    @property
    def held_by(self) -> str | None:
        """``"watchctl"``, the path of the version-control lock that holds, or None."""
        return self._holds.held_by

    def pending(self) -> int:
        """How many changes are kept while held."""
        return self._holds.pending()

    # ---- holds ----------------------------------------------------------------------

    def hold(self) -> None:
        """Keep changes from the job until :meth:`release`."""
        if not self._holds.manual:
            before = self._holds.held_by
            self._holds.manual = True
            log.info("%s: changes held (watchctl hold)", self.name)
            self._tell_hold(before)

    def release(self) -> None:
        if not self._holds.manual:
            return
        self._holds.manual = False
        self._observe_locks()
        if self._holds.held_by is not None:
            log.info("%s: released; still held by %s", self.name, self._holds.held_by)
        batch = self._holds.flush()
        self._tell_hold(MANUAL, len(batch))
        self._deliver(batch, "released")

    # ---- changes --------------------------------------------------------------------

    def _on_subscription_changes(self, changes: Sequence[Change]) -> None:
        if self._closed:
            return
        own = self._own_paths()
        kept: list[Change] = []
        for change in changes:
            if change.path in own:
                continue  # the job's own output: its writes are never a change for it
            if change.path in self._gitignores:
                self._filter_again()
                if self._filter is not None and not self._filter.wanted(GITIGNORE):
                    continue
            kept.append(change)
        if not kept:
            return
        was_held = self._holds.held_by
        if self._watch.vcs:
            self._observe_locks(active=True)
        batch = self._holds.offer(kept)
        if self._holds.held_by is not None and was_held is None:
            log.info("%s: changes held while %s exists", self.name, self._holds.held_by)
        self._tell_hold(was_held, len(batch))
        self._deliver(batch, "")
        self._schedule_check()

    def _deliver(self, batch: list[Change], why: str) -> None:
        if not batch:
            return
        if why:
            log.info("%s: %s; acting on %d change(s)", self.name, why, len(batch))
        self._on_changes(batch)

    def _tell_hold(self, before: str | None, acted_on: int = 0) -> None:
        """Tell of a new holder (with the changes it keeps) or a release (with the changes
        handed on)."""
        now = self._holds.held_by
        if now == before or self.on_hold is None:
            return
        self.on_hold(before, now, acted_on if now is None else self._holds.pending())

    def _own_paths(self) -> frozenset[str]:
        """The job's output file, by every path a change to it could be reported under."""
        if not self._own_files:
            return frozenset()
        own = set(self._own_files)
        for path in self._own_files:
            real = os.path.realpath(path)
            for root in self._roots:
                real_root = os.path.realpath(root)
                if real.startswith(real_root + os.sep):
                    own.add(os.path.join(root, os.path.relpath(real, real_root)))
        return frozenset(own)

    # ---- version-control locks ------------------------------------------------------

    def _observe_locks(self, active: bool = False) -> None:
        locks = vcs.present(vcs.lock_paths(self._roots)) if self._watch.vcs else {}
        for path in self._holds.observe(locks, time.monotonic(), time.time(), active):
            log.warning(
                "%s: %s has not changed for %gs, nor has anything watched: taken as left "
                "behind by a crashed or paused operation, it holds nothing",
                self.name,
                path,
                self._holds.stale_after,
            )

    def _schedule_check(self) -> None:
        if self._check is None and self._holds.locked and not self._closed:
            loop = asyncio.get_running_loop()
            self._check = loop.call_later(LOCK_CHECK, self._check_locks)

    def _check_locks(self) -> None:
        self._check = None
        before = self._holds.held_by
        self._observe_locks()
        if self._holds.held_by is None and before is not None:
            batch = self._holds.flush()
            self._tell_hold(before, len(batch))
            self._deliver(batch, f"{before} is gone")
        self._schedule_check()

    # ---- the subscription -----------------------------------------------------------

    def _make_filter(self) -> PathFilter:
        watch = self._watch
        if watch.gitignore:
            return PathFilter.with_gitignore(
                [Path(root) for root in self._roots],
                watch.include,
                watch.exclude,
                default_excludes=watch.default_excludes,
            )
        return PathFilter(watch.include, watch.exclude, default_excludes=watch.default_excludes)

    async def _subscribe(self) -> Subscription:
        self._filter = self._make_filter()
        spec = WatchSpec(
            tuple(Path(root) for root in self._roots),
            self._filter,
            self._watch.poll_interval,
            settle_max=self._settle_max,
        )
        return await self._hub.subscribe(
            spec, self._watch.backend, self._on_subscription_changes, self._fell_back
        )

    def _fell_back(self, backend: str) -> None:
        if self.on_fallback is not None and not self._closed:
            self.on_fallback(backend)

    def _filter_again(self) -> None:
        """A .gitignore changed: watch again with what it now says (the new watches are
        armed before the old ones go, so nothing is missed meanwhile)."""
        if not self._watch.gitignore or self._closed:
            return
        if self._refilter is not None:
            self._refilter_again = True
            return
        self._refilter = asyncio.get_running_loop().create_task(self._resubscribe())

    async def _resubscribe(self) -> None:
        try:
            while True:
                self._refilter_again = False
                fresh = await self._subscribe()
                if self._closed:
                    await fresh.close()
                    return
                old, self._subscription = self._subscription, fresh
                self.reloads += 1
                if old is not None and _fallback(fresh.backend) and not _fallback(old.backend):
                    self._fell_back(fresh.backend)  # watched again, but no longer by inotify
                if old is not None:
                    await old.close()
                log.info("%s: .gitignore changed; watching %s", self.name, self.backend)
                if not self._refilter_again:
                    return
        except Exception:
            log.exception("%s: could not watch again after a .gitignore change", self.name)
        finally:
            self._refilter = None


def _fallback(backend: str) -> bool:
    return backend.startswith("poll (")
