"""Scanning a subscription's roots into a :mod:`~watchd.watch.snapshot`: the poll backend's I/O.

The cost of a scan grows with the tree, so the loop over files is kept as lean as Python
allows: directories are listed through an open descriptor so each ``lstat`` is a
one-component ``fstatat``; entries are keyed by the names ``scandir`` returns; no ``Path``
objects; and the filter (a few microseconds per path) is asked only about paths not seen
before, its verdicts being remembered from one scan to the next.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from watchd.watch.base import Change, ChangeKind
from watchd.watch.filters import PathFilter
from watchd.watch.snapshot import DIR, Snapshot, Stat, count, diff

# What the filter said of an entry. Why one is missing from the snapshot is remembered so
# the filter is asked only once.
_RECORDED = 0  # a directory that is scanned and reported
_REJECTED = 1  # a file the filter does not accept
_PRUNED = 2  # a directory that is neither scanned nor recorded
_DESCENDED = 3  # a directory that is scanned but not itself reported (e.g. include: *.py)

_OPEN_ROOT = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# Below a root, never follow a symlink: a directory swapped for a link between listing and
# opening must not lead the scan out of the tree (or round in a cycle).
_OPEN_SUBDIR = _OPEN_ROOT | os.O_NOFOLLOW

# key -> {name: why that entry is not in the snapshot}
Skipped = dict[str, dict[str, int]]

_NOTHING: dict[str, int] = {}
_NO_ENTRIES: dict[str, Stat] = {}


class ScanAborted(Exception):
    """The scan was abandoned because its subscription was closed."""


class Scanner:
    """Scans one subscription's roots; one scan at a time.

    Roots may be directories (scanned recursively), files, or absent (their appearance is
    a change). A directory that cannot be listed, or vanishes mid-scan, is left out.
    """

    def __init__(self, roots: Iterable[str | os.PathLike[str]], path_filter: PathFilter) -> None:
        self.roots = tuple(dict.fromkeys(os.path.abspath(root) for root in roots))
        self.filter = path_filter
        self.snapshot: Snapshot = {}
        self.skipped: Skipped = {}
        # (st_dev, st_ino) of each root, symlinks followed: a root pointed at another
        # directory (a symlink on the way switched) is a change even when both look alike.
        self.identities: dict[str, tuple[int, int]] = {}
        self.aborted = False  # set from another thread to end a scan early

    def watched_paths(self) -> int:
        return count(self.snapshot)

    def rescan(self) -> list[Change]:
        """Scan again; return what changed since the previous scan."""
        scan = _Scan(self)
        for root in self.roots:
            scan.root(root)
        while scan.stack:
            if self.aborted:
                raise ScanAborted
            scan.directory(*scan.stack.pop())
        changes = diff(self.snapshot, scan.out)
        changes += [
            Change(ChangeKind.MODIFIED, root)
            for root, identity in scan.identities.items()
            if self.identities.get(root, identity) != identity
        ]
        self.snapshot, self.skipped, self.identities = scan.out, scan.skipped, scan.identities
        return changes


class _Scan:
    """One pass over the roots, reading the previous pass's verdicts."""

    def __init__(self, scanner: Scanner) -> None:
        self.filter = scanner.filter
        self.previous = scanner.snapshot
        self.previous_skipped = scanner.skipped
        self.out: Snapshot = {}
        self.skipped: Skipped = {}
        self.identities: dict[str, tuple[int, int]] = {}
        self.stack: list[tuple[str, int, int]] = []  # (key, length of its root's key, flags)

    def root(self, root: str) -> None:
        try:
            st = os.stat(root)  # a root named by the user is followed if it is a symlink
        except (OSError, ValueError):
            return
        self.identities[root] = (st.st_dev, st.st_ino)
        parent, name = os.path.split(root)
        is_dir = stat.S_ISDIR(st.st_mode)
        if name:  # "/" itself is in no directory
            parent_key = parent if parent.endswith("/") else parent + "/"
            entry = DIR if is_dir else (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)
            self.out.setdefault(parent_key, {})[name] = entry
        if is_dir:
            key = root if root.endswith("/") else root + "/"
            self.stack.append((key, len(key), _OPEN_ROOT))

    def directory(self, key: str, cut: int, flags: int) -> None:
        try:
            fd = os.open(key[:-1] or "/", flags)
        except OSError:  # gone, not a directory any more, or not readable
            return
        entries = self.out.setdefault(key, {})
        skips: dict[str, int] = {}
        try:
            subdirs = self._files(fd, key, key[cut:], entries, skips)
        finally:
            os.close(fd)
        for name in subdirs:
            verdict = self._dir_verdict(key, key[cut:], name)
            if verdict != _RECORDED:
                skips[name] = verdict
            if verdict != _PRUNED:
                if verdict == _RECORDED:
                    entries[name] = DIR
                self.stack.append((key + name + "/", cut, _OPEN_SUBDIR))
        if skips:
            self.skipped[key] = skips

    def _files(
        self, fd: int, key: str, rel: str, entries: dict[str, Stat], skips: dict[str, int]
    ) -> list[str]:
        """Record the files of the directory open as *fd*; return its subdirectories.

        The hot loop of the poll backend: it runs once per file per scan.
        """
        previous = self.previous.get(key, _NO_ENTRIES)
        previous_skips = self.previous_skipped.get(key, _NOTHING)
        accepts = self.filter.accepts
        subdirs: list[str] = []
        try:
            with os.scandir(fd) as listing:
                for entry in listing:
                    name = entry.name
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            subdirs.append(name)
                            continue
                        seen = previous.get(name)
                        if (seen is None or seen is DIR) and (
                            previous_skips.get(name) == _REJECTED or not accepts(rel + name)
                        ):
                            skips[name] = _REJECTED
                            continue
                        st = entry.stat(follow_symlinks=False)
                    except OSError:  # removed since it was listed
                        continue
                    entries[name] = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)
        except OSError:
            pass  # the listing broke off (the directory went away): keep what was read
        return subdirs

    def _dir_verdict(self, key: str, rel: str, name: str) -> int:
        if self.previous.get(key, _NO_ENTRIES).get(name) is DIR:
            return _RECORDED
        verdict = self.previous_skipped.get(key, _NOTHING).get(name, _REJECTED)
        if verdict != _REJECTED:
            return verdict
        # New, or a file the last time.
        if self.filter.prunes(rel + name):
            return _PRUNED
        return _RECORDED if self.filter.accepts(rel + name, True) else _DESCENDED
