"""What the poll backend saw of a tree, and the changes between two such snapshots.

Pure code: building a snapshot is :mod:`watchd.watch.scan`'s job.

A snapshot is grouped by directory: ``{"/srv/app/": {"main.py": stat, "lib": DIR}}``, where
each key is a directory path ending in ``/`` and each inner key an entry's name, so the
entry's path is ``key + name``. The grouping lets a scan store entries by the names the
kernel returns (no string joins) and lets two snapshots be compared one directory at a time.
"""

from __future__ import annotations

from typing import Final

from watchd.watch.base import Change, ChangeKind

# (st_mtime_ns, st_size, st_ino, st_mode): a file (or symlink) counts as changed when any
# of these differ, whichever way they moved: an mtime set back by ``touch -d`` or ``tar
# -x``, a rename that replaces a file by another of the same size and mtime, a ``chmod``.
# The access time is not compared: reading a file is not changing it.
Stat = tuple[int, int, int, int]

# A directory. Its own mtime is not compared: it changes whenever an entry is added or
# removed, and those entries are reported themselves.
DIR: Final[Stat] = (-1, -1, -1, -1)

Snapshot = dict[str, dict[str, Stat]]


def is_dir(stat: Stat) -> bool:
    return stat == DIR


def count(snapshot: Snapshot) -> int:
    """How many files and directories *snapshot* holds."""
    return sum(len(entries) for entries in snapshot.values())


def diff(old: Snapshot, new: Snapshot) -> list[Change]:
    """What changed from *old* to *new*: one change per path.

    A path only in *new* is ADDED, only in *old* DELETED, in both with a different stat
    MODIFIED (a file replaced by a directory, or the reverse, included).
    """
    if old == new:  # the usual case, compared at C speed
        return []
    changes: list[Change] = []
    for key, entries in new.items():
        before = old.get(key)
        if before is None:
            changes += [Change(ChangeKind.ADDED, key + name) for name in entries]
        elif before != entries:
            _diff_dir(key, before, entries, changes)
    for key, entries in old.items():
        if key not in new:
            changes += [Change(ChangeKind.DELETED, key + name) for name in entries]
    return changes


def _diff_dir(key: str, old: dict[str, Stat], new: dict[str, Stat], changes: list[Change]) -> None:
    for name, stat in new.items():
        before = old.get(name)
        if before is None:
            changes.append(Change(ChangeKind.ADDED, key + name))
        elif before != stat:
            changes.append(Change(ChangeKind.MODIFIED, key + name))
    changes += [Change(ChangeKind.DELETED, key + name) for name in old if name not in new]
