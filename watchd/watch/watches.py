"""Which subscription listens to which inotify watch, and why.

Pure bookkeeping, no I/O. A kernel watch is one per directory, shared by every
subscription that needs it; each subscription holds *views* of watches (this directory of
that root's tree; the directory holding a file root; the nearest existing ancestor of a
missing root; the directory holding a root that is a symlink). A kernel watch no view
needs any more is handed back to the driver (``take_unwatch``) to be removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol


class Filter(Protocol):
    def accepts(self, relpath: str, is_dir: bool = False) -> bool: ...

    def prunes(self, reldir: str) -> bool: ...


class Mode(Enum):
    TREE = "tree"  # a directory, watched recursively
    FILE = "file"  # a file: its directory is watched for that one name
    WAIT = "wait"  # missing: its nearest existing ancestor is watched for the next name


class ViewKind(Enum):
    TREE = "tree"  # a directory of a root's tree
    FILE = "file"  # the directory holding a file root
    WAIT = "wait"  # the nearest existing ancestor of a missing root
    # A directory on the way to a root (its parent, theirs, …, as written and as resolved):
    # when the next name there is moved, removed or re-pointed (a symlink switched), the root
    # is armed again.
    LINK = "link"


@dataclass(frozen=True)
class View:
    """One reason for one subscription to listen to one kernel watch.

    ``rel`` is, for a TREE view, the directory relative to the root ("" is the root
    itself); for the other kinds, the name awaited in the watched directory (for LINK, the
    whole path of that entry, so that two steps with the same name stay apart).
    """

    root: int
    kind: ViewKind
    rel: str
    wd: int


_CONTENT = (ViewKind.TREE, ViewKind.FILE, ViewKind.WAIT)

# What the driver armed: (kind, rel, wd, the directory's path).
ViewSpec = tuple[ViewKind, str, int, str]


@dataclass
class Root:
    given: str  # absolute, as configured: reported paths start with it
    real: str  # symlinks resolved: where the watches are
    mode: Mode = Mode.WAIT


def join(base: str, name: str) -> str:
    if not name:
        return base
    if not base:
        return name
    return base + name if base.endswith("/") else f"{base}/{name}"


def parent(rel: str) -> str:
    return rel.rpartition("/")[0]


def awaited_name(view: View) -> str:
    """The entry name a non-TREE view listens for in its directory."""
    return view.rel.rpartition("/")[2]


@dataclass
class SubState:
    id: int
    roots: list[Root]
    filter: Filter
    by_wd: dict[int, set[View]] = field(default_factory=dict)
    by_root: list[dict[tuple[ViewKind, str], View]] = field(default_factory=list)
    kids: dict[tuple[int, str], set[str]] = field(default_factory=dict)  # TREE children


class Watches:
    """Every subscription's views, and the kernel watches they share."""

    def __init__(self) -> None:
        self._subs: dict[int, SubState] = {}
        self._next_id = 1
        self._routes: dict[int, set[int]] = {}  # wd -> subscriptions with a view on it
        self._dirs: dict[int, str] = {}  # wd -> the directory it was added for
        self._unwatch: list[int] = []

    # ---- subscriptions and what the driver armed ------------------------------------

    def add_subscription(self, roots: Sequence[str], filter: Filter) -> int:
        sub = self._next_id
        self._next_id += 1
        self._subs[sub] = SubState(
            sub, [Root(root, root) for root in roots], filter, by_root=[{} for _ in roots]
        )
        return sub

    def remove_subscription(self, sub: int) -> None:
        state = self._subs.get(sub)
        if state is None:
            return
        for index in range(len(state.roots)):
            self._drop_root(state, index)
        del self._subs[sub]

    def subscriptions(self) -> list[int]:
        return list(self._subs)

    def roots(self, sub: int) -> Sequence[Root]:
        return self._subs[sub].roots

    def filter(self, sub: int) -> Filter:
        return self._subs[sub].filter

    def install(
        self, sub: int, root: int, mode: Mode, real: str, views: Iterable[ViewSpec]
    ) -> None:
        """Make *views* the whole of the root's watches. Watches kept are not touched;
        those no longer needed by anyone go to ``take_unwatch``."""
        state = self._subs[sub]
        state.roots[root].mode = mode
        state.roots[root].real = real
        old = dict(state.by_root[root])
        kept: set[tuple[ViewKind, str]] = set()
        for kind, rel, wd, path in views:
            kept.add((kind, rel))
            self._attach(state, View(root, kind, rel, wd), path)
        for key, view in old.items():
            if key not in kept:
                self._detach(state, view)

    def attach_dir(self, sub: int, root: int, rel: str, wd: int, path: str) -> None:
        """Add one directory to a root's tree (found by a ``ScanDir``)."""
        self._attach(self._subs[sub], View(root, ViewKind.TREE, rel, wd), path)

    def has_dir(self, sub: int, root: int, rel: str, wd: int | None = None) -> bool:
        """Is *rel* part of the root's watched tree (on watch *wd*, when given)?"""
        view = self._subs[sub].by_root[root].get((ViewKind.TREE, rel))
        return view is not None and (wd is None or view.wd == wd)

    def take_unwatch(self) -> list[int]:
        """Kernel watches that no subscription needs any more: the driver removes them."""
        wds, self._unwatch = self._unwatch, []
        return wds

    def is_watched(self, wd: int) -> bool:
        return wd in self._routes

    def kernel_watches(self) -> int:
        return len(self._routes)

    def watched_dirs(self, sub: int) -> int:
        """The directories watched for the subscription's trees, file roots and missing
        roots (not those watched only on the way to a root)."""
        state = self._subs.get(sub)
        if state is None:
            return 0
        return sum(1 for views in state.by_wd.values() if any(v.kind in _CONTENT for v in views))

    def _attach(self, state: SubState, view: View, path: str) -> None:
        key = (view.kind, view.rel)
        old = state.by_root[view.root].get(key)
        if old == view:
            return
        if old is not None:
            self._detach(state, old)
        state.by_root[view.root][key] = view
        state.by_wd.setdefault(view.wd, set()).add(view)
        self._routes.setdefault(view.wd, set()).add(state.id)
        self._dirs.setdefault(view.wd, path)
        if view.kind is ViewKind.TREE and view.rel:
            state.kids.setdefault((view.root, parent(view.rel)), set()).add(view.rel)

    def _detach(self, state: SubState, view: View, dead: bool = False) -> None:
        """Forget *view*; with *dead*, its kernel watch is already gone."""
        views = state.by_root[view.root]
        if views.get((view.kind, view.rel)) == view:
            del views[(view.kind, view.rel)]
        on_wd = state.by_wd.get(view.wd, set())
        on_wd.discard(view)
        if not on_wd:
            state.by_wd.pop(view.wd, None)
            routed = self._routes.get(view.wd, set())
            routed.discard(state.id)
            if not routed:
                self._routes.pop(view.wd, None)
                self._dirs.pop(view.wd, None)
                if not dead:
                    self._unwatch.append(view.wd)
        if view.kind is ViewKind.TREE and view.rel:
            siblings = state.kids.get((view.root, parent(view.rel)))
            if siblings is not None:
                siblings.discard(view.rel)
                if not siblings:
                    del state.kids[(view.root, parent(view.rel))]

    def _drop_subtree(self, state: SubState, root: int, rel: str) -> None:
        stack = [rel]
        while stack:
            current = stack.pop()
            stack.extend(state.kids.pop((root, current), ()))
            view = state.by_root[root].get((ViewKind.TREE, current))
            if view is not None:
                self._detach(state, view)

    def _drop_root(self, state: SubState, root: int) -> None:
        for view in list(state.by_root[root].values()):
            self._detach(state, view)
        for key in [key for key in state.kids if key[0] == root]:
            del state.kids[key]
