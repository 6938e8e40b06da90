"""What a serving child tells its parent as it ends, through a small JSON file.

The parent names the file in ``WATCHD_RELOADER_REPORT``. The child rewrites it as it exits:
the files it had loaded (so a parent whose child then fails knows what to watch for the
fix), the file named by the error that ended it, and whether the program failed. The child
first writes the report, with its PID, as soon as ``main`` is about to run, so any end that
is not a failure it reported (``sys.exit(N)``, ``os._exit(N)``, ``main`` returning, a
signal) is the program's own and its status is passed on. A child that dies before it gets
to write (a syntax error at the top of the script) leaves the previous child's report in
place: its PID is not this child's, so the parent knows the program failed to start, and
the files in it are what the parent should watch anyway.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field

REPORT_ENV = "WATCHD_RELOADER_REPORT"


@dataclass
class Report:
    files: list[str] = field(default_factory=list)
    error_files: list[str] = field(default_factory=list)
    pid: int | None = None  # the child that wrote it
    failed: bool = False  # main raised: the parent waits for a fix instead of exiting

    def is_from(self, pid: int) -> bool:
        return self.pid == pid

    def watch_files(self) -> set[str]:
        return set(self.files) | set(self.error_files)


def create() -> str:
    """A fresh, empty report file for one parent's children; the caller removes it."""
    descriptor, path = tempfile.mkstemp(prefix="watchd-reloader-", suffix=".json")
    os.close(descriptor)
    return path


def read(path: str) -> Report:
    try:
        with open(path, encoding="utf-8") as source:
            data = json.load(source)
        return Report(
            [str(name) for name in data.get("files", [])],
            [str(name) for name in data.get("error_files", [])],
            data["pid"] if isinstance(data.get("pid"), int) else None,
            data.get("failed") is True,
        )
    except (OSError, ValueError, AttributeError):
        return Report()


def write(
    path: str,
    files: Iterable[str],
    error_files: Iterable[str] = (),
    failed: bool = False,
) -> None:
    """Replace the report at *path* atomically: the parent never reads half of one."""
    body = {
        "files": sorted(files),
        "error_files": sorted(error_files),
        "pid": os.getpid(),
        "failed": failed,
    }
    partial = f"{path}.{os.getpid()}.tmp"
    try:
        with open(partial, "w", encoding="utf-8") as out:
            json.dump(body, out)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(partial)


def remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
