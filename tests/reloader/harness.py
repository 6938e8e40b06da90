"""Reloader programs under test: real processes in their own session, their output in a file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.helpers.wait import DEFAULT_TIMEOUT, wait_until

REPO = Path(__file__).resolve().parents[2]

# A program that runs ``main`` under the reloader and records, one line each:
# ``process <pid> <serving>`` at import (parent and child alike), ``start <pid> <version>``
# once main runs (its watches are armed by then), ``late <version>`` after a late import,
# ``atexit <pid>`` from an atexit function main registered.
APP = """\
import atexit
import logging
import os
import signal
import sys

from watchd.reloader import is_serving_child, run_with_reloader

import mod


def record(*words):
    with open(os.environ["RECORD"], "a") as out:
        out.write(" ".join(str(word) for word in words) + "\\n")


record("process", os.getpid(), is_serving_child())


def main(action):
    record("start", os.getpid(), mod.VERSION)
    if action.startswith("exit="):
        sys.exit(int(action.removeprefix("exit=")))
    if action.startswith("os-exit="):
        os._exit(int(action.removeprefix("os-exit=")))
    if action == "raise":
        raise RuntimeError("main failed")
    if action == "restart-once" and not os.path.exists("restarted"):
        open("restarted", "w").close()
        sys.exit(3)
    if action == "atexit":
        atexit.register(record, "atexit", os.getpid())
    if action == "late":
        import late

        record("late", late.VERSION)
    while True:
        signal.pause()


if __name__ == "__main__":
    logging.basicConfig(level=logging.DEBUG, format="%(message)s")
    extra = [path for path in os.environ.get("EXTRA", "").split(os.pathsep) if path]
    patterns = [text for text in os.environ.get("PATTERNS", "").split() if text]
    run_with_reloader(
        main,
        sys.argv[1] if len(sys.argv) > 1 else "",
        extra_files=extra,
        extra_patterns=patterns,
        debounce=float(os.environ.get("DEBOUNCE", "0.05")),
    )
"""


def write_module(path: Path, text: str) -> None:
    """Replace a file the way many editors do: write a temp file, rename it over."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.rename(path)


def environment(directory: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("WATCHD_RELOADER_") and key != "RUN_MAIN"
    }
    inherited = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path]
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), str(directory), *inherited]),
        # Same-size edits within one second would otherwise be served from a stale .pyc.
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        RECORD=str(directory / "record"),
        # The parent's report file goes here, so a parent killed outright leaves none behind.
        TMPDIR=str(directory),
    )
    env.update(extra)
    return env


def group_members(pgid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and entry.name != str(pgid):
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


class Program:
    """A reloader parent started in its own session (its child shares its process group)."""

    def __init__(
        self,
        directory: Path,
        argv: Sequence[str],
        stdin: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.record_path = directory / "record"
        self.output_path = directory / "output.log"
        with open(self.output_path, "ab") as output:
            self.process = subprocess.Popen(
                list(argv),
                cwd=directory,
                env=environment(directory, **(env or {})),
                stdin=subprocess.DEVNULL if stdin is None else stdin,
                stdout=output,
                stderr=subprocess.STDOUT,
                # With a terminal on stdin, ``setsid --ctty`` in argv makes the session.
                start_new_session=stdin is None,
            )
        self.pid = self.process.pid

    @classmethod
    def app(cls, directory: Path, *args: str, **env: str) -> Program:
        """``python app.py ARGS`` with ``mod.py`` at VERSION 1 beside it."""
        (directory / "app.py").write_text(APP)
        if not (directory / "mod.py").exists():
            write_module(directory / "mod.py", "VERSION = 1\n")
        return cls(directory, [sys.executable, "app.py", *args], env=env)

    @classmethod
    def reloader(cls, directory: Path, *args: str, **env: str) -> Program:
        """``python -m watchd.reloader ARGS``."""
        return cls(directory, [sys.executable, "-m", "watchd.reloader", *args], env=env)

    def rows(self, kind: str) -> list[list[str]]:
        try:
            lines = self.record_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [line.split()[1:] for line in lines if line.split()[:1] == [kind]]

    def starts(self) -> list[tuple[int, str]]:
        return [(int(row[0]), row[1]) for row in self.rows("start")]

    def wait_starts(self, count: int) -> list[tuple[int, str]]:
        def enough() -> bool:
            self.check_running()
            return len(self.starts()) >= count

        self.wait(enough, f"{count} starts of the child")
        return self.starts()

    def output(self) -> str:
        try:
            return self.output_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_watching(self, path: Path) -> None:
        """Wait for the child's debug line saying *path* is now watched."""

        def watched() -> bool:
            lines = self.output().splitlines()
            return any("now watching" in line and str(path) in line for line in lines)

        self.wait(watched, f"{path} to be watched")

    def wait_output(self, text: str, count: int = 1) -> None:
        self.wait(lambda: self.output().count(text) >= count, f"{text!r} in the output")

    def wait(
        self, predicate: Callable[[], object], what: str, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        try:
            wait_until(predicate, what, timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- output ---\n{self.output()}") from None

    def check_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"the parent exited ({self.process.returncode}); output:\n{self.output()}"
            )

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def exit_status(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the parent did not exit; output:\n{self.output()}") from None

    def close(self) -> None:
        """Whatever happened, leave nothing of the process group behind."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()
        wait_until(lambda: not group_members(self.pid), "the process group to be gone", 5)


# A command for ``-- command`` mode: records ``start <pid> <version>`` (the version read from
# the file ``version``), then exits with the status given, once if it is 3, or waits.
COMMAND = """\
import os
import signal
import sys

with open("version") as source:
    version = source.read().strip()
with open(os.environ["RECORD"], "a") as out:
    out.write(f"start {os.getpid()} {version}\\n")
status = int(sys.argv[1]) if len(sys.argv) > 1 else None
if status == 3 and os.path.exists("restarted"):
    status = None
if status is not None:
    open("restarted", "w").close()
    sys.exit(status)
signal.signal(signal.SIGTERM, lambda *args: sys.exit(143))
while True:
    signal.pause()
"""
