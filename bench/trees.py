"""File trees to watch: N small files, 100 to a directory, two levels deep."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

FILES_PER_DIR = 100
DIRS_PER_DIR = 30


def build(root: Path, files: int) -> list[Path]:
    """Create *files* files under *root* (reused if already built); return their paths."""
    marker = root / ".built"
    paths = [_file_path(root, index) for index in range(files)]
    if marker.exists() and marker.read_text() == str(files):
        return paths
    if root.exists():
        shutil.rmtree(root)
    for index, path in enumerate(paths):
        if index % FILES_PER_DIR == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"x\n")
        os.close(fd)
    marker.write_text(str(files))
    return paths


def _file_path(root: Path, index: int) -> Path:
    directory = index // FILES_PER_DIR
    outer, inner = divmod(directory, DIRS_PER_DIR)
    return root / f"d{outer:03d}" / f"e{inner:02d}" / f"f{index % FILES_PER_DIR:03d}.txt"


def touch(path: Path) -> None:
    """Append one byte: a finished write (open, write, close)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"y")
    finally:
        os.close(fd)
