"""Downtime: an HTTP server under continuous load, restarted again and again; what the
clients see. The same server (``bench/server.py``) under every tool, each restarted its
own way: a saved file for the file watchers, ``supervisorctl restart`` and ``circusctl
reload`` for the process managers that do not watch files."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.loadgen import LoadGenerator, Sample
from bench.procs import Launched, NotifySocket
from bench.records import Record
from bench.tools import HERE, REPO, Watchd, socket_dir

SERVER = HERE / "server.py"
Result = dict[str, Any]
START_TIMEOUT = 60.0
RESTART_TIMEOUT = 30.0


@dataclass(frozen=True)
class DowntimeSizes:
    restarts: int = 50
    concurrency: int = 50
    steady: float = 5.0  # seconds of load before the first restart
    delay: float = 0.3  # the server's start-up (an application's imports)


QUICK_DOWNTIME = DowntimeSizes(restarts=2, concurrency=4, steady=0.5, delay=0.1)


@dataclass
class Served:
    """A tool running the server: how to restart it, and how to stop everything."""

    launched: Launched
    restart: Callable[[], None]
    cleanup: Callable[[], None] = lambda: None

    def stop(self) -> None:
        self.launched.stop()
        self.cleanup()


def server_argv(python: str, record: Record, port: int, delay: float, *extra: str) -> list[str]:
    return [python, str(SERVER), str(record.path), "--port", str(port), "--delay", f"{delay:g}"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Subject:
    name = ""
    how = ""  # how it restarts, as the report says

    def serve(self, workdir: Path, record: Record, port: int, delay: float) -> Served:
        raise NotImplementedError


class WatchdServer(Subject):
    def __init__(self, held: bool, overlap: bool = False) -> None:
        self.held, self.overlap = held, overlap
        mode = "overlap" if overlap else "stop-first"
        self.name = f"watchd ({mode}, {'held socket' if held else 'own port'})"
        self.how = "a saved file; " + (
            "`restart_mode: overlap`, `ready: notify`" if overlap else "the default stop-first"
        )

    def serve(self, workdir: Path, record: Record, port: int, delay: float) -> Served:
        app = workdir / "app"
        app.mkdir(parents=True)
        (app / "app.py").write_text("0\n")
        job: dict[str, Any] = {
            "command": server_argv(sys.executable, record, port, delay),
            "watch": {"paths": [str(app)]},
            "stop_timeout": "10s",
        }
        if self.held:
            job["sockets"] = [{"tcp": f"127.0.0.1:{port}"}]
        if self.overlap:
            job.update(restart_mode="overlap", ready="notify")
        return watchd_served(workdir, job, saver(app / "app.py"), self.name)


def watchd_served(
    workdir: Path, job: dict[str, Any], restart: Callable[[], None], name: str
) -> Served:
    """watchd running *job* as its job `web`, once it has said READY=1."""
    tool = Watchd()
    main = tool.write_config(workdir, {})
    (workdir / "jobs.d" / "bench.yaml").write_text(yaml.safe_dump({"jobs": {"web": job}}))
    notify = NotifySocket(socket_dir(workdir) / "notify.sock")
    launched = Launched(tool.daemon_argv(main), tool.env(workdir), workdir, workdir / "log")
    if notify.wait_ready(START_TIMEOUT) is None:
        launched.stop()
        notify.close()
        raise RuntimeError(f"{name}: not ready; see {launched.log}")
    return Served(launched, restart, notify.close)


class WatchdReloadServer(Subject):
    name = "watchd (watchd-reload, held socket)"
    how = "a saved file; `watchd-reload --socket`, the developer's loop"

    def serve(self, workdir: Path, record: Record, port: int, delay: float) -> Served:
        app = workdir / "app"
        app.mkdir(parents=True)
        server = server_argv(sys.executable, record, port, delay)
        socket = f"127.0.0.1:{port}"
        argv = [sys.executable, "-m", "watchd.reloader", "-q", "-w", str(app), "--socket", socket]
        return _watched([*argv, "--", *server], workdir, app)


class HupperServer(Subject):
    name = "hupper"
    how = "a saved file (`hupper -w`: SIGTERM, then the new server)"

    def __init__(self, python: Path) -> None:
        self.python = python

    def serve(self, workdir: Path, record: Record, port: int, delay: float) -> Served:
        app = workdir / "app"
        app.mkdir(parents=True)
        (app / "app.py").write_text("0\n")  # hupper watches files, not directories
        _, _, *arguments = server_argv(str(self.python), record, port, delay)
        hupper = str(self.python.parent / "hupper")
        argv = [hupper, "-q", "-w", str(app / "app.py"), "-m", "server", *arguments]
        launched = Launched(argv, script_env(HERE), workdir, workdir / "log")
        return Served(launched, saver(app / "app.py"))


class WatchfilesServer(Subject):
    name = "watchfiles"
    how = "a saved file (SIGINT, then the new server)"

    def __init__(self, python: Path) -> None:
        self.python = python

    def serve(self, workdir: Path, record: Record, port: int, delay: float) -> Served:
        app = workdir / "app"
        app.mkdir(parents=True)
        command = " ".join(server_argv(str(self.python), record, port, delay))
        argv = [str(self.python.parent / "watchfiles"), "--filter", "all", command, str(app)]
        return _watched(argv, workdir, app)


class WatchmedoServer(Subject):
    name = "watchmedo"
    how = "a saved file (`auto-restart --signal SIGTERM`)"

    def __init__(self, python: Path) -> None:
        self.python = python

    def serve(self, workdir: Path, record: Record, port: int, delay: float) -> Served:
        app = workdir / "app"
        app.mkdir(parents=True)
        argv = [
            str(self.python.parent / "watchmedo"),
            "auto-restart",
            "--directory",
            str(app),
            "--recursive",
            "--signal",
            "SIGTERM",
            "--",
            *server_argv(str(self.python), record, port, delay),
        ]
        return _watched(argv, workdir, app)


def _watched(argv: list[str], workdir: Path, app: Path) -> Served:
    launched = Launched(argv, script_env(), workdir, workdir / "log")
    return Served(launched, saver(app / "app.py"))


def saver(path: Path) -> Callable[[], None]:
    """Each call saves *path* with new content: a file-triggered restart."""
    count = iter(range(1, 1_000_000_000))

    def save() -> None:
        path.write_text(f"{next(count)}\n")

    return save


def script_env(path: Path = REPO) -> dict[str, str]:
    return dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(path))


class SupervisordServer(Subject):
    name = "supervisord"
    how = "`supervisorctl restart` (it does not watch files)"

    def __init__(self, python: Path) -> None:
        self.python = python

    def serve(self, workdir: Path, record: Record, port: int, delay: float) -> Served:
        command = server_argv(str(self.python), record, port, delay)
        return supervised(self.python.parent, workdir, command, stop_wait=10)


def supervised(bin_dir: Path, workdir: Path, command: list[str], stop_wait: int) -> Served:
    """supervisord (from *bin_dir*) running *command* as its program `web`, stopped with
    SIGTERM (to that process alone) and restarted by `supervisorctl restart`."""
    workdir.mkdir(parents=True, exist_ok=True)
    control = socket_dir(workdir) / "supervisor.sock"
    conf = workdir / "supervisord.conf"
    conf.write_text(
        "[unix_http_server]\n"
        f"file={control}\n"
        "[supervisord]\n"
        f"logfile={workdir / 'supervisord.log'}\n"
        f"pidfile={workdir / 'supervisord.pid'}\n"
        "nodaemon=true\n"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        "[supervisorctl]\n"
        f"serverurl=unix://{control}\n"
        "[program:web]\n"
        f"command={' '.join(command)}\n"
        "stopsignal=TERM\n"
        f"stopwaitsecs={stop_wait}\n"
        "autorestart=true\n"
    )
    launched = Launched(
        [str(bin_dir / "supervisord"), "-c", str(conf)], script_env(), workdir, workdir / "log"
    )
    pending: list[subprocess.Popen[bytes]] = []

    def restart() -> None:
        ctl = [str(bin_dir / "supervisorctl"), "-c", str(conf), "restart", "web"]
        pending.append(subprocess.Popen(ctl, stdout=subprocess.DEVNULL))

    def cleanup() -> None:
        for process in pending:
            process.wait(30)

    return Served(launched, restart, cleanup)


class CircusServer(Subject):
    name = "circus"
    how = "`circusctl reload` (graceful: new process first); circus holds the socket"

    def __init__(self, python: Path) -> None:
        self.python = python

    def serve(self, workdir: Path, record: Record, port: int, delay: float) -> Served:
        workdir.mkdir(parents=True, exist_ok=True)
        short = socket_dir(workdir)
        endpoint = f"ipc://{short / 'circus.sock'}"
        ini = workdir / "circus.ini"
        command = server_argv(str(self.python), record, 0, delay)
        ini.write_text(
            "[circus]\n"
            f"endpoint = {endpoint}\n"
            f"pubsub_endpoint = ipc://{short / 'circus-pubsub.sock'}\n"
            "statsd = False\n"
            "[watcher:web]\n"
            f"cmd = {command[0]}\n"
            f"args = {' '.join(command[1:])} --fd $(circus.sockets.web)\n"
            "use_sockets = True\n"
            "numprocesses = 1\n"
            "graceful_timeout = 10\n"
            "copy_env = True\n"
            "[socket:web]\n"
            "host = 127.0.0.1\n"
            f"port = {port}\n"
        )
        bin_dir = self.python.parent
        launched = Launched(
            [str(bin_dir / "circusd"), str(ini)], script_env(), workdir, workdir / "log"
        )
        pending: list[subprocess.Popen[bytes]] = []

        def restart() -> None:
            ctl = [str(bin_dir / "circusctl"), "--endpoint", endpoint, "reload", "web"]
            pending.append(subprocess.Popen(ctl, stdout=subprocess.DEVNULL))

        def cleanup() -> None:
            for process in pending:
                process.wait(30)

        return Served(launched, restart, cleanup)


# watchd's overlap restarts (a new server started and ready before the old one stops).
OVERLAP = True


def subjects(python: Path | None, wanted: set[str], overlap: bool = OVERLAP) -> list[Subject]:
    chosen: list[Subject] = []
    if "watchd" in wanted:
        chosen += [WatchdServer(held=False), WatchdServer(held=True)]
        if overlap:
            chosen.append(WatchdServer(held=True, overlap=True))
        chosen.append(WatchdReloadServer())
    if python is not None:
        peers: list[Subject] = [
            WatchfilesServer(python),
            WatchmedoServer(python),
            HupperServer(python),
            SupervisordServer(python),
            CircusServer(python),
        ]
        chosen += [peer for peer in peers if peer.name in wanted]
    return chosen


def downtime(workdir: Path, sizes: DowntimeSizes, chosen: list[Subject]) -> Iterator[Result]:
    for subject in chosen:
        safe = "".join(c if c.isalnum() else "-" for c in subject.name)
        run_dir = workdir / "runs" / f"downtime-{safe}"
        if run_dir.exists():
            subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        run_dir.mkdir(parents=True)
        record = Record(run_dir / "record")
        port = free_port()
        served = subject.serve(run_dir, record, port, sizes.delay)
        try:
            yield measure(subject, served, record, port, sizes)
        finally:
            served.stop()


def measure(
    subject: Subject, served: Served, record: Record, port: int, sizes: DowntimeSizes
) -> Result:
    first = record.wait_starts(1, START_TIMEOUT)
    if first is None:
        raise RuntimeError(f"{subject.name}: the server never started; see {served.launched.log}")
    windows: list[tuple[int, int | None]] = []  # (change, first answer of the new server)
    with LoadGenerator(port, sizes.concurrency) as load:
        time.sleep(sizes.steady)  # steady state: the figures restarts are compared with
        steady_end = time.monotonic_ns()
        for _ in range(sizes.restarts):
            before = len(record.starts())
            changed = time.monotonic_ns()
            served.restart()
            starts = record.wait_starts(before + 1, RESTART_TIMEOUT)
            answered = None
            if starts is not None:
                new = str(starts[before].pid)
                deadline = time.monotonic() + RESTART_TIMEOUT
                while not load.served_by(new) and time.monotonic() < deadline:
                    time.sleep(0.005)
                answered = _first_answer(load.samples, new)
            windows.append((changed, answered))
            time.sleep(0.2)  # let the old server's last requests finish
        samples = list(load.samples)
    return _figures(subject, sizes, samples, steady_end, windows)


def _first_answer(samples: list[Sample], server: str) -> int | None:
    ends = [sample.end_ns for sample in samples if sample.server == server]
    return min(ends) if ends else None


def _figures(
    subject: Subject,
    sizes: DowntimeSizes,
    samples: list[Sample],
    steady_end: int,
    windows: list[tuple[int, int | None]],
) -> Result:
    def during(sample: Sample) -> bool:
        return any(
            start <= sample.start_ns <= (end or start + int(RESTART_TIMEOUT * 1e9))
            for start, end in windows
        )

    restart_samples = [s for s in samples if s.start_ns >= steady_end]
    steady = [(s.end_ns - s.start_ns) / 1e6 for s in samples if s.end_ns <= steady_end]
    in_restart = [(s.end_ns - s.start_ns) / 1e6 for s in samples if during(s)]
    failures = Counter(s.outcome for s in samples if s.outcome != "ok")
    return {
        "workload": "downtime",
        "tool": subject.name,
        "how": subject.how,
        "restarts": sizes.restarts,
        "concurrency": sizes.concurrency,
        "requests": len(samples),
        "requests_during_restarts": len(restart_samples),
        "failed": sum(failures.values()),
        "failures": dict(failures),
        "steady_p50_ms": _q(steady, 0.5),
        "steady_p99_ms": _q(steady, 0.99),
        "restart_p50_ms": _q(in_restart, 0.5),
        "restart_p99_ms": _q(in_restart, 0.99),
        "change_to_new_server_ms": [
            None if end is None else (end - start) / 1e6 for start, end in windows
        ],
    }


def _q(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if q == 0.5:
        return statistics.median(values)
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
