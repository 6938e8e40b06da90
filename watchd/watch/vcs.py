"""Where a git or Mercurial operation in progress leaves its lock, and what is there now.

A root inside a repository (or a repository's root itself) is held while one of these
exists: git's ``index.lock`` (any command that rewrites the index: checkout, merge, reset,
commit), ``rebase-merge/`` and ``rebase-apply/`` (a rebase or ``git am``, from start to end,
across all its commits), Mercurial's ``wlock``. A linked worktree or submodule (``.git`` is
a file saying ``gitdir: …``) keeps them in its own git directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from watchd.watch.holds import Stamp

GIT_LOCKS = ("index.lock", "rebase-merge", "rebase-apply")
HG_LOCKS = ("wlock",)


def lock_paths(roots: Iterable[str]) -> list[str]:
    """Every lock path that would mean an operation in progress for *roots*."""
    found: dict[str, None] = {}
    for root in roots:
        for directory, names in _repositories(root):
            found.update(dict.fromkeys(os.path.join(directory, name) for name in names))
    return list(found)


def present(paths: Iterable[str]) -> dict[str, Stamp]:
    """The locks among *paths* that exist now (a symlink, as Mercurial's are, included)."""
    stamps: dict[str, Stamp] = {}
    for path in paths:
        try:
            info = os.lstat(path)
        except OSError:
            continue
        stamps[path] = (info.st_mtime_ns, info.st_ino)
    return stamps


def _repositories(root: str) -> list[tuple[str, tuple[str, ...]]]:
    """The git and Mercurial directories of the nearest repository at or above *root*."""
    directory = os.path.abspath(root)
    while True:
        found: list[tuple[str, tuple[str, ...]]] = []
        git = _git_dir(os.path.join(directory, ".git"))
        if git is not None:
            found.append((git, GIT_LOCKS))
        if os.path.isdir(os.path.join(directory, ".hg")):
            found.append((os.path.join(directory, ".hg"), HG_LOCKS))
        parent = os.path.dirname(directory)
        if found or parent == directory:
            return found
        directory = parent


def _git_dir(dot_git: str) -> str | None:
    if os.path.isdir(dot_git):
        return dot_git
    try:
        with open(dot_git, encoding="utf-8", errors="replace") as file:
            first = file.readline(4096).strip()
    except OSError:
        return None
    if not first.startswith("gitdir:"):
        return None
    target = first.removeprefix("gitdir:").strip()
    return os.path.normpath(os.path.join(os.path.dirname(dot_git), target))
