"""Which subscription listens to which inotify watch, and why.

Pure bookkeeping, no I/O. A kernel watch is one per directory, shared by every
subscription that needs it. What listens to a watch is either a directory of a root's
*tree* (a :data:`Node`), or a *view* for the few other reasons (the directory holding a
file root; the nearest existing ancestor of a missing root; a directory on the way to a
root). A kernel watch nothing listens to any more is handed back to the driver
(``take_unwatch``) to be removed.

Kept small, for a tree of 50,000 directories has 50,000 nodes: one dict entry per
kernel watch for every subscription together, holding the node itself when it is the only
listener (the usual case); a node is ``(tree, parent's watch, name)``, its path made from
its parents' names when an event needs it; names are interned (a tree repeats ``src``,
``tests``, ``lib`` …); a directory's children are a name → watch dict only where it has
subdirectories.
"""

from __future__ import annotations

import sys
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
    FILE = "file"  # the directory holding a file root
    WAIT = "wait"  # the nearest existing ancestor of a missing root
    # A directory on the way to a root (its parent, theirs, …, as written and as resolved):
    # when the next name there is moved, removed or re-pointed (a symlink switched), the root
    # is armed again.
    LINK = "link"


@dataclass(frozen=True, slots=True, eq=False)
class View:
    """One reason, other than a tree, for one subscription to listen to one kernel watch.

    ``rel`` is the name awaited in the watched directory (for LINK, the whole path of that
    entry, so that two steps with the same name stay apart).
    """

    sub: int
    root: int
    kind: ViewKind
    rel: str
    wd: int


_CONTENT = (ViewKind.FILE, ViewKind.WAIT)

# What the driver armed besides a tree: (kind, rel, wd, the directory's path).
ViewSpec = tuple[ViewKind, str, int, str]


@dataclass(eq=False, slots=True)
class Tree:
    """One root's directories, as watched for one subscription."""

    sub: int
    root: int
    top: int = 0  # the watch of the root directory itself (0: not added yet)
    kids: dict[int, dict[str, int]] = field(default_factory=dict)  # wd -> {name: child's wd}
    size: int = 0  # directories


# A directory of a tree: (its tree, its parent's watch (0 for the tree's top), its name).
Node = tuple[Tree, int, str]
Entry = Node | View


@dataclass
class Root:
    given: str  # absolute, as configured: reported paths start with it
    real: str  # symlinks resolved: where the watches are
    mode: Mode = Mode.WAIT
    tree: Tree | None = None  # for Mode.TREE


def join(base: str, name: str) -> str:
    if not name:
        return base
    if not base:
        return name
    return base + name if base.endswith("/") else f"{base}/{name}"


def parent(rel: str) -> str:
    return rel.rpartition("/")[0]


def awaited_name(view: View) -> str:
    """The entry name a view listens for in its directory."""
    return view.rel.rpartition("/")[2]


@dataclass
class SubState:
    id: int
    roots: list[Root]
    filter: Filter
    views: list[dict[tuple[ViewKind, str], View]] = field(default_factory=list)  # per root


class Watches:
    """Every subscription's trees and views, and the kernel watches they share."""

    def __init__(self) -> None:
        self._subs: dict[int, SubState] = {}
        self._next_id = 1
        # wd -> what listens to it: one entry, or a list of several
        self._entries: dict[int, Entry | list[Entry]] = {}
        # wd -> the directory it was added for, for watches with a view (a tree's
        # directory is found from its node)
        self._dirs: dict[int, str] = {}
        self._unwatch: list[int] = []

    # ---- subscriptions and what the driver armed ------------------------------------

    def add_subscription(self, roots: Sequence[str], filter: Filter) -> int:
        sub = self._next_id
        self._next_id += 1
        self._subs[sub] = SubState(
            sub, [Root(root, root) for root in roots], filter, views=[{} for _ in roots]
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

    def new_tree(self, sub: int, root: int) -> Tree:
        """An empty tree for a root, to be filled with ``add_dir`` and then installed (or
        discarded)."""
        return Tree(sub, root)

    def add_dir(self, tree: Tree, wd: int, parent: int, name: str) -> bool:
        """Add the directory *name* of the tree's directory on watch *parent* (0 and "":
        the root directory) on watch *wd*. False when the tree has it already, there or
        elsewhere (a bind mount shows one directory twice): nothing to walk below it then.
        A different directory of the same name (deleted and created again) is replaced."""
        if self._node(tree, wd) is not None:
            return False
        name = sys.intern(name)
        if parent:
            siblings = tree.kids.setdefault(parent, {})
            old = siblings.get(name)
            if old is not None:
                self._drop_subtree(tree, old)
                siblings = tree.kids.setdefault(parent, {})
            siblings[name] = wd
        else:
            if tree.top:
                self._drop_subtree(tree, tree.top)
            tree.top = wd
        self._add_entry(wd, (tree, parent, name))
        tree.size += 1
        return True

    def install(
        self,
        sub: int,
        root: int,
        mode: Mode,
        real: str,
        views: Iterable[ViewSpec],
        *,
        tree: Tree | None = None,
    ) -> None:
        """Make *tree* (for Mode.TREE) and *views* the whole of the root's watches.
        Watches still needed are not touched; those no longer needed by anyone go to
        ``take_unwatch``."""
        state = self._subs[sub]
        given = state.roots[root]
        given.mode = mode
        given.real = real
        old_tree, given.tree = given.tree, tree
        if old_tree is not None and old_tree is not tree:
            self.discard_tree(old_tree)
        old = dict(state.views[root])
        kept: set[tuple[ViewKind, str]] = set()
        for kind, rel, wd, path in views:
            kept.add((kind, rel))
            self._attach(state, View(sub, root, kind, rel, wd), path)
        for known, view in old.items():
            if known not in kept:
                self._detach(state, view)

    def discard_tree(self, tree: Tree) -> None:
        """Forget every directory of *tree*: one replaced, or one whose walk failed."""
        if tree.top:
            self._drop_subtree(tree, tree.top)

    def tree(self, sub: int, root: int) -> Tree | None:
        return self._subs[sub].roots[root].tree

    def drop_dir(self, tree: Tree, parent: int, name: str, dead: bool = False) -> None:
        """The directory *name* of the tree's directory on *parent* is gone (deleted, or
        moved away): forget it and everything below it."""
        wd = tree.kids.get(parent, {}).get(name)
        if wd is not None:
            self._drop_subtree(tree, wd, dead)

    def rel_of(self, tree: Tree, wd: int) -> str | None:
        """The path of the tree's directory on *wd*, relative to its root; None if the
        tree does not have it."""
        names: list[str] = []
        while True:
            node = self._node(tree, wd)
            if node is None:
                return None
            _, up, name = node
            if not up:
                return "/".join(reversed(names))
            names.append(name)
            wd = up

    def find_dir(self, sub: int, root: int, rel: str) -> int | None:
        """The watch of directory *rel* of the root's tree; None if it is not watched."""
        tree = self._subs[sub].roots[root].tree
        if tree is None or not tree.top:
            return None
        wd = tree.top
        for name in rel.split("/") if rel else ():
            found = tree.kids.get(wd, {}).get(name)
            if found is None:
                return None
            wd = found
        return wd

    def has_dir(self, sub: int, root: int, rel: str, wd: int | None = None) -> bool:
        """Is *rel* part of the root's watched tree (on watch *wd*, when given)?"""
        found = self.find_dir(sub, root, rel)
        return found is not None and (wd is None or found == wd)

    def take_unwatch(self) -> list[int]:
        """Kernel watches that no subscription needs any more: the driver removes them."""
        wds, self._unwatch = self._unwatch, []
        return wds

    def is_watched(self, wd: int) -> bool:
        return wd in self._entries

    def entries_on(self, wd: int) -> tuple[Entry, ...]:
        """What listens to watch *wd*."""
        found = self._entries.get(wd)
        if found is None:
            return ()
        return tuple(found) if type(found) is list else (found,)  # type: ignore[return-value]

    def has_entry(self, wd: int, entry: Entry) -> bool:
        found = self._entries.get(wd)
        if type(found) is list:
            return any(known is entry for known in found)
        return found is entry

    def dir_of(self, wd: int) -> str:
        """The directory watch *wd* was added for."""
        path = self._dirs.get(wd)
        if path is not None:
            return path
        for entry in self.entries_on(wd):
            if type(entry) is tuple:
                tree = entry[0]
                rel = self.rel_of(tree, wd)
                if rel is not None:
                    return join(self._subs[tree.sub].roots[tree.root].real, rel)
        raise KeyError(wd)

    def kernel_watches(self) -> int:
        return len(self._entries)

    def watched_dirs(self, sub: int) -> int:
        """The directories watched for the subscription's trees, file roots and missing
        roots (not those watched only on the way to a root)."""
        state = self._subs.get(sub)
        if state is None:
            return 0
        trees = [root.tree for root in state.roots if root.tree is not None]
        others = {
            view.wd
            for views in state.views
            for view in views.values()
            if view.kind in _CONTENT
            and not any(self._node(tree, view.wd) is not None for tree in trees)
        }
        return sum(tree.size for tree in trees) + len(others)

    # ---- entries -------------------------------------------------------------------

    def _node(self, tree: Tree, wd: int) -> Node | None:
        found = self._entries.get(wd)
        if type(found) is tuple:
            return found if found[0] is tree else None
        if type(found) is list:
            for entry in found:
                if type(entry) is tuple and entry[0] is tree:
                    return entry
        return None

    def _add_entry(self, wd: int, entry: Entry) -> None:
        found = self._entries.get(wd)
        if found is None:
            self._entries[wd] = entry
        elif type(found) is list:
            found.append(entry)
        else:
            self._entries[wd] = [found, entry]  # type: ignore[list-item]

    def _remove_entry(self, wd: int, entry: Entry, dead: bool = False) -> None:
        """Forget *entry* on its watch; with *dead*, the kernel watch is already gone."""
        found = self._entries.get(wd)
        if found is entry:
            del self._entries[wd]
        elif type(found) is list:
            for index, known in enumerate(found):
                if known is entry:
                    del found[index]
                    break
            if len(found) == 1:
                self._entries[wd] = found[0]
        if wd not in self._entries:
            self._dirs.pop(wd, None)
            if not dead:
                self._unwatch.append(wd)

    def _drop_subtree(self, tree: Tree, wd: int, dead: bool = False) -> None:
        """Forget the tree's directory on *wd* and every one below it; with *dead*, the
        kernel dropped *wd* itself (its subdirectories' watches may live on)."""
        node = self._node(tree, wd)
        if node is None:
            return
        _, up, name = node
        if not up:
            tree.top = 0
        else:
            siblings = tree.kids.get(up)
            if siblings is not None and siblings.get(name) == wd:
                del siblings[name]
                if not siblings:
                    del tree.kids[up]
        stack = [(wd, node)]
        while stack:
            current, found = stack.pop()
            for child in tree.kids.pop(current, {}).values():
                below = self._node(tree, child)
                if below is not None:
                    stack.append((child, below))
            self._remove_entry(current, found, dead and current == wd)
            tree.size -= 1

    def _attach(self, state: SubState, view: View, path: str) -> None:
        known = (view.kind, view.rel)
        views = state.views[view.root]
        old = views.get(known)
        if old is not None and old.wd == view.wd:
            return
        if old is not None:
            self._detach(state, old)
        views[known] = view
        self._add_entry(view.wd, view)
        self._dirs.setdefault(view.wd, path)

    def _detach(self, state: SubState, view: View, dead: bool = False) -> None:
        """Forget *view*; with *dead*, its kernel watch is already gone."""
        views = state.views[view.root]
        known = (view.kind, view.rel)
        if views.get(known) is view:
            del views[known]
        self._remove_entry(view.wd, view, dead)

    def _drop_root(self, state: SubState, root: int) -> None:
        for view in list(state.views[root].values()):
            self._detach(state, view)
        tree, state.roots[root].tree = state.roots[root].tree, None
        if tree is not None:
            self.discard_tree(tree)
