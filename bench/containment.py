"""``python -m bench.containment``: what a stop leaves of a job whose program daemonizes, and
what a cgroup per job costs at start-up.

1. A job starts DAEMONS daemons the classic way (fork, setsid, fork). Time from the
   stop request (what ``watchctl stop`` sends) to its reply and to no process of the job
   left, or the survivors counted after GRACE: watchd with cgroups, watchd falling back
   to process groups (the cgroup2 mount made read-only in a private mount namespace), and
   watchmedo auto-restart stopped with SIGTERM, and supervisord (``stopasgroup``,
   ``killasgroup``) told ``supervisorctl stop``; both from bench/.peers-venv, if there.
2. Launch to ``ready:`` for a daemon of JOBS jobs, with and without cgroups (median of
   ROUNDS).

Needs root and a writable cgroup v2 hierarchy. Prints a Markdown table; writes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from watchd.control.client import ControlClient
from watchd.control.protocol import Command, Request
from watchd.supervise import cgroup

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DAEMONIZE = REPO / "tests" / "helpers" / "daemonize.py"
WATCHMEDO = HERE / ".peers-venv" / "bin" / "watchmedo"  # python -m bench.peers builds it
SUPERVISORD = HERE / ".peers-venv" / "bin" / "supervisord"
SUPERVISORCTL = HERE / ".peers-venv" / "bin" / "supervisorctl"
STOP_TIMEOUT = "2s"
STUBBORN = ", SIGTERM ignored"  # the daemons wait for the SIGKILL after stop_timeout
GRACE = 5.0  # after the stop: how long survivors get to go before they are counted


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def daemons(record: Path) -> list[int]:
    try:
        lines = record.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [int(line.split()[1]) for line in lines if line.startswith(("daemon ", "main "))]


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.005)


def read_only_prefix() -> list[str]:
    mount = cgroup.find_cgroup2_mount(Path("/proc/self/mountinfo").read_text())
    remount = 'mount -o remount,bind,ro "$0" && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", remount, str(mount)]


class Watchd:
    def __init__(self, workdir: Path, jobs: dict[str, object], contained: bool) -> None:
        self.workdir = workdir
        self.socket = workdir / "control.sock"
        (workdir / "jobs.d").mkdir(parents=True, exist_ok=True)
        main = {"jobs_dir": "jobs.d", "log_level": "info", "control": {"socket": str(self.socket)}}
        (workdir / "watchd.yaml").write_text(yaml.safe_dump(main))
        (workdir / "jobs.d" / "jobs.yaml").write_text(yaml.safe_dump({"jobs": jobs}))
        self.log = workdir / "watchd.log"
        prefix = [] if contained else read_only_prefix()
        argv = [*prefix, sys.executable, "-m", "watchd", "run", "-c", str(workdir / "watchd.yaml")]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.started = time.monotonic()
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "watchd.ctl", "-s", str(self.socket), *args]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        return subprocess.run(command, capture_output=True, text=True, env=env, check=False)

    def wait_ready(self) -> float:
        """Seconds from launch until watchd logs ``ready:`` (every job started)."""
        wait_for(lambda: "ready:" in self.log.read_text(), "watchd to be ready", 120)
        return time.monotonic() - self.started

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


def escaped(count: int, tool: str, workdir: Path) -> dict[str, object]:
    record = workdir / "tree"
    command = [sys.executable, str(DAEMONIZE), str(record), str(count)]
    if tool.endswith(STUBBORN):
        command.append("--ignore-term")
    pids: list[int] = []
    watchd = None
    peer = None
    try:
        if tool == "watchmedo":
            peer = subprocess.Popen(
                [
                    str(WATCHMEDO),
                    "auto-restart",
                    "--directory",
                    str(workdir),
                    "--pattern",
                    "*.nothing",
                    "--",
                    *command,
                ],
                start_new_session=True,
                stderr=subprocess.DEVNULL,  # its child's KeyboardInterrupt on the stop
            )
        elif tool == "supervisord":
            conf = supervisor_conf(workdir, command)
            peer = subprocess.Popen(
                [str(SUPERVISORD), "-c", str(conf)],
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        else:
            job = {"command": command, "stop_timeout": STOP_TIMEOUT}
            watchd = Watchd(workdir, {"tree": job}, contained=tool.startswith("watchd (cgroup)"))
            watchd.wait_ready()
        wait_for(lambda: len(daemons(record)) >= count + 1, f"{count} daemons")
        pids = daemons(record)
        started = time.monotonic()
        if tool == "supervisord":
            control = [str(SUPERVISORCTL), "-c", str(workdir / "supervisord.conf")]
            subprocess.run([*control, "stop", "tree"], capture_output=True, check=False)
        elif peer is not None:
            peer.send_signal(signal.SIGTERM)
            peer.wait(60)
        else:
            assert watchd is not None
            # What watchctl sends, from here: no interpreter start-up in the measurement.
            ControlClient(watchd.socket).request(Request(Command.STOP, ("tree",)))
        returned_ms = round((time.monotonic() - started) * 1000, 1)
        deadline = started + GRACE
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.001)
        left = [pid for pid in pids if alive(pid)]
        gone_ms = None if left else round((time.monotonic() - started) * 1000, 1)
        return {
            "tool": tool,
            "daemons": count,
            "returned_ms": returned_ms,
            "gone_ms": gone_ms,
            "survivors": len(left),
        }
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if watchd is not None:
            watchd.stop()
        if peer is not None and peer.poll() is None:
            peer.send_signal(signal.SIGTERM)
            peer.wait(60)


def supervisor_conf(workdir: Path, command: list[str]) -> Path:
    """supervisord at its most thorough: the whole process group stopped, then killed."""
    conf = workdir / "supervisord.conf"
    conf.write_text(
        f"""[supervisord]
nodaemon=true
logfile={workdir}/supervisord.log
pidfile={workdir}/supervisord.pid
[unix_http_server]
file={workdir}/supervisor.sock
[supervisorctl]
serverurl=unix://{workdir}/supervisor.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:tree]
command={" ".join(command)}
stopasgroup=true
killasgroup=true
stopwaitsecs={STOP_TIMEOUT.rstrip("s")}
startsecs=0
autorestart=false
"""
    )
    return conf


def startup(jobs: int, contained: bool, workdir: Path) -> float:
    definitions: dict[str, object] = {
        f"job{n}": {"command": ["sleep", "3600"]} for n in range(jobs)
    }
    watchd = Watchd(workdir, definitions, contained)
    try:
        return watchd.wait_ready()
    finally:
        watchd.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.containment")
    parser.add_argument("--daemons", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--startup-only", action="store_true", help="skip the stop measurement")
    args = parser.parse_args()
    found = cgroup.setup(f"bench-{os.getpid()}")
    if not isinstance(found, cgroup.Hierarchy):
        raise SystemExit(f"no writable cgroup v2 hierarchy: {found}")
    found.close()
    tools = ["watchd (cgroup)", "watchd (cgroup)" + STUBBORN, "watchd (process-group)"]
    if args.startup_only:
        tools = []
    if WATCHMEDO.exists() and tools:
        tools.append("watchmedo")
    if SUPERVISORD.exists() and tools:
        tools.append("supervisord")
    if tools:
        print(f"stop_timeout {STOP_TIMEOUT}\n")
        print(f"| tool | daemons | stop returned | none left | survivors after {GRACE:g}s |")
        print("| --- | --- | --- | --- | --- |")
    for tool in tools:
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="wdb", dir="/tmp") as directory:
                row = escaped(args.daemons, tool, Path(directory))
            gone = "-" if row["gone_ms"] is None else f"{row['gone_ms']} ms"
            cells = [tool, row["daemons"], f"{row['returned_ms']} ms", gone, row["survivors"]]
            print("| " + " | ".join(map(str, cells)) + " |", flush=True)
    if tools:
        print()
    print(f"| {args.jobs} jobs | launch → all running (median of {args.rounds}) |")
    print("| --- | --- |")
    # Rounds alternate between the two, so that a noisy neighbour weighs on both alike.
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.rounds):
        for contained in (True, False):
            with tempfile.TemporaryDirectory(prefix="wdb", dir="/tmp") as directory:
                times[contained].append(startup(args.jobs, contained, Path(directory)))
    for contained, label in ((True, "cgroup per job"), (False, "process groups")):
        print(f"| {label} | {statistics.median(times[contained]) * 1000:.0f} ms |", flush=True)


if __name__ == "__main__":
    main()
