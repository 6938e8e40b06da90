"""A real watchd process under test, and the record a test child writes."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from tests.helpers.wait import DEFAULT_TIMEOUT, wait_until

REPO = Path(__file__).resolve().parents[2]
CHILD = str(REPO / "tests" / "helpers" / "child.py")


def child_command(record: Path, *options: str) -> list[str]:
    return [sys.executable, CHILD, str(record), *options]


class Record:
    """The lines a test child appended: ``start``, ``signal``, ``exit``, ``grandchild``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self, kind: str | None = None) -> list[list[str]]:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        rows = [line.split() for line in lines if line.strip()]
        return [row for row in rows if kind is None or row[0] == kind]

    def starts(self) -> list[int]:
        return [int(row[1]) for row in self.events("start")]

    def wait_starts(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> list[int]:
        wait_until(lambda: len(self.starts()) >= count, f"{count} child starts", timeout)
        return self.starts()


class Daemon:
    """``watchd run -c <tmp>/watchd.yaml`` as a real process."""

    def __init__(self, directory: Path, main: dict[str, Any] | None = None) -> None:
        self.directory = directory
        self.config_path = directory / "watchd.yaml"
        self.jobs_dir = directory / "jobs.d"
        self.jobs_dir.mkdir(exist_ok=True)
        self.log_path = directory / "watchd.log"
        # Unix socket paths are limited to 108 bytes: keep this one short.
        self._socket_dir = tempfile.TemporaryDirectory(prefix="wd", dir="/tmp")
        self.socket = Path(self._socket_dir.name) / "control.sock"
        settings: dict[str, Any] = {
            "log_level": "debug",
            "jobs_dir": "jobs.d",
            "control": {"socket": str(self.socket)},
        }
        settings.update(main or {})
        self.config_path.write_text(yaml.safe_dump(settings))
        self.process: subprocess.Popen[bytes] | None = None

    def write_jobs(self, filename: str, jobs: dict[str, Any]) -> Path:
        path = self.jobs_dir / filename
        path.write_text(yaml.safe_dump({"jobs": jobs}, sort_keys=False))
        return path

    def start(
        self, wait_ready: bool = True, prefix: Sequence[str] = (), stderr: int | None = None
    ) -> None:
        """Run watchd (through *prefix*, a command like ``prlimit …``, if given).

        Its log goes to log_path, or its stderr to the descriptor *stderr*.
        """
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*prefix, sys.executable, "-m", "watchd", "run", "-c", str(self.config_path)],
                stdout=log,
                stderr=log if stderr is None else stderr,
                env=env,
            )
        if wait_ready:
            self.wait_log("ready:")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, text: str, timeout: float = DEFAULT_TIMEOUT, count: int = 1) -> None:
        def seen() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"watchd exited early; its log:\n{self.log()}")
            return self.log().count(text) >= count

        try:
            wait_until(seen, f"{text!r} in watchd's log", timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- watchd log ---\n{self.log()}") from None

    def _watchctl_argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "watchd.ctl", "--socket", str(self.socket), *args]

    def watchctl(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``watchctl --socket <ours> ARGS`` (as *user*, through setpriv, if given)."""
        command = self._watchctl_argv(*args)
        if user is not None:
            gid = pwd.getpwnam(user).pw_gid  # "nobody"'s group is "nogroup" on Debian
            command = ["setpriv", f"--reuid={user}", f"--regid={gid}", "--clear-groups", *command]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )

    @contextmanager
    def following(self, *args: str) -> Iterator[IO[str]]:
        """``watchctl --socket <ours> ARGS`` left running (``logs -f``): its output to read
        line by line; on leaving, Ctrl-C, which must end it with exit status 0."""
        with subprocess.Popen(
            self._watchctl_argv(*args),
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        ) as follow:
            try:
                assert follow.stdout is not None
                yield follow.stdout
            finally:
                follow.send_signal(signal.SIGINT)
                status = follow.wait(30)
        assert status == 0

    def status(self, *jobs: str) -> dict[str, Any]:
        result = self.watchctl("status", "--json", *jobs)
        assert result.returncode in (0, 3), result.stderr
        body: dict[str, Any] = json.loads(result.stdout)
        return body

    def job(self, name: str) -> dict[str, Any]:
        (found,) = [job for job in self.status()["jobs"] if job["name"] == name]
        return dict(found)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, and wait; return the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"watchd did not stop; its log:\n{self.log()}") from None
        finally:
            self._socket_dir.cleanup()


@contextmanager
def running_daemon(directory: Path, main: dict[str, Any] | None = None) -> Iterator[Daemon]:
    daemon = Daemon(directory, main)
    try:
        yield daemon
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.stop()
        daemon._socket_dir.cleanup()


@dataclass(frozen=True)
class WatchedChild:
    """Job ``web``: the test child, restarted on each change under ``src``."""

    src: Path
    record: Record

    @property
    def definition(self) -> dict[str, Any]:
        return {"command": child_command(self.record.path), "watch": {"paths": [str(self.src)]}}


def start_watched_child(daemon: Daemon, directory: Path) -> WatchedChild:
    """Start *daemon* with job ``web`` alone (*directory*/src, *directory*/web), and wait
    for its child's first start."""
    web = WatchedChild(directory / "src", Record(directory / "web"))
    web.src.mkdir()
    daemon.write_jobs("jobs.yaml", {"web": web.definition})
    daemon.start()
    web.record.wait_starts(1)
    return web
