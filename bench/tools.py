"""Each tool under test, configured as its own docs recommend, launched and made ready."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.procs import Launched, NotifySocket
from bench.records import Record

HERE = Path(__file__).resolve().parent
CHILD = HERE / "child.py"
REPO = HERE.parent


def socket_dir(workdir: Path) -> Path:
    """A short folder for a run's Unix sockets (their paths are limited to 108 bytes)."""
    digest = hashlib.sha1(str(workdir).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"wdb-{digest}"
    path.mkdir(exist_ok=True)
    return path


def warm_up_seconds(files: int) -> float:
    """How long a peer is given after its first child starts to finish its own set-up."""
    return min(15.0, 2.0 + files / 10_000)


@dataclass
class Run:
    """A tool running on a tree, ready for measurement."""

    tool: Tool
    launched: Launched
    record: Record
    launched_ns: int
    ready_ns: int  # watchd: READY=1; peers: first child start + warm-up
    first_child_ns: int
    notify: NotifySocket | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        self.launched.stop()
        if self.notify is not None:
            self.notify.close()
            shutil.rmtree(self.notify.path.parent, ignore_errors=True)


class Tool:
    name = ""
    debounce = ""  # as the report states it
    watches_in_child = False  # the watching runs in the supervised process itself

    def argv(self, tree: Path, record: Record, workdir: Path) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def command_line(self, tree: Path, record: Record, workdir: Path) -> str:
        argv, _ = self.argv(tree, record, workdir)
        return shlex.join(argv)

    def start(self, tree: Path, workdir: Path, warm_up: float, timeout: float = 120.0) -> Run:
        workdir.mkdir(parents=True, exist_ok=True)
        record = Record(workdir / "record")
        argv, env = self.argv(tree, record, workdir)
        launched_ns = time.monotonic_ns()
        launched = Launched(argv, env, workdir, workdir / "tool.log")
        starts = record.wait_starts(1, timeout)
        if starts is None:
            launched.stop()
            raise RuntimeError(f"{self.name}: no child within {timeout}s; see {launched.log}")
        first = starts[0].ns
        time.sleep(warm_up)  # the peers do not say when their set-up is done
        return Run(self, launched, record, launched_ns, time.monotonic_ns(), first)


class Watchd(Tool):
    def __init__(self, debounce: str = "100ms", backend: str = "inotify") -> None:
        self.debounce = debounce
        self.backend = backend
        self.name = "watchd" if debounce == "100ms" else f"watchd (debounce {debounce})"
        if backend != "inotify":
            self.name += f" [{backend}]"

    def write_config(self, workdir: Path, jobs: dict[str, tuple[Path, Record]]) -> Path:
        jobs_dir = workdir / "jobs.d"
        jobs_dir.mkdir(parents=True, exist_ok=True)
        main = workdir / "watchd.yaml"
        main.write_text(
            yaml.safe_dump(
                {
                    "control": {"socket": str(socket_dir(workdir) / "ctl.sock")},
                    "log_level": "warning",
                    "jobs_dir": "jobs.d",
                }
            )
        )
        (jobs_dir / "bench.yaml").write_text(
            yaml.safe_dump({"jobs": {name: self.job(*job) for name, job in jobs.items()}})
        )
        return main

    def job(self, tree: Path, record: Record) -> dict[str, Any]:
        return {
            "command": [sys.executable, str(CHILD), str(record.path)],
            "watch": {"paths": [str(tree)], "backend": self.backend, "poll_interval": "1s"},
            "debounce": self.debounce,
            "stop_timeout": "5s",
        }

    def daemon_argv(self, main: Path) -> list[str]:
        return [sys.executable, "-m", "watchd", "run", "-c", str(main)]

    def env(self, workdir: Path) -> dict[str, str]:
        notify = socket_dir(workdir) / "notify.sock"
        return dict(os.environ, NOTIFY_SOCKET=str(notify), PYTHONPATH=str(REPO))

    def start(self, tree: Path, workdir: Path, warm_up: float, timeout: float = 120.0) -> Run:
        workdir.mkdir(parents=True, exist_ok=True)
        record = Record(workdir / "record")
        main = self.write_config(workdir, {"bench": (tree, record)})
        return self.launch(main, workdir, record, timeout)

    def launch(self, main: Path, workdir: Path, record: Record, timeout: float = 120.0) -> Run:
        notify = NotifySocket(socket_dir(workdir) / "notify.sock")
        launched_ns = time.monotonic_ns()
        launched = Launched(
            self.daemon_argv(main), self.env(workdir), workdir, workdir / "tool.log"
        )
        ready = notify.wait_ready(timeout)
        starts = record.wait_starts(1, timeout) if ready is not None else None
        if ready is None or starts is None:
            launched.stop()
            notify.close()
            raise RuntimeError(f"{self.name}: not ready within {timeout}s; see {launched.log}")
        return Run(self, launched, record, launched_ns, ready, starts[0].ns, notify)


class PeerTool(Tool):
    def __init__(self, python: Path) -> None:
        self.python = python
        self.bin = python.parent

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(HERE), PYTHONDONTWRITEBYTECODE="1")


class Watchfiles(PeerTool):
    name = "watchfiles"
    debounce = "1600ms window, 50ms step (default)"

    def argv(self, tree: Path, record: Record, workdir: Path) -> tuple[list[str], dict[str, str]]:
        target = shlex.join([str(self.python), str(CHILD), str(record.path)])
        return [str(self.bin / "watchfiles"), "--filter", "all", target, str(tree)], self.env()


class Watchmedo(PeerTool):
    name = "watchmedo"
    debounce = "none (default)"

    def argv(self, tree: Path, record: Record, workdir: Path) -> tuple[list[str], dict[str, str]]:
        return [
            str(self.bin / "watchmedo"),
            "auto-restart",
            "--directory",
            str(tree),
            "--recursive",
            "--signal",
            "SIGTERM",
            "--",
            str(self.python),
            str(CHILD),
            str(record.path),
        ], self.env()


class Hupper(PeerTool):
    name = "hupper"
    debounce = "1s reload interval (default)"

    def argv(self, tree: Path, record: Record, workdir: Path) -> tuple[list[str], dict[str, str]]:
        return [str(self.python), str(HERE / "peer_hupper.py"), str(record.path), str(tree)], (
            self.env()
        )


class DjangoStat(PeerTool):
    name = "django StatReloader"
    debounce = "1s tick (StatReloader)"
    watches_in_child = True

    def argv(self, tree: Path, record: Record, workdir: Path) -> tuple[list[str], dict[str, str]]:
        return [str(self.python), str(HERE / "peer_django.py"), str(record.path), str(tree)], (
            self.env()
        )


def peers(python: Path | None) -> list[Tool]:
    if python is None:
        return []
    return [Watchfiles(python), Watchmedo(python), Hupper(python), DjangoStat(python)]
