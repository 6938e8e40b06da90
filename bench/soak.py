"""``python -m bench.soak [--seconds N] [--out DIR]``: hostile clients hold watchd's control
socket for a while; the daemon's memory, descriptors and ``status`` latency are sampled.

The attackers run as another user (``nobody``, through ``setpriv``) when this runs as root,
so the per-user connection caps apply to them and not to the ``status`` probe; as anyone
else they share the probe's user, which no cap stops. Each attacker does one thing over
and over: holds many idle connections, asks for ``logs -f`` and never reads, sends request
lines larger than the daemon takes, or sends garbage. Meanwhile jobs write output steadily.

Writes ``soak.csv`` (one row per second: RSS, fds, the worst status latency) and
``soak.json`` (the summary), and prints the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ATTACKS = ("idle", "unread-follow", "huge-request", "garbage")
STATUS = b'{"command": "status"}\n'


# ---- the attackers (run in their own process) --------------------------------------------


async def _connect(path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        return await asyncio.open_unix_connection(path)
    except OSError:
        await asyncio.sleep(0.1)
        return None


async def _idle(path: str, held: int) -> None:
    """Hold *held* connections open that never send a request (reconnecting when cut)."""
    writers: list[asyncio.StreamWriter] = []
    while True:
        writers = [writer for writer in writers if not writer.is_closing()]
        while len(writers) < held:
            pair = await _connect(path)
            if pair is None:
                break
            writers.append(pair[1])
        await asyncio.sleep(0.5)
        for writer in writers:
            with contextlib.suppress(OSError):
                writer.write(b" ")  # a byte now and then: slowloris
        await asyncio.sleep(0.5)


async def _unread_follow(path: str, job: str) -> None:
    """Ask to follow a job's output, then never read a byte of it."""
    while True:
        pair = await _connect(path)
        if pair is None:
            continue
        request = {"command": "logs", "jobs": [job], "follow": True, "lines": 0}
        pair[1].write(json.dumps(request).encode() + b"\n")
        await asyncio.sleep(30)
        pair[1].close()


async def _huge_request(path: str) -> None:
    """Send request lines of megabytes, with and without a newline at the end."""
    blob = b"x" * (4 * 1024 * 1024)
    while True:
        pair = await _connect(path)
        if pair is None:
            continue
        _, writer = pair
        with contextlib.suppress(OSError):
            writer.write(blob)
            await asyncio.wait_for(writer.drain(), 5)
        writer.close()
        await asyncio.sleep(0.05)


async def _garbage(path: str) -> None:
    """Malformed requests, each on a fresh connection, read to the end."""
    shapes = [b"{", b"[]", b'{"command": ["status"]}', b'"\\ud800"', b"{}" * 1000, b"\xff\xfe"]
    number = 0
    while True:
        pair = await _connect(path)
        if pair is None:
            continue
        reader, writer = pair
        writer.write(shapes[number % len(shapes)] + b"\n")
        number += 1
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(reader.read(), 10)
        writer.close()


async def attack(path: str, kind: str, job: str) -> None:
    if kind == "idle":
        await _idle(path, 200)
    elif kind == "unread-follow":
        await asyncio.gather(*(_unread_follow(path, job) for _ in range(20)))
    elif kind == "huge-request":
        await asyncio.gather(*(_huge_request(path) for _ in range(4)))
    else:
        await asyncio.gather(*(_garbage(path) for _ in range(8)))


# ---- the soak ----------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    rss_kib: int
    fds: int
    status_ms: float | None  # the slowest status reply in this second; None: no reply


@dataclass
class Summary:
    seconds: float
    attackers: list[str]
    attacker_user: str
    rss_kib_start: int
    rss_kib_end: int
    rss_kib_max: int
    fds_start: int
    fds_end: int
    fds_max: int
    status_requests: int
    status_failures: int
    status_ms_p50: float
    status_ms_p99: float
    status_ms_max: float
    daemon_exit: int | None = None
    notes: list[str] = field(default_factory=list)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _status_once(path: Path, timeout: float) -> float | None:
    """Milliseconds for one ``status`` round trip, or None when it got no good reply."""
    start = time.monotonic()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(STATUS)
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                data += chunk
    except OSError:
        return None
    if not json.loads(data).get("ok"):
        return None
    return (time.monotonic() - start) * 1000


def _write_config(directory: Path, socket_path: Path, jobs: int) -> Path:
    # Jobs that write a line every 10 ms, so that followers always have output to fall behind on.
    chatter = "import sys, time\nwhile True:\n print('x' * 200, flush=True); time.sleep(0.01)\n"
    (directory / "jobs.d").mkdir()
    main = {
        "log_level": "warning",
        "control": {"socket": str(socket_path), "mode": "0666"},
    }
    (directory / "watchd.yaml").write_text(yaml.safe_dump(main))
    definitions = {f"chatty{n}": {"command": [sys.executable, "-c", chatter]} for n in range(jobs)}
    (directory / "jobs.d" / "soak.yaml").write_text(yaml.safe_dump({"jobs": definitions}))
    return directory / "watchd.yaml"


def _attacker_prefix() -> tuple[list[str], str]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return [], pwd.getpwuid(os.geteuid()).pw_name
    nobody = pwd.getpwnam("nobody")
    prefix = [
        "setpriv",
        f"--reuid={nobody.pw_uid}",
        f"--regid={nobody.pw_gid}",
        "--clear-groups",
    ]
    return prefix, "nobody"


def soak(seconds: float, attacks: list[str], jobs: int = 3) -> tuple[Summary, list[Sample]]:
    with tempfile.TemporaryDirectory(prefix="watchd-soak-") as name:
        directory = Path(name)
        os.chmod(directory, 0o755)  # the attackers (nobody) must reach the socket
        socket_path = directory / "run" / "control.sock"
        config = _write_config(directory, socket_path, jobs)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        log = open(directory / "watchd.log", "wb")  # noqa: SIM115 (closed below)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "watchd", "run", "-c", str(config)],
            stdout=log,
            stderr=log,
            env=env,
        )
        attackers: list[subprocess.Popen[bytes]] = []
        try:
            deadline = time.monotonic() + 60
            while _status_once(socket_path, 5) is None:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((directory / "watchd.log").read_text())
                time.sleep(0.2)
            os.chmod(socket_path.parent, 0o755)
            prefix, user = _attacker_prefix()
            start_rss, start_fds = _rss_kib(daemon.pid), _fds(daemon.pid)
            for kind in attacks:
                attackers.append(
                    subprocess.Popen(
                        [
                            *prefix,
                            sys.executable,
                            "-m",
                            "bench.soak",
                            "--attack",
                            kind,
                            "--socket",
                            str(socket_path),
                            "--job",
                            "chatty0",
                        ],
                        env=env,
                        cwd=REPO,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            samples = _sample(daemon, socket_path, seconds)
        finally:
            for process in attackers:
                process.send_signal(signal.SIGTERM)
            for process in attackers:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            # Once the attackers are gone, what is left is what the daemon kept.
            time.sleep(12)  # past the daemon's write timeout, for connections it still holds
            end_rss = _rss_kib(daemon.pid) if daemon.poll() is None else 0
            end_fds = _fds(daemon.pid) if daemon.poll() is None else 0
            daemon.send_signal(signal.SIGTERM)
            try:
                exit_status: int | None = daemon.wait(60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                exit_status = daemon.wait()
            log.close()
    latencies = [s.status_ms for s in samples if s.status_ms is not None]
    failures = sum(1 for s in samples if s.status_ms is None)
    quantiles = [0.0] * 99
    if len(latencies) > 1:
        quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    summary = Summary(
        seconds=seconds,
        attackers=attacks,
        attacker_user=user,
        rss_kib_start=start_rss,
        rss_kib_end=end_rss,
        rss_kib_max=max(s.rss_kib for s in samples),
        fds_start=start_fds,
        fds_end=end_fds,
        fds_max=max(s.fds for s in samples),
        status_requests=len(samples),
        status_failures=failures,
        status_ms_p50=round(quantiles[49], 1),
        status_ms_p99=round(quantiles[98], 1),
        status_ms_max=round(max(latencies, default=0.0), 1),
        daemon_exit=exit_status,
    )
    return summary, samples


def _sample(daemon: subprocess.Popen[bytes], socket_path: Path, seconds: float) -> list[Sample]:
    """One status round trip and one look at the daemon's RSS and fds, every second."""
    samples: list[Sample] = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        tick = time.monotonic()
        if daemon.poll() is not None:
            raise RuntimeError(f"watchd exited with {daemon.returncode} during the soak")
        latency = _status_once(socket_path, 10)
        samples.append(Sample(tick - start, _rss_kib(daemon.pid), _fds(daemon.pid), latency))
        time.sleep(max(0.0, 1 - (time.monotonic() - tick)))
    return samples


def _print(summary: Summary) -> None:
    mib = 1024
    print(
        f"{summary.seconds:.0f}s of {', '.join(summary.attackers)} as {summary.attacker_user}\n"
        f"RSS  MiB: start {summary.rss_kib_start / mib:.1f}, max {summary.rss_kib_max / mib:.1f},"
        f" after {summary.rss_kib_end / mib:.1f}\n"
        f"fds     : start {summary.fds_start}, max {summary.fds_max}, after {summary.fds_end}\n"
        f"status  : {summary.status_requests} asked, {summary.status_failures} unanswered; "
        f"p50 {summary.status_ms_p50} ms, p99 {summary.status_ms_p99} ms, "
        f"max {summary.status_ms_max} ms\n"
        f"watchd exited {summary.daemon_exit}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--attack", choices=ATTACKS, help=argparse.SUPPRESS)
    parser.add_argument("--socket", help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.attack:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(attack(args.socket, args.attack, args.job))
        return 0
    summary, samples = soak(args.seconds, args.attacks.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "soak.csv", "w") as csv:
        csv.write("seconds,rss_kib,fds,status_ms\n")
        for s in samples:
            latency = "" if s.status_ms is None else f"{s.status_ms:.1f}"
            csv.write(f"{s.at:.1f},{s.rss_kib},{s.fds},{latency}\n")
    (args.out / "soak.json").write_text(json.dumps(asdict(summary), indent=2) + "\n")
    _print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
