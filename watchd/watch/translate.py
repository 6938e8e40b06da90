"""Raw inotify events turned into changes, and into what keeps a recursive watch right.

Pure code: no I/O. The driver (``inotify.py``) adds and removes kernel watches and lists
directories; it tells the :class:`WatchTable` what it armed (the bookkeeping is in
``watches.py``), feeds it the events it reads, carries out the actions the table asks for,
and removes the kernel watches the table no longer needs (``take_unwatch``).

Which events are a finished change:

* ``IN_CLOSE_WRITE``: a writer is done. The file counts as added when its ``IN_CREATE`` was
  seen first, else as modified, unless all it changed was the access time (below).
* ``IN_CREATE`` of a regular file is not reported by itself: whoever created it still has
  it open for writing, and its ``IN_CLOSE_WRITE`` follows. Entries that are created without
  being opened for writing never get one, so those count at once: symlinks, hard links (a
  regular file whose link count is above one) and special files. The driver's ``probe``
  tells which is which.
* ``IN_MOVED_TO`` (how editors' atomic saves look) counts as added; ``IN_DELETE`` and
  ``IN_MOVED_FROM`` as deleted; ``IN_ATTRIB`` as modified when the driver's ``attributes``
  probe says the content times or the mode changed (``chmod``, ``touch``), not for an
  access time alone (``touch -a``), and not while the file is still being written after its
  creation. A directory's own attributes never count (the poll backend does not see them).
* ``IN_MODIFY`` is not watched at all: a half-written file is not a change yet.

Directories are tracked by the events of their parent: created or moved in, they are
watched and scanned (``ScanDir``); deleted or moved out, their watches are forgotten. A root
that disappears (deleted, moved away, its watch dropped by the kernel) is armed again from
scratch (``Rearm``): it is then watched from its nearest existing ancestor until it is back.
Symlinks inside a tree are reported as entries and never followed (no loops); a root that
is a symlink is followed, and its link is watched too, so pointing it elsewhere re-arms it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from watchd.watch.base import Change, ChangeKind
from watchd.watch.watches import (
    Mode,
    Node,
    SubState,
    Tree,
    View,
    ViewKind,
    Watches,
    awaited_name,
    join,
)

IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000

# Every watch of a tree is on a directory, with this one mask (a second add_watch of the
# same inode replaces the mask). The driver passes resolved paths, so IN_DONT_FOLLOW only
# guards against a directory swapped for a symlink meanwhile.
WATCH_MASK = (
    IN_CLOSE_WRITE
    | IN_MOVED_TO
    | IN_MOVED_FROM
    | IN_CREATE
    | IN_DELETE
    | IN_ATTRIB
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
)

IN_MASK_ADD = 0x20000000

# A directory on the way to a root needs only its entries' comings and goings: added with
# IN_MASK_ADD, so that a tree watch on the same inode keeps its own mask (and adding the
# tree's mask later covers this one).
PATH_MASK = (
    IN_MOVED_TO
    | IN_MOVED_FROM
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_MASK_ADD
)

_APPEARS = IN_CREATE | IN_MOVED_TO
_GOES = IN_DELETE | IN_MOVED_FROM

# Files seen created and not yet closed by their writer. Bounded: files created without
# ever being written (rare) would otherwise pile up; forgetting one only means a later
# close reports it as modified rather than added.
FRESH_LIMIT = 10_000


class RawEvent(NamedTuple):
    """One event as the kernel gives it (``inotify_simple.Event`` has the same fields)."""

    wd: int
    mask: int
    cookie: int
    name: str


# Tells whether a just-created non-directory entry (absolute path) is already complete,
# i.e. no IN_CLOSE_WRITE will follow for it; or, for IN_ATTRIB, whether what changed is more
# than the access time.
Probe = Callable[[str], bool]


def _every_attribute(path: str) -> bool:
    return True


@dataclass(frozen=True)
class ScanDir:
    """Watch the new directory ``rel`` of a root (in its directory on watch ``parent``),
    and everything below it; report what is already in it as added (it was created before
    its watch existed)."""

    sub: int
    root: int
    rel: str
    parent: int


@dataclass(frozen=True)
class Rearm:
    """Resolve the root again and watch it as it now is; with ``report``, what is found in
    it is reported as added."""

    sub: int
    root: int
    report: bool


@dataclass(frozen=True)
class Resync:
    """Events were lost: re-walk every root, add missing watches, drop stale ones."""


Action = ScanDir | Rearm | Resync


@dataclass
class Outcome:
    changes: dict[int, dict[Change, None]] = field(default_factory=dict)  # per subscription
    actions: dict[Action, None] = field(default_factory=dict)  # in order, without repeats
    rearming: set[tuple[int, int]] = field(default_factory=set)  # (subscription, root)

    def report(self, sub: int, kind: ChangeKind, path: str) -> None:
        self.changes.setdefault(sub, {})[Change(kind, path)] = None

    def act(self, action: Action) -> None:
        self.actions[action] = None


class WatchTable(Watches):
    """The watches of every subscription, and what events mean for them."""

    def __init__(self) -> None:
        super().__init__()
        self._fresh: set[tuple[int, str]] = set()  # (wd, name) created, not yet closed

    def handle(
        self, events: Iterable[RawEvent], probe: Probe, attributes: Probe = _every_attribute
    ) -> Outcome:
        """What *events* mean for each subscription, and what the driver must do next."""
        out = Outcome()
        for event in events:
            if event.mask & IN_Q_OVERFLOW:
                self._overflow(out)
                continue
            entries = self.entries_on(event.wd)
            if not entries:
                continue  # a watch already forgotten
            if event.mask & IN_IGNORED:
                self._ignored(event.wd, entries, out)
                continue
            # What a file's event means is worked out (a stat, maybe) only for a listener
            # that cares: a directory on the way to a root (/tmp, say) hears of every name
            # in it, and almost all of them concern no one.
            kind = None
            unknown = bool(event.name) and not event.mask & IN_ISDIR
            for entry in entries:
                # An earlier listener's handling of this event may have dropped this one.
                if not self.has_entry(event.wd, entry):
                    continue
                if type(entry) is not tuple:
                    assert isinstance(entry, View)
                    if event.name and event.name != awaited_name(entry):
                        continue
                if unknown:
                    kind, unknown = self._file_kind(event, probe, attributes), False
                if type(entry) is tuple:
                    self._tree_event(entry, event, kind, out)
                else:
                    assert isinstance(entry, View)
                    self._view_event(self._subs[entry.sub], entry, event, kind, out)
        return out

    def _file_kind(self, event: RawEvent, probe: Probe, attributes: Probe) -> ChangeKind | None:
        """What an event on a non-directory entry means, whoever listens."""
        key = (event.wd, event.name)
        mask = event.mask
        if mask & IN_CREATE:
            if probe(join(self.dir_of(event.wd), event.name)):
                return ChangeKind.ADDED
            if len(self._fresh) >= FRESH_LIMIT:
                self._fresh.clear()
            self._fresh.add(key)
            return None
        if mask & IN_CLOSE_WRITE:
            if key in self._fresh:
                self._fresh.discard(key)
                return ChangeKind.ADDED
            # ``touch -a`` opens the file for writing, writes nothing and closes it.
            if not attributes(join(self.dir_of(event.wd), event.name)):
                return None
            return ChangeKind.MODIFIED
        if mask & IN_ATTRIB:
            if key in self._fresh or not attributes(join(self.dir_of(event.wd), event.name)):
                return None
            return ChangeKind.MODIFIED
        self._fresh.discard(key)
        if mask & IN_MOVED_TO:
            return ChangeKind.ADDED
        if mask & _GOES:
            return ChangeKind.DELETED
        return None

    def _tree_event(
        self, node: Node, event: RawEvent, kind: ChangeKind | None, out: Outcome
    ) -> None:
        tree, up, _ = node
        state = self._subs[tree.sub]
        if (state.id, tree.root) in out.rearming:
            return
        if event.name:
            self._tree_entry(state, tree, event, kind, out)
        elif not up:
            self._root_self(state, tree.root, event.mask, out)
        # A subdirectory's own events: its parent's say what happened to it.

    def _view_event(  # for an event on the view's directory itself, or its awaited name
        self,
        state: SubState,
        view: View,
        event: RawEvent,
        kind: ChangeKind | None,
        out: Outcome,
    ) -> None:
        if (state.id, view.root) in out.rearming:
            return
        if not event.name:
            self._anchor_self(state, view, event.mask, out)
        else:
            self._awaited_entry(state, view, event, kind, out)

    def _tree_entry(
        self,
        state: SubState,
        tree: Tree,
        event: RawEvent,
        kind: ChangeKind | None,
        out: Outcome,
    ) -> None:
        here = self.rel_of(tree, event.wd)
        if here is None:
            return
        rel = join(here, event.name)
        path = join(state.roots[tree.root].given, rel)
        mask = event.mask
        if not mask & IN_ISDIR:
            if kind is not None and state.filter.accepts(rel):
                out.report(state.id, kind, path)
            return
        if mask & _APPEARS:
            kind = ChangeKind.ADDED
            if not state.filter.prunes(rel):
                out.act(ScanDir(state.id, tree.root, rel, event.wd))
        elif mask & _GOES:
            kind = ChangeKind.DELETED
            self.drop_dir(tree, event.wd, event.name)
        else:
            return
        if state.filter.accepts(rel, is_dir=True):
            out.report(state.id, kind, path)

    def _root_self(self, state: SubState, root: int, mask: int, out: Outcome) -> None:
        """The root directory itself was deleted or moved away."""
        given = state.roots[root].given
        if mask & IN_DELETE_SELF:
            out.report(state.id, ChangeKind.DELETED, given)  # IN_IGNORED follows: re-armed then
        elif mask & IN_MOVE_SELF:
            # The watch follows the directory to where it went: not ours to watch any more.
            out.report(state.id, ChangeKind.DELETED, given)
            self._rearm(state, root, True, out)

    def _anchor_self(self, state: SubState, view: View, mask: int, out: Outcome) -> None:
        """The directory holding a file root, a symlink root or an awaited name moved."""
        if mask & IN_MOVE_SELF:
            if view.kind is not ViewKind.WAIT:
                out.report(state.id, ChangeKind.DELETED, state.roots[view.root].given)
            self._rearm(state, view.root, True, out)

    def _awaited_entry(
        self,
        state: SubState,
        view: View,
        event: RawEvent,
        kind: ChangeKind | None,
        out: Outcome,
    ) -> None:
        given = state.roots[view.root].given
        mask = event.mask
        if view.kind is ViewKind.FILE and not mask & IN_ISDIR:
            if kind is not None:
                out.report(state.id, kind, given)
            return
        if view.kind is ViewKind.LINK:
            if not mask & (_APPEARS | _GOES):
                return
            if state.roots[view.root].mode is Mode.WAIT and not mask & _GOES:
                return  # the WAIT view hears of what appears, and reports what is found
            # A directory on the way to the root (or the root's own symlink) was removed,
            # moved away or pointed elsewhere: one change for the root, not one for every
            # file of the tree it now names.
            out.report(state.id, ChangeKind.DELETED if mask & _GOES else ChangeKind.MODIFIED, given)
            self._rearm(state, view.root, False, out)
            return
        # A missing root (or the next directory on its way) appeared, or a file root
        # became a directory.
        if mask & _APPEARS:
            self._rearm(state, view.root, True, out)

    def _rearm(self, state: SubState, root: int, report: bool, out: Outcome) -> None:
        """Have the root armed again. Its views stay until then (watches still needed are
        kept, not removed and added again), but the rest of this read's events for it
        are ignored: they describe what it was."""
        if (state.id, root) not in out.rearming:
            out.rearming.add((state.id, root))
            out.act(Rearm(state.id, root, report))

    def _ignored(self, wd: int, entries: tuple[Node | View, ...], out: Outcome) -> None:
        """The kernel dropped watch *wd* (its directory is gone, or its file system)."""
        for entry in entries:
            if not self.has_entry(wd, entry):
                continue
            if type(entry) is tuple:
                tree, up, _ = entry
                self._drop_subtree(tree, wd, dead=True)
                if not up:
                    self._rearm(self._subs[tree.sub], tree.root, True, out)
            else:
                assert isinstance(entry, View)
                self._detach(self._subs[entry.sub], entry, dead=True)
                self._rearm(self._subs[entry.sub], entry.root, True, out)

    def _overflow(self, out: Outcome) -> None:
        self._fresh.clear()
        for sub, state in self._subs.items():
            for root in state.roots:
                out.report(sub, ChangeKind.OVERFLOW, root.given)
        out.act(Resync())
