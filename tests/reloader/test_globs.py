"""``watch_dir`` globs accept exactly what ``Path.glob`` lists, on the same tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from watchd.reloader.globs import GlobFilter

FILES = [
    "app.py",
    "README",
    ".hidden.py",
    "foo~",
    "#auto#",
    "Upper.PY",
    "x.py/inside.txt",
    "x.py/inner.py",
    "sub/mod.py",
    "sub/mod.pyc",
    "sub/deep/leaf.py",
    "sub/deep/leaf.txt",
    "__pycache__/app.cpython-311.pyc",
    ".git/HEAD",
    "templates/base.html",
    "templates/admin/index.html",
    "a1.py",
    "b2.py",
]

PATTERNS = [
    "*",
    "*.py",
    "**/*.py",
    "**/*",
    "**/*.pyc",
    "sub/*.py",
    "*/*.py",
    "*/mod.py",
    "sub/**/*.py",
    "templates/**/*.html",
    "[ab]?.py",
    "?2.py",
    ".*",
    "*.PY",
    "**",
    "sub/**",
    "x.py",
    "nothing/*.py",
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("globs")
    for name in FILES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    return root


def every_path(root: Path) -> dict[str, bool]:
    """Every path below *root*, relative, with whether it is a directory."""
    found: dict[str, bool] = {}
    for directory, dirs, files in os.walk(root):
        base = Path(directory).relative_to(root)
        for name in dirs:
            found[(base / name).as_posix()] = True
        for name in files:
            found[(base / name).as_posix()] = False
    return found


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_glob_accepts_exactly_what_path_glob_lists(tree: Path, pattern: str) -> None:
    expected = {path.relative_to(tree).as_posix() for path in tree.glob(pattern)} - {"."}
    glob_filter = GlobFilter(pattern)
    accepted = {rel for rel, is_dir in every_path(tree).items() if glob_filter.accepts(rel, is_dir)}
    assert accepted == expected


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_pruned_directory_holds_nothing_the_glob_lists(tree: Path, pattern: str) -> None:
    glob_filter = GlobFilter(pattern)
    listed = {path.relative_to(tree).as_posix() for path in tree.glob(pattern)}
    directories = [rel for rel, is_dir in every_path(tree).items() if is_dir]
    pruned = [rel for rel in directories if glob_filter.prunes(rel)]
    assert not [path for path in listed for rel in pruned if path.startswith(rel + "/")]
    if pattern in ("*", "*.py", "sub/*.py"):
        # Non-recursive patterns cost no watch below the directories they can match in.
        assert "sub/deep" in pruned


def test_an_absolute_or_empty_pattern_is_refused() -> None:
    with pytest.raises(NotImplementedError):
        GlobFilter("/etc/*")
    with pytest.raises(ValueError, match="unacceptable"):
        GlobFilter("")
