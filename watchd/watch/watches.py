"""Which subscription listens to which inotify watch, and why.

Pure bookkeeping, no I/O. A kernel watch is one per directory, shared by every
subscription that needs it; each subscription holds *views* of watches (this directory of
that root's tree; the directory holding a file root; the nearest existing ancestor of a
missing root; the directory holding a root that is a symlink). A kernel watch no view
needs any more is handed back to the driver (``take_unwatch``) to be removed.

Kept small: a tree of 50,000 directories has 50,000 of each entry. A watch heard by one
view (the usual case) holds that view itself, not a set of one; a tree directory's path is
not stored (its root's and its ``rel`` make it).
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


@dataclass(frozen=True, slots=True)
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

# What the driver armed: (kind, rel, wd, the directory's path; "" for a TREE view, whose
# path its root and rel make).
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


# A root's views by key: a TREE view's is its ``rel`` alone (no tuple per directory), the
# others' ``(kind, rel)``; a string never equals a tuple, so the two cannot collide.
Key = str | tuple[ViewKind, str]


def key(kind: ViewKind, rel: str) -> Key:
    return rel if kind is ViewKind.TREE else (kind, rel)


@dataclass
class SubState:
    id: int
    roots: list[Root]
    filter: Filter
    by_wd: dict[int, View | list[View]] = field(default_factory=dict)  # one, or several
    by_root: list[dict[Key, View]] = field(default_factory=list)
    # A TREE directory's children, as an ordered set (a dict: half a set's size)
    kids: dict[tuple[int, str], dict[str, None]] = field(default_factory=dict)

    def views_on(self, wd: int) -> tuple[View, ...]:
        found = self.by_wd.get(wd)
        if found is None:
            return ()
        return (found,) if isinstance(found, View) else tuple(found)

    def has_view(self, wd: int, view: View) -> bool:
        found = self.by_wd.get(wd)
        return found == view if isinstance(found, View) else found is not None and view in found

    def _add_view(self, view: View) -> None:
        found = self.by_wd.get(view.wd)
        if found is None:
            self.by_wd[view.wd] = view
        elif isinstance(found, View):
            if found != view:
                self.by_wd[view.wd] = [found, view]
        elif view not in found:
            found.append(view)

    def _remove_view(self, view: View) -> bool:
        """Forget *view* on its watch; True when no view of this subscription is left there."""
        found = self.by_wd.get(view.wd)
        if isinstance(found, View):
            if found == view:
                del self.by_wd[view.wd]
        elif found is not None:
            if view in found:
                found.remove(view)
            if len(found) == 1:
                self.by_wd[view.wd] = found[0]
        return view.wd not in self.by_wd


class Watches:
    """Every subscription's views, and the kernel watches they share."""

    def __init__(self) -> None:
        self._subs: dict[int, SubState] = {}
        self._next_id = 1
        # wd -> the subscription (or subscriptions) with a view on it
        self._routes: dict[int, int | list[int]] = {}
        # wd -> the directory it was added for, for watches not on a tree (a tree's
        # directory is found from its view)
        self._dirs: dict[int, str] = {}
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
        kept: set[Key] = set()
        for kind, rel, wd, path in views:
            kept.add(key(kind, rel))
            self._attach(state, View(root, kind, rel, wd), path)
        for known, view in old.items():
            if known not in kept:
                self._detach(state, view)

    def attach_dir(self, sub: int, root: int, rel: str, wd: int, path: str) -> None:
        """Add one directory to a root's tree (found by a ``ScanDir``)."""
        self._attach(self._subs[sub], View(root, ViewKind.TREE, rel, wd), path)

    def has_dir(self, sub: int, root: int, rel: str, wd: int | None = None) -> bool:
        """Is *rel* part of the root's watched tree (on watch *wd*, when given)?"""
        view = self._subs[sub].by_root[root].get(rel)
        return view is not None and (wd is None or view.wd == wd)

    def take_unwatch(self) -> list[int]:
        """Kernel watches that no subscription needs any more: the driver removes them."""
        wds, self._unwatch = self._unwatch, []
        return wds

    def is_watched(self, wd: int) -> bool:
        return wd in self._routes

    def subs_on(self, wd: int) -> tuple[int, ...]:
        """The subscriptions with a view on watch *wd*."""
        found = self._routes.get(wd)
        if found is None:
            return ()
        return (found,) if isinstance(found, int) else tuple(found)

    def dir_of(self, wd: int) -> str:
        """The directory watch *wd* was added for."""
        path = self._dirs.get(wd)
        if path is not None:
            return path
        for sub in self.subs_on(wd):
            state = self._subs[sub]
            for view in state.views_on(wd):
                if view.kind is ViewKind.TREE:
                    return join(state.roots[view.root].real, view.rel)
        raise KeyError(wd)

    def kernel_watches(self) -> int:
        return len(self._routes)

    def watched_dirs(self, sub: int) -> int:
        """The directories watched for the subscription's trees, file roots and missing
        roots (not those watched only on the way to a root)."""
        state = self._subs.get(sub)
        if state is None:
            return 0
        return sum(
            1
            for views in state.by_wd.values()
            if (views.kind in _CONTENT if isinstance(views, View) else _any_content(views))
        )

    def _attach(self, state: SubState, view: View, path: str) -> None:
        known = key(view.kind, view.rel)
        old = state.by_root[view.root].get(known)
        if old == view:
            return
        if old is not None:
            self._detach(state, old)
        state.by_root[view.root][known] = view
        state._add_view(view)
        self._route(view.wd, state.id)
        if view.kind is not ViewKind.TREE:
            self._dirs.setdefault(view.wd, path)
        if view.kind is ViewKind.TREE and view.rel:
            state.kids.setdefault((view.root, parent(view.rel)), {})[view.rel] = None

    def _detach(self, state: SubState, view: View, dead: bool = False) -> None:
        """Forget *view*; with *dead*, its kernel watch is already gone."""
        views = state.by_root[view.root]
        known = key(view.kind, view.rel)
        if views.get(known) == view:
            del views[known]
        if state._remove_view(view) and self._unroute(view.wd, state.id):
            self._dirs.pop(view.wd, None)
            if not dead:
                self._unwatch.append(view.wd)
        if view.kind is ViewKind.TREE and view.rel:
            siblings = state.kids.get((view.root, parent(view.rel)))
            if siblings is not None:
                siblings.pop(view.rel, None)
                if not siblings:
                    del state.kids[(view.root, parent(view.rel))]

    def _drop_subtree(self, state: SubState, root: int, rel: str) -> None:
        stack = [rel]
        while stack:
            current = stack.pop()
            stack.extend(state.kids.pop((root, current), ()))
            view = state.by_root[root].get(current)
            if view is not None:
                self._detach(state, view)

    def _drop_root(self, state: SubState, root: int) -> None:
        for view in list(state.by_root[root].values()):
            self._detach(state, view)
        for key in [key for key in state.kids if key[0] == root]:
            del state.kids[key]

    def _route(self, wd: int, sub: int) -> None:
        found = self._routes.get(wd)
        if found is None:
            self._routes[wd] = sub
        elif isinstance(found, int):
            if found != sub:
                self._routes[wd] = [found, sub]
        elif sub not in found:
            found.append(sub)

    def _unroute(self, wd: int, sub: int) -> bool:
        """*sub* no longer listens to *wd*; True when nobody does."""
        found = self._routes.get(wd)
        if isinstance(found, int):
            if found == sub:
                del self._routes[wd]
        elif found is not None:
            if sub in found:
                found.remove(sub)
            if len(found) == 1:
                self._routes[wd] = found[0]
        return wd not in self._routes


def _any_content(views: list[View]) -> bool:
    return any(view.kind in _CONTENT for view in views)
