"""The inotify backend: one inotify instance for the whole daemon, read on the event loop.

Every subscription shares the one instance; a directory watched for several
subscriptions costs one kernel watch. What events mean, and which watches each
subscription needs, is decided by the pure :mod:`watchd.watch.translate`; this module does
the I/O it asks for: adding and removing watches, listing directories, reading events.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import stat
from collections.abc import Callable, Sequence
from typing import Any

import inotify_simple

from watchd.errors import WatchLimitError
from watchd.watch.base import Change, ChangeKind, OnChanges, WatchSpec
from watchd.watch.translate import (
    PATH_MASK,
    WATCH_MASK,
    RawEvent,
    Rearm,
    Resync,
    ScanDir,
    WatchTable,
)
from watchd.watch.watches import Mode, Tree, ViewKind, ViewSpec, join, parent

log = logging.getLogger("watchd.watch")

# A root is resolved again when what it names changes while being armed; past this many
# tries it is left as last seen (its next event re-arms it).
RESOLVE_ATTEMPTS = 8


class _Appeared(Exception):
    """A missing root's next name exists after all: resolve the root again."""


class InotifyKernel:
    """The inotify instance: a literal, typed face of ``inotify_simple.INotify``."""

    def __init__(self) -> None:
        # Close-on-exec (the default): children never inherit it.
        self._inotify: Any = inotify_simple.INotify(nonblocking=True)

    def fileno(self) -> int:
        return int(self._inotify.fileno())

    def add_watch(self, path: str, mask: int) -> int:
        return int(self._inotify.add_watch(path, mask))

    def rm_watch(self, wd: int) -> None:
        self._inotify.rm_watch(wd)

    def read(self) -> list[RawEvent]:
        """Every event queued now; never blocks."""
        return [RawEvent(*event) for event in self._inotify.read(timeout=0)]

    def close(self) -> None:
        self._inotify.close()


def created_complete(path: str) -> bool:
    """Is the just-created non-directory entry *path* already complete?

    A regular file with one link is still open for writing by whoever created it (its
    ``IN_CLOSE_WRITE`` will follow); symlinks, hard links and special files are never
    opened for writing, so their creation is the whole change.
    """
    try:
        info = os.lstat(path)
    except OSError:
        return False  # gone already: its deletion follows
    return not stat.S_ISREG(info.st_mode) or info.st_nlink > 1


def more_than_access_time(path: str) -> bool:
    """After ``IN_ATTRIB`` on *path*: did its content times, mode or owner change, rather
    than its access time alone? Setting the access time sets the change time to the very
    same clock reading, and leaves the modification time alone (``touch -a``); a ``chmod``
    leaves the access time as it was."""
    try:
        info = os.lstat(path)
    except OSError:
        return False  # gone: its deletion is the change
    return not (info.st_atime_ns == info.st_ctime_ns != info.st_mtime_ns)


def _steps(path: str) -> list[tuple[str, str]]:
    """``(directory resolved, next name)`` for each step from ``/`` to the absolute *path*."""
    steps: list[tuple[str, str]] = []
    head = path
    while True:
        directory, name = os.path.split(head)
        if not name:
            return steps[::-1]
        steps.append((os.path.realpath(directory), name))
        head = directory


class InotifySubscription:
    """One spec's view of the shared inotify instance."""

    backend = "inotify"

    def __init__(self, watcher: InotifyWatcher, sub: int, on_changes: OnChanges) -> None:
        self._watcher = watcher
        self.id = sub
        self.on_changes = on_changes
        self.closed = False
        self.limit_logged = False
        # Set by the hub: the watch limit was reached after start (the tree grew).
        self.on_limit: Callable[[Exception], None] | None = None

    def watched_paths(self) -> int:
        """How many directories this subscription watches."""
        return 0 if self.closed else self._watcher.table.watched_dirs(self.id)

    async def close(self) -> None:
        self._watcher.unsubscribe(self)


class InotifyWatcher:
    """The inotify backend (the ``Watcher`` protocol)."""

    def __init__(self, make_kernel: Callable[[], InotifyKernel] = InotifyKernel) -> None:
        # Created now, so that a failure (EMFILE: too many instances) surfaces at once.
        self._kernel: InotifyKernel | None = make_kernel()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.table = WatchTable()
        self._subs: dict[int, InotifySubscription] = {}

    async def subscribe(self, spec: WatchSpec, on_changes: OnChanges) -> InotifySubscription:
        """Watch *spec*'s roots; return once every watch is armed. ``WatchLimitError``
        when the kernel's watch limit is reached (nothing of this spec is left watched)."""
        self._start_reading()
        roots = [os.path.abspath(root) for root in spec.roots]
        subscription = InotifySubscription(
            self, self.table.add_subscription(roots, spec.filter), on_changes
        )
        self._subs[subscription.id] = subscription
        try:
            for index in range(len(roots)):
                self._arm_root(subscription.id, index, report=False, out=[])
        except BaseException:
            self.unsubscribe(subscription)
            raise
        return subscription

    def unsubscribe(self, subscription: InotifySubscription) -> None:
        if subscription.closed:
            return
        subscription.closed = True
        self._subs.pop(subscription.id, None)
        self.table.remove_subscription(subscription.id)
        self._release()

    async def close(self) -> None:
        """Release the instance, its watches and the reader; subscriptions stop delivering."""
        for subscription in list(self._subs.values()):
            subscription.closed = True
        self._subs.clear()
        self.table = WatchTable()
        kernel, self._kernel = self._kernel, None
        if kernel is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(kernel.fileno())
        kernel.close()

    def fileno(self) -> int | None:
        return None if self._kernel is None else self._kernel.fileno()

    def kernel_watches(self) -> int:
        """How many kernel watches the instance holds, for every subscription together."""
        return self.table.kernel_watches()

    def _start_reading(self) -> None:
        if self._kernel is None:
            raise RuntimeError("the inotify watcher is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            loop.add_reader(self._kernel.fileno(), self._on_readable)
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("the inotify watcher is bound to another event loop")

    # ---- reading -------------------------------------------------------------------

    def _on_readable(self) -> None:
        # Runs as a loop callback: an exception here would only be logged by the loop, and
        # the next events must still be handled.
        try:
            if self._kernel is not None:
                self.handle_events(self._kernel.read())
        except Exception:
            log.exception("inotify: could not handle events")

    def handle_events(self, events: Sequence[RawEvent]) -> None:
        """Translate one read's events, carry out what they require, and hand each
        subscription at most one batch."""
        outcome = self.table.handle(events, created_complete, more_than_access_time)
        self._release()
        changes = outcome.changes
        if any(isinstance(action, Resync) for action in outcome.actions):
            self._resync()
        else:
            for action in outcome.actions:
                assert isinstance(action, ScanDir | Rearm)
                found: list[Change] = []
                self._carry_out(action, found)
                if found:
                    batch = changes.setdefault(action.sub, {})
                    batch.update(dict.fromkeys(found))
        for sub, batch in changes.items():
            subscription = self._subs.get(sub)
            if subscription is None or subscription.closed or not batch:
                continue
            try:
                subscription.on_changes(list(batch))
            except Exception:
                log.exception("inotify: a change handler failed")

    def _carry_out(self, action: ScanDir | Rearm, found: list[Change]) -> None:
        if action.sub not in self._subs:
            return
        try:
            if isinstance(action, ScanDir):
                self._scan_new_dir(action, found)
            else:
                self._arm_root(action.sub, action.root, action.report, found)
        except WatchLimitError as error:
            self._limit_reached(action.sub, error)

    def _resync(self) -> None:
        for sub in list(self._subs):
            for index in range(len(self.table.roots(sub))):
                try:
                    self._arm_root(sub, index, report=False, out=[])
                except WatchLimitError as error:
                    self._limit_reached(sub, error)

    def _limit_reached(self, sub: int, error: WatchLimitError) -> None:
        subscription = self._subs.get(sub)
        if subscription is None or subscription.limit_logged:
            return
        subscription.limit_logged = True
        if subscription.on_limit is not None:
            subscription.on_limit(error)
        else:
            log.warning("%s; directories created from now on may go unwatched", error)

    # ---- arming --------------------------------------------------------------------

    def _arm_root(self, sub: int, index: int, report: bool, out: list[Change]) -> None:
        """Watch root *index* as it is now: a tree, a file, or a missing path."""
        added: list[int] = []
        tree: Tree | None = self.table.new_tree(sub, index)
        try:
            assert tree is not None
            mode, real, views = self._plan_root(sub, index, report, out, added, tree=tree)
            if mode is not Mode.TREE:
                self.table.discard_tree(tree)
                tree = None
            self.table.install(sub, index, mode, real, views, tree=tree)
            tree = None  # installed: the table's now
        finally:
            if tree is not None:
                self.table.discard_tree(tree)
            self._release(added)

    def _plan_root(
        self,
        sub: int,
        index: int,
        report: bool,
        out: list[Change],
        added: list[int],
        *,
        tree: Tree,
    ) -> tuple[Mode, str, list[ViewSpec]]:
        given = self.table.roots(sub)[index].given
        real = given
        views: list[ViewSpec] = []
        for _ in range(RESOLVE_ATTEMPTS):
            real = os.path.realpath(given)
            views = self._link_view(given, added)
            try:
                is_dir = stat.S_ISDIR(os.stat(real).st_mode)
            except OSError:
                try:
                    awaited = self._wait_view(real, added)
                except _Appeared:
                    continue
                return Mode.WAIT, real, views if awaited is None else [*views, awaited]
            if report:
                out.append(Change(ChangeKind.ADDED, given))
            views = self._path_views(given, real, added)
            if is_dir:
                self._walk(tree, (0, "", ""), real=real, report=report, out=out, added=added)
                return Mode.TREE, real, views
            directory, name = os.path.split(real)
            wd = self._watch(directory, added)
            if wd is not None:
                views.append((ViewKind.FILE, name, wd, directory))
            return Mode.FILE, real, views
        return Mode.WAIT, real, views

    def _link_view(self, given: str, added: list[int]) -> list[ViewSpec]:
        """A root that is a symlink: watch the link too, to follow it when it changes."""
        if not os.path.islink(given):
            return []
        directory = os.path.realpath(os.path.dirname(given))
        wd = self._watch(directory, added, PATH_MASK)
        name = join(directory, os.path.basename(given))
        return [] if wd is None else [(ViewKind.LINK, name, wd, directory)]

    def _path_views(self, given: str, real: str, added: list[int]) -> list[ViewSpec]:
        """Watch every directory on the way to an existing root, as written and as
        resolved, for the next name: a parent moved or removed, or a symlink on the way
        switched, is then noticed (the root's own watch follows its inode wherever it
        goes). The root's own entry in its directory is its own watch's business."""
        steps = dict.fromkeys(_steps(given) + _steps(real))
        steps.pop(os.path.split(real), None)
        views: list[ViewSpec] = []
        for directory, name in steps:
            wd = self._watch(directory, added, PATH_MASK)
            if wd is not None:
                views.append((ViewKind.LINK, join(directory, name), wd, directory))
        return views

    def _wait_view(self, real: str, added: list[int]) -> ViewSpec | None:
        """Watch the nearest existing ancestor of the missing *real* for its next name;
        None if that ancestor cannot be watched. ``_Appeared`` if the name was created
        meanwhile: the caller resolves the root again. A name that exists but is in the
        way (a file where a directory is needed) is waited on until it is replaced."""
        child = real
        while (directory := os.path.dirname(child)) != child:
            try:
                wd = self._add_watch(directory, added)
            except OSError as error:
                if error.errno in (errno.ENOENT, errno.ENOTDIR):
                    child = directory
                    continue
                log.debug("inotify: cannot watch %s for %s: %s", directory, real, error)
                return None
            name = os.path.basename(child)
            # Added before looking: a name created from now on has its event queued.
            if os.path.isdir(child) or (child == real and os.path.exists(child)):
                raise _Appeared
            return (ViewKind.WAIT, name, wd, directory)
        return None

    def _scan_new_dir(self, action: ScanDir, found: list[Change]) -> None:
        root = self.table.roots(action.sub)[action.root]
        tree = root.tree
        if (
            root.mode is not Mode.TREE
            or tree is None
            or self.table.rel_of(tree, action.parent) != parent(action.rel)
        ):
            return  # its parent was dropped meanwhile
        added: list[int] = []
        try:
            name = action.rel.rpartition("/")[2]
            self._walk(
                tree,
                (action.parent, name, action.rel),
                real=root.real,
                report=True,
                out=found,
                added=added,
            )
        finally:
            self._release(added)

    def _walk(
        self,
        tree: Tree,
        top: tuple[int, str, str],
        *,
        real: str,
        report: bool,
        out: list[Change],
        added: list[int],
    ) -> None:
        """Watch directory *top* (its parent's watch, its name, its path relative to the
        root) of a root's tree and every directory below it that the filter does not
        prune, adding each to *tree*. Each watch is added before its directory is listed,
        so an entry created meanwhile is either listed or has its event queued. With
        *report*, entries found are reported as added. A directory the tree has already
        (on the same watch) is not walked again: its events were never missed."""
        flt = self.table.filter(tree.sub)
        given = self.table.roots(tree.sub)[tree.root].given
        add_dir = self.table.add_dir
        stack = [top]
        while stack:
            up, name, rel = stack.pop()
            path = join(real, rel)
            wd = self._watch(path, added)
            if wd is None or not add_dir(tree, wd, up, name):
                continue
            try:
                with os.scandir(path) as entries:
                    for entry in entries:
                        # d_type, no stat; a symlink to a directory is an entry, not followed.
                        if entry.is_dir(follow_symlinks=False):
                            child = join(rel, entry.name)
                            if not flt.prunes(child):
                                stack.append((wd, entry.name, child))
                            if report and flt.accepts(child, is_dir=True):
                                out.append(Change(ChangeKind.ADDED, join(given, child)))
                        elif report and flt.accepts(child := join(rel, entry.name)):
                            out.append(Change(ChangeKind.ADDED, join(given, child)))
            except OSError as error:
                log.debug("inotify: cannot list %s: %s", path, error)

    def _watch(self, path: str, added: list[int], mask: int = WATCH_MASK) -> int | None:
        """Add a watch on directory *path*; None if it cannot be watched (gone, not a
        directory, no permission): skipped, the rest of the tree goes on."""
        try:
            return self._add_watch(path, added, mask)
        except OSError as error:
            log.debug("inotify: cannot watch %s: %s", path, error)
            return None

    def _add_watch(self, path: str, added: list[int], mask: int = WATCH_MASK) -> int:
        assert self._kernel is not None
        try:
            wd = self._kernel.add_watch(path, mask)
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise WatchLimitError(path) from error
            raise
        added.append(wd)
        return wd

    def _release(self, added: Sequence[int] = ()) -> None:
        """Remove the kernel watches no subscription needs: those the table gave up, and
        those just added that ended up unused (e.g. a walk cut short)."""
        wds = dict.fromkeys(self.table.take_unwatch())
        wds.update(dict.fromkeys(wd for wd in added if not self.table.is_watched(wd)))
        if self._kernel is None:
            return
        for wd in wds:
            with contextlib.suppress(OSError):  # already gone with its directory
                self._kernel.rm_watch(wd)
