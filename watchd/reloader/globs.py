"""``Path(directory).glob(pattern)`` as a watch filter, for Django's ``watch_dir``.

Django's contract for ``watch_dir(path, glob)`` is pathlib's: the files a change can be
reported for are exactly those ``Path(path).glob(glob)`` would list. That is not gitignore
syntax: ``*`` does not descend, ``*.py`` matches only in the directory itself, ``**``
matches any depth (zero included) but never descends through a symlink, dot files match
``*``, the match is case-sensitive, and no editor or cache patterns are left out.
"""

from __future__ import annotations

import re
import sys
from fnmatch import translate
from functools import cache
from pathlib import PurePosixPath

from watchd.watch.filters import PathFilter

RECURSIVE = "**"
# Before Python 3.13 a pattern ending in ``**`` lists directories only.
TRAILING_RECURSIVE_MATCHES_FILES = sys.version_info >= (3, 13)


@cache
def _part_matcher(part: str) -> re.Pattern[str]:
    return re.compile(translate(part))


def _parts(pattern: str) -> tuple[str, ...]:
    if not pattern:
        raise ValueError(f"unacceptable glob pattern: {pattern!r}")
    path = PurePosixPath(pattern)
    if path.is_absolute():
        raise NotImplementedError("non-relative glob patterns are unsupported")
    return path.parts


def _part_matches(name: str, part: str) -> bool:
    return _part_matcher(part).fullmatch(name) is not None


def matches(parts: tuple[str, ...], pattern: tuple[str, ...], is_dir: bool) -> bool:
    """Would ``glob(pattern)`` list the path made of *parts* (a directory when *is_dir*)?"""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == RECURSIVE:
        if not rest:
            return is_dir or (TRAILING_RECURSIVE_MATCHES_FILES and bool(parts))
        # ``**`` takes any number of leading directories, none included.
        return any(matches(parts[skip:], rest, is_dir) for skip in range(len(parts)))
    if not parts or not _part_matches(parts[0], head):
        return False
    return matches(parts[1:], rest, is_dir)


def may_hold_matches(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Could anything below the directory made of *parts* be listed by ``glob(pattern)``?"""
    for depth, name in enumerate(parts):
        if depth >= len(pattern) - 1:
            return pattern[-1:] == (RECURSIVE,) or RECURSIVE in pattern[:depth]
        if pattern[depth] == RECURSIVE:
            return True
        if not _part_matches(name, pattern[depth]):
            return False
    return True


class GlobFilter(PathFilter):
    """A watch filter that accepts exactly what ``Path(root).glob(pattern)`` lists."""

    def __init__(self, pattern: str) -> None:
        super().__init__(default_excludes=False)
        self.pattern = pattern
        self._pattern = _parts(pattern)

    def accepts(self, relpath: str, is_dir: bool = False) -> bool:
        if not relpath or relpath == ".":
            return False
        return matches(tuple(relpath.split("/")), self._pattern, is_dir)

    def prunes(self, reldir: str) -> bool:
        if not reldir or reldir == ".":
            return False
        return not may_hold_matches(tuple(reldir.split("/")), self._pattern)

    def _key(self) -> tuple[object, ...]:
        return ("glob", self.pattern)
