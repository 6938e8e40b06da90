"""File trees to watch: N small files, 100 (or 20) to a directory, two levels deep."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

FILES_PER_DIR = 100
DIRS_PER_DIR = 30


# The million-file tree: 20 files to a directory, as in a large source checkout with its
# dependencies (51,668 directories for 1,000,000 files).
SCALE_FILES_PER_DIR = 20


def build(root: Path, files: int, files_per_dir: int = FILES_PER_DIR) -> list[Path]:
    """Create *files* files under *root* (reused if already built); return their paths."""
    marker = root / ".built"
    stamp = str(files) if files_per_dir == FILES_PER_DIR else f"{files} {files_per_dir}"
    paths = [_file_path(root, index, files_per_dir) for index in range(files)]
    if marker.exists() and marker.read_text() == stamp:
        return paths
    if root.exists():
        shutil.rmtree(root)
    for index, path in enumerate(paths):
        if index % files_per_dir == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"x\n")
        os.close(fd)
    marker.write_text(stamp)
    return paths


def directories(files: int, files_per_dir: int = FILES_PER_DIR) -> int:
    """How many directories :func:`build` makes, the root included."""
    leaves = -(-files // files_per_dir)
    return 1 + leaves + -(-leaves // DIRS_PER_DIR)


def _file_path(root: Path, index: int, files_per_dir: int = FILES_PER_DIR) -> Path:
    directory = index // files_per_dir
    outer, inner = divmod(directory, DIRS_PER_DIR)
    width = 3 if files_per_dir == FILES_PER_DIR else 4
    return root / f"d{outer:0{width}d}" / f"e{inner:02d}" / f"f{index % files_per_dir:03d}.txt"


def touch(path: Path) -> None:
    """Append one byte: a finished write (open, write, close)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"y")
    finally:
        os.close(fd)
