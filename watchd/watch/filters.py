"""Which paths a job cares about: gitignore-style include/exclude and editor temp files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pathspec

# Editor temp/swap files, VCS directories and tool caches, ignored unless a job turns
# them off. In gitignore syntax a line that starts with "#" is a comment, so emacs' is "\\#*#".
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".*.sw?",  # vim (and nano) swap: .app.py.swp, .swo, .swx
    "*~",  # vim, emacs, mg, nano backup: app.py~
    "4913",  # vim's write-permission probe
    ".#*",  # emacs lock: .#app.py
    "\\#*#",  # emacs and mg auto-save: #app.py#
    "*.XXXX??????",  # mg's backup, made under mkstemp's name before it becomes app.py~
    "*___jb_tmp___",  # JetBrains safe write
    "*___jb_old___",
    ".git/",
    ".hg/",
    "__pycache__/",
    "*.pyc",
    ".pytest_cache/",  # tool caches: written by running the tool, never source
    "pytest-cache-files-*/",  # pytest makes its cache there, then renames it into place
    ".mypy_cache/",
    ".ruff_cache/",
    ".tox/",
    ".nox/",
)


class PathFilter:
    """Decides, for a path relative to a watched root, whether a change there matters.

    ``include`` empty means everything is included. Exclusion wins over inclusion.
    Directories are pruned (not watched, not scanned) only by exclusion: an include
    pattern such as ``*.py`` must not stop the watcher from descending.
    """

    def __init__(
        self,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        *,
        default_excludes: bool = True,
        extra_exclude_lines: Iterable[str] = (),
        always: Iterable[str] = (),
    ) -> None:
        self.include_patterns = tuple(include)
        # Paths (relative) heard about whatever the patterns say: a file the watcher itself
        # must see, such as a .gitignore that is re-read when it changes.
        self.always = frozenset(always)
        self.exclude_patterns = tuple(exclude)
        self.default_excludes = default_excludes
        exclude_lines = list(self.exclude_patterns) + list(extra_exclude_lines)
        if default_excludes:
            exclude_lines += DEFAULT_EXCLUDES
        self._include = (
            pathspec.GitIgnoreSpec.from_lines(self.include_patterns)
            if self.include_patterns
            else None
        )
        self._exclude = pathspec.GitIgnoreSpec.from_lines(exclude_lines)

    @classmethod
    def with_gitignore(
        cls,
        roots: Iterable[Path],
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        *,
        default_excludes: bool = True,
    ) -> PathFilter:
        """A filter that also honours the ``.gitignore`` at the top of each root, and always
        hears about those files (so that they can be read again when they change)."""
        return cls(
            include,
            exclude,
            default_excludes=default_excludes,
            extra_exclude_lines=read_gitignores(roots),
            always=(GITIGNORE,),
        )

    def accepts(self, relpath: str, is_dir: bool = False) -> bool:
        """Does a change to *relpath* (a file, or a directory when *is_dir*) matter?"""
        if relpath in self.always and not is_dir:
            return True
        return self.wanted(relpath, is_dir)

    def wanted(self, relpath: str, is_dir: bool = False) -> bool:
        """What the patterns alone say of *relpath* (``always`` aside)."""
        if not relpath or relpath == ".":
            return True
        probe = relpath + "/" if is_dir else relpath
        if self._exclude.match_file(probe):
            return False
        if self._include is None:
            return True
        return self._include.match_file(probe)

    def prunes(self, reldir: str) -> bool:
        """Should the directory *reldir* be skipped entirely (no watch, no scan)?"""
        if not reldir or reldir == ".":
            return False
        return self._exclude.match_file(reldir + "/")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PathFilter) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (self.include_patterns, self.exclude_patterns, self.default_excludes, self.always)


GITIGNORE = ".gitignore"


def read_gitignores(roots: Iterable[Path]) -> list[str]:
    """The lines of the ``.gitignore`` at the top of each root (missing ones are empty)."""
    lines: list[str] = []
    for root in roots:
        try:
            lines += (root / GITIGNORE).read_text(errors="replace").splitlines()
        except OSError:
            continue
    return lines
