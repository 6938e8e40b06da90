"""gunicorn under continuous load, restarted again and again: what its clients see under
watchd's two kill modes and under peers that restart it their own way.

gunicorn's master stops its own workers on SIGTERM. Signalled together with them
(``kill_mode: group``), it may see a worker exit before it acts on its own signal and boot
a replacement; one still booting loses the master's SIGTERM, serves on, and is SIGKILLed
mid-request when ``--graceful-timeout`` ends, which is then how long the restart lasts.
``kill_mode: mixed`` signals the master alone. Every subject runs the same gunicorn (the
one installed beside watchd) with the same app, whose answers name the master that booted
the answering worker and the worker: ``MASTERPID WORKERPID``."""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.downtime import Served, free_port, script_env, supervised, watchd_served
from bench.loadgen import LoadGenerator, Sample
from bench.procs import Launched

Result = dict[str, Any]
START_TIMEOUT = 90.0  # gunicorn's master and workers each import it: slow on a loaded machine
RESTART_TIMEOUT = 60.0

# The master's PID is taken when the worker imports the app: a worker left behind by its
# master still names it.
APP = """\
import os

VERSION = {version}
MASTER = os.getppid()


def application(environ, start_response):
    body = f"{{MASTER}} {{os.getpid()}}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


@dataclass(frozen=True)
class GunicornSizes:
    restarts: int = 50
    concurrency: int = 10
    workers: int = 2
    graceful_timeout: int = 5  # gunicorn's --graceful-timeout, small so that a stuck one shows
    steady: float = 3.0  # seconds of load before the first restart


QUICK_GUNICORN = GunicornSizes(restarts=1, concurrency=4, graceful_timeout=2, steady=0.5)


def available() -> bool:
    return importlib.util.find_spec("gunicorn") is not None


def gunicorn_argv(app: Path, sizes: GunicornSizes, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(sizes.workers),
        "--graceful-timeout",
        str(sizes.graceful_timeout),
        "--no-control-socket",  # its default path is shared by every gunicorn of a user
        "--chdir",
        str(app),
        *extra,
        "app:application",
    ]


def write_app(app: Path, number: int) -> None:
    (app / "app.py").write_text(APP.format(version=number))


def saver(app: Path) -> Callable[[], None]:
    """Each call saves a new version of the app: a file-triggered restart."""
    count = iter(range(1, 1_000_000_000))
    return lambda: write_app(app, next(count))


class Subject:
    name = ""
    how = ""  # how it restarts, as the report says

    def serve(self, workdir: Path, app: Path, port: int, sizes: GunicornSizes) -> Served:
        raise NotImplementedError


class WatchdGunicorn(Subject):
    def __init__(self, kill_mode: str) -> None:
        self.kill_mode = kill_mode
        self.name = f"watchd (kill_mode: {kill_mode}, held socket)"
        self.how = f"a saved file; `kill_mode: {kill_mode}`, stop-first"

    def serve(self, workdir: Path, app: Path, port: int, sizes: GunicornSizes) -> Served:
        job = {
            "command": gunicorn_argv(app, sizes),
            "env": {"PYTHONDONTWRITEBYTECODE": "1"},
            "watch": {"paths": [str(app)], "include": ["*.py"]},
            "debounce": "20ms",
            # Past gunicorn's graceful timeout, so that gunicorn ends its own workers.
            "stop_timeout": f"{sizes.graceful_timeout + 10}s",
            "kill_mode": self.kill_mode,
            "sockets": [{"tcp": f"127.0.0.1:{port}"}],
        }
        return watchd_served(workdir, job, saver(app), self.name)


class SupervisordGunicorn(Subject):
    name = "supervisord"
    how = "`supervisorctl restart` (SIGTERM to the master alone: no `stopasgroup`); own port"

    def __init__(self, python: Path) -> None:
        self.python = python

    def serve(self, workdir: Path, app: Path, port: int, sizes: GunicornSizes) -> Served:
        command = gunicorn_argv(app, sizes, "--bind", f"127.0.0.1:{port}")
        return supervised(self.python.parent, workdir, command, sizes.graceful_timeout + 10)


class WatchfilesGunicorn(Subject):
    name = "watchfiles"
    how = "a saved file (SIGINT to the master: gunicorn's quick shutdown); own port"

    def __init__(self, python: Path) -> None:
        self.python = python

    def serve(self, workdir: Path, app: Path, port: int, sizes: GunicornSizes) -> Served:
        command = " ".join(gunicorn_argv(app, sizes, "--bind", f"127.0.0.1:{port}"))
        watchfiles = str(self.python.parent / "watchfiles")
        argv = [watchfiles, "--filter", "python", command, str(app)]
        return Served(Launched(argv, script_env(), workdir, workdir / "log"), saver(app))


def subjects(python: Path | None, wanted: set[str]) -> list[Subject]:
    chosen: list[Subject] = []
    if "watchd" in wanted:
        chosen += [WatchdGunicorn("group"), WatchdGunicorn("mixed")]
    if python is not None:
        peers: list[Subject] = [SupervisordGunicorn(python), WatchfilesGunicorn(python)]
        chosen += [peer for peer in peers if peer.name in wanted]
    return chosen


def gunicorn(workdir: Path, sizes: GunicornSizes, chosen: list[Subject]) -> Iterator[Result]:
    if chosen and not available():
        print("bench: gunicorn is not installed beside watchd; skipping it", file=sys.stderr)
        return
    for subject in chosen:
        safe = "".join(c if c.isalnum() else "-" for c in subject.name)
        run_dir = workdir / "runs" / f"gunicorn-{safe}"
        if run_dir.exists():
            subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        app = run_dir / "app"
        app.mkdir(parents=True)
        write_app(app, 0)
        port = free_port()
        served = subject.serve(run_dir, app, port, sizes)
        try:
            yield measure(subject, served, port, sizes)
        finally:
            served.stop()


class Answers:
    """What the load generator's samples say about masters and their workers."""

    def __init__(self, load: LoadGenerator) -> None:
        self.load = load
        self.read = 0
        self.first: dict[str, int] = {}  # master → end of its first answer
        self.workers: dict[str, set[str]] = {}

    def update(self) -> None:
        samples = self.load.samples[self.read :]
        self.read += len(samples)
        for sample in samples:
            if sample.outcome == "ok" and len(parts := sample.server.split()) == 2:
                master, worker = parts
                self.first[master] = min(self.first.get(master, sample.end_ns), sample.end_ns)
                self.workers.setdefault(master, set()).add(worker)

    def wait(self, found: Callable[[], str | None], timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.update()
            if (value := found()) is not None:
                return value
            time.sleep(0.005)
        return None

    def new_master(self, known: set[str], timeout: float) -> str | None:
        return self.wait(lambda: next((m for m in self.first if m not in known), None), timeout)

    def every_worker(self, master: str, workers: int, timeout: float) -> bool:
        """Every worker of *master* has answered: a restart asked for while gunicorn still
        boots a worker would lose that worker's SIGTERM (it has no handler yet), whatever
        the kill mode, so each restart waits for this."""

        def full() -> str | None:
            return master if len(self.workers.get(master, ())) >= workers else None

        return self.wait(full, timeout) is not None


def measure(subject: Subject, served: Served, port: int, sizes: GunicornSizes) -> Result:
    windows: list[tuple[int, int | None]] = []  # (trigger, first answer of the new master)
    with LoadGenerator(port, sizes.concurrency) as load:
        answers = Answers(load)
        first = answers.new_master(set(), START_TIMEOUT)
        if first is None or not answers.every_worker(first, sizes.workers, START_TIMEOUT):
            raise RuntimeError(f"{subject.name}: gunicorn never served; see {served.launched.log}")
        time.sleep(sizes.steady)
        steady_end = time.monotonic_ns()
        for _ in range(sizes.restarts):
            answers.update()
            known = set(answers.first)
            changed = time.monotonic_ns()
            served.restart()
            new = answers.new_master(known, RESTART_TIMEOUT)
            if new is None or not answers.every_worker(new, sizes.workers, RESTART_TIMEOUT):
                windows.append((changed, None))
                continue
            windows.append((changed, answers.first[new]))
            time.sleep(0.2)  # the old master's last requests end
        samples = list(load.samples)
    return _figures(subject, sizes, samples, steady_end, windows)


def _figures(
    subject: Subject,
    sizes: GunicornSizes,
    samples: list[Sample],
    steady_end: int,
    windows: list[tuple[int, int | None]],
) -> Result:
    after = [s for s in samples if s.start_ns >= steady_end]
    failures = Counter(s.outcome for s in samples if s.outcome != "ok")
    restart_ms = [None if end is None else (end - start) / 1e6 for start, end in windows]
    done = [ms for ms in restart_ms if ms is not None]
    return {
        "workload": "gunicorn",
        "tool": subject.name,
        "how": subject.how,
        "gunicorn": version("gunicorn"),
        "workers": sizes.workers,
        "graceful_timeout_s": sizes.graceful_timeout,
        "restarts": sizes.restarts,
        "concurrency": sizes.concurrency,
        "requests": len(samples),
        "requests_after_steady": len(after),
        "failed": sum(failures.values()),
        "failures": dict(failures),
        "restart_ms": restart_ms,
        "restart_p50_ms": statistics.median(done) if done else None,
        "over_graceful_timeout": sum(ms > sizes.graceful_timeout * 1000 for ms in done),
        "missed": len(restart_ms) - len(done),
    }
