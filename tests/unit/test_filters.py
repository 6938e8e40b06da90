"""The default excludes against the names real editors and tools write."""

from __future__ import annotations

import pytest

from watchd.watch.filters import DEFAULT_EXCLUDES, PathFilter

# What each editor or tool leaves beside (or under) a file it edits or a tree it runs in.
NOISE = {
    "vim swap": [".app.py.swp", ".app.py.swo", ".app.py.swx", "pkg/.models.py.swp", ".env.swp"],
    "vim backup": ["app.py~", "pkg/models.py~"],
    "vim's write probe": ["4913", "pkg/4913"],
    "nano lock": [".app.py.swp"],
    "emacs lock": [".#app.py", "pkg/.#models.py"],
    "emacs and mg auto-save": ["#app.py#", "pkg/#models.py#", "#README#"],
    "emacs and mg backup": ["app.py~"],
    "mg backup on its way": ["app.py.XXXXrX9hzG", "pkg/models.py.XXXXa0B1c2"],
    "JetBrains safe write": ["app.py___jb_tmp___", "app.py___jb_old___"],
    "git": [".git/index", ".git/objects/ab/cdef", "vendor/lib/.git/HEAD"],
    "mercurial": [".hg/store/00changelog.i"],
    "python bytecode": ["__pycache__/app.cpython-311.pyc", "app.pyc"],
    "pytest": [
        ".pytest_cache/v/cache/lastfailed",
        ".pytest_cache/README.md",
        "pytest-cache-files-mm_0h5jk/README.md",  # made there, then renamed into place
    ],
    "mypy": [".mypy_cache/3.11/app.meta.json"],
    "ruff": [".ruff_cache/0.4.0/123456"],
    "tox": [".tox/py311/bin/python"],
    "nox": [".nox/tests/bin/python"],
}

# Names that look a little like the noise but are source.
SOURCE = [
    "app.py",
    "notes#1.md",
    "#channel.txt",
    "issue#4.py",
    "config.swift",
    "pkg/models.py",
    "templates/index.html",
    ".gitignore",
    ".github/workflows/ci.yml",
    "4913.py",
    "tox.ini",
    "noxfile.py",
    ".ruff.toml",
]


@pytest.mark.parametrize(
    "name", [name for names in NOISE.values() for name in names], ids=lambda name: name
)
def test_editor_and_tool_files_are_ignored_by_default(name: str) -> None:
    assert not PathFilter().accepts(name)


@pytest.mark.parametrize("name", SOURCE)
def test_source_files_are_not_taken_for_editor_files(name: str) -> None:
    assert PathFilter().accepts(name)


@pytest.mark.parametrize(
    "directory",
    [".pytest_cache", "pytest-cache-files-mm_0h5jk", ".mypy_cache", ".ruff_cache", ".tox", ".nox"],
)
def test_tool_cache_directories_are_pruned(directory: str) -> None:
    assert PathFilter().prunes(directory)
    assert PathFilter().prunes(f"sub/{directory}")


def test_every_default_pattern_matches_something_real() -> None:
    """A pattern that gitignore syntax reads as a comment (or that matches nothing of what
    it was written for) shows up here."""
    noise = [name for names in NOISE.values() for name in names]
    for pattern in DEFAULT_EXCLUDES:
        alone = PathFilter(exclude=[pattern], default_excludes=False)
        assert any(not alone.accepts(name) for name in noise), pattern


def test_the_defaults_can_be_turned_off() -> None:
    assert PathFilter(default_excludes=False).accepts("#app.py#")
    assert PathFilter(default_excludes=False).accepts(".pytest_cache/v/x")


def test_an_always_path_is_heard_even_when_the_patterns_leave_it_out() -> None:
    only_python = PathFilter(include=["*.py"], always=[".gitignore"])
    assert only_python.accepts(".gitignore")
    assert not only_python.wanted(".gitignore")
    assert not only_python.accepts("README.md")
