"""``python -m bench.log_stall [--before REV] [--seconds S] [--only TEXT] [--out FILE]``:
does watchd keep answering while a job floods its output, and while its own stderr is a pipe that
nobody reads?

Each scenario runs against this checkout ("after") and against the tree of git revision
REV ("before"; by default the commit before watchd's non-blocking log writer came in).
For S seconds the bench sends `status` requests over the control socket one after
another, as `watchctl status` does, and times each reply; a request unanswered after
REQUEST_TIMEOUT counts as unanswered. Then SIGTERM, and the time until watchd has exited.
Prints a Markdown table; ``--out`` also writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import yaml

from bench.procs import descendants
from bench.report import quantile

REPO = Path(__file__).resolve().parent.parent
LOGWRITER = "watchd/logwriter.py"
REQUEST_TIMEOUT = 5.0
STOP_TIMEOUT = 20.0

# As fast as a pipe takes it: ~100-byte lines, 64 KiB at a time.
FLOOD = (
    "import sys\n"
    "chunk = (b'x' * 99 + b'\\n') * 650\n"
    "while True:\n"
    "    sys.stdout.buffer.write(chunk)\n"
    "    sys.stdout.flush()\n"
)
# A line every millisecond or so: a 64 KiB pipe nobody reads is full within a second.
STEADY = (
    "import itertools, time\n"
    "for n in itertools.count():\n"
    "    print('tick', n, flush=True)\n"
    "    time.sleep(0.001)\n"
)
IDLE = "import time\ntime.sleep(3600)\n"


@dataclass(frozen=True)
class Scenario:
    name: str
    program: str
    stderr: str  # "drained": a pipe the bench reads as fast as it can; "stalled": never read


SCENARIOS = (
    Scenario("idle job, stderr read", IDLE, "drained"),
    Scenario("job flooding its output, stderr read", FLOOD, "drained"),
    Scenario("job printing 1,000 lines/s, stderr never read", STEADY, "stalled"),
    Scenario("job flooding its output, stderr never read", FLOOD, "stalled"),
)


@dataclass
class Figures:
    scenario: str
    version: str
    requests: int
    unanswered: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    stop_seconds: float | None  # None: still running STOP_TIMEOUT after SIGTERM


def status_round_trip(path: Path) -> float | None:
    """Seconds for one status request's reply, or None if none came in time."""
    started = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(REQUEST_TIMEOUT)
        try:
            client.connect(str(path))
            client.sendall(b'{"command": "status", "jobs": []}\n')
            reply = b""
            while not reply.endswith(b"\n"):
                data = client.recv(65536)
                if not data:
                    return None
                reply += data
        except OSError:  # a timeout included
            return None
    if not json.loads(reply).get("ok"):
        return None
    return time.monotonic() - started


class Daemon:
    """watchd from *source* with one job, its stderr a pipe the bench drains or never reads."""

    def __init__(self, source: Path, workdir: Path, scenario: Scenario) -> None:
        self.socket = Path(tempfile.mkdtemp(prefix="wdls", dir="/tmp")) / "ctl.sock"
        main = workdir / "watchd.yaml"
        (workdir / "jobs.d").mkdir()
        main.write_text(
            yaml.safe_dump({"control": {"socket": str(self.socket)}, "jobs_dir": "jobs.d"})
        )
        job = {"command": [sys.executable, "-c", scenario.program], "stop_timeout": "2s"}
        (workdir / "jobs.d" / "bench.yaml").write_text(yaml.safe_dump({"jobs": {"bench": job}}))
        read_end, write_end = os.pipe()
        self._stderr: IO[bytes] = os.fdopen(read_end, "rb", buffering=0)
        env = dict(os.environ, PYTHONPATH=str(source))
        env.pop("NOTIFY_SOCKET", None)
        env.pop("JOURNAL_STREAM", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "watchd", "run", "-c", str(main)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=write_end,
            start_new_session=True,
        )
        os.close(write_end)
        self.drained = 0
        if scenario.stderr == "drained":
            threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while data := self._stderr.read(1 << 16):
                self.drained += len(data)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"watchd exited {self.process.returncode} at start")
            if self.socket.exists() and status_round_trip(self.socket) is not None:
                return
            time.sleep(0.05)
        raise RuntimeError(f"watchd did not answer within {timeout}s")

    def stop(self) -> float | None:
        """SIGTERM; seconds until watchd exited, or None. Then nothing of it is left."""
        tree = descendants(self.process.pid)
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        took: float | None = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_TIMEOUT)
            took = time.monotonic() - started
        for pid in (self.process.pid, *tree):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()
        self._stderr.close()
        with contextlib.suppress(OSError):
            self.socket.unlink()
        with contextlib.suppress(OSError):
            self.socket.parent.rmdir()
        return took


def measure(source: Path, version: str, scenario: Scenario, seconds: float) -> Figures:
    with tempfile.TemporaryDirectory(prefix="watchd-log-stall-") as workdir:
        daemon = Daemon(source, Path(workdir), scenario)
        try:
            daemon.wait_ready()
            time.sleep(1.0)  # the job's output is flowing (or stderr's pipe is full)
            times: list[float] = []
            unanswered = 0
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                took = status_round_trip(daemon.socket)
                if took is None:
                    unanswered += 1
                else:
                    times.append(took)
        finally:
            stop = daemon.stop()

    def ms(q: float) -> float | None:
        return round(quantile(times, q) * 1000, 2) if times else None

    return Figures(
        scenario.name,
        version,
        len(times) + unanswered,
        unanswered,
        ms(0.5),
        ms(0.99),
        round(max(times) * 1000, 2) if times else None,
        None if stop is None else round(stop, 2),
    )


@contextlib.contextmanager
def tree_of(revision: str) -> Iterator[Path]:
    """The files of *revision* in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="watchd-before-") as directory:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", revision, "watchd"],
            capture_output=True,
            check=True,
        ).stdout
        with tempfile.TemporaryFile() as file:
            file.write(archive)
            file.seek(0)
            with tarfile.open(fileobj=file) as tar:
                tar.extractall(directory, filter="data")
        yield Path(directory)


def default_before() -> str:
    """The commit before the one that added watchd/logwriter.py."""
    added = subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "log",
            "--diff-filter=A",
            "--format=%H",
            "--",
            "watchd/logwriter.py",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not added:
        raise SystemExit("bench.log_stall: give --before REV (no commit adds watchd/logwriter.py)")
    return f"{added[-1][:12]}^"


def table(rows: list[Figures]) -> str:
    def cell(value: float | None, unit: str = "") -> str:
        return "—" if value is None else f"{value:g}{unit}"

    lines = [
        "| scenario | watchd | status requests | unanswered (5 s) | p50 | p99 | max "
        "| SIGTERM → exit |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        stop = "not within 20 s" if row.stop_seconds is None else f"{row.stop_seconds:g} s"
        lines.append(
            f"| {row.scenario} | {row.version} | {row.requests} | {row.unanswered} | "
            f"{cell(row.p50_ms, ' ms')} | {cell(row.p99_ms, ' ms')} | {cell(row.max_ms, ' ms')} "
            f"| {stop} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.log_stall", description=__doc__)
    parser.add_argument("--before", default=None, help="git revision to compare with")
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario and version")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--only", default="", help="only the scenarios whose name holds this text")
    args = parser.parse_args(argv)
    before = args.before or default_before()
    rows: list[Figures] = []
    with tree_of(before) as old:
        for scenario in (s for s in SCENARIOS if args.only in s.name):
            for version, source in ((f"before ({before})", old), ("after", REPO)):
                rows.append(measure(source, version, scenario, args.seconds))
                print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(rows))
    if args.out is not None:
        args.out.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
