"""The daemon never waits on I/O it does not control: a stderr nobody reads, a job's
output FIFO with no reader, a FIFO named *.yaml in jobs.d. Meanwhile it answers
`watchctl status` and stops on SIGTERM."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers.daemon import Daemon, Record, child_command, running_daemon
from tests.helpers.wait import wait_until

FLOOD_LINES = 50_000
# Prints FLOOD_LINES lines (3.5 MB: more than the pipe and watchd's backlog), then waits.
FLOOD = (
    "import sys, time\n"
    f"for i in range({FLOOD_LINES}):\n"
    "    print('flood', i, 'x' * 60)\n"
    "sys.stdout.flush()\n"
    "time.sleep(3600)\n"
)


def read_until(fd: int, text: bytes, what: str) -> bytes:
    """Read the pipe *fd* (non-blocking) until *text* has come."""
    os.set_blocking(fd, False)
    received = bytearray()

    def seen() -> bool:
        try:
            while chunk := os.read(fd, 1 << 16):
                received.extend(chunk)
        except BlockingIOError:
            pass
        return text in received

    wait_until(seen, what)
    return bytes(received)


def start_with_stalled_stderr(daemon: Daemon, record: Record) -> int:
    """Start watchd with its stderr a pipe; read it up to "ready:", then stop reading.
    Returns the pipe's read end."""
    daemon.write_jobs(
        "jobs.yaml",
        {
            "flood": {"command": [sys.executable, "-c", FLOOD]},
            "quiet": {"command": child_command(record.path)},
        },
    )
    read_end, write_end = os.pipe()
    try:
        daemon.start(wait_ready=False, stderr=write_end)
    finally:
        os.close(write_end)
    read_until(read_end, b"ready:", "watchd to say it is ready")
    return read_end


def assert_answers_while_stalled(daemon: Daemon) -> None:
    # watchd went on reading the flood, though nothing of its log could be written.
    def last_line() -> bool:
        tail = daemon.watchctl("logs", "flood", "-n", "1").stdout
        return tail.startswith(f"flood {FLOOD_LINES - 1} ")

    wait_until(last_line, "watchd to have read the whole flood")
    jobs = {job["name"]: job["state"] for job in daemon.status()["jobs"]}
    assert jobs == {"flood": "running", "quiet": "running"}


def test_a_stalled_stderr_neither_freezes_the_daemon_nor_holds_up_sigterm(
    tmp_path: Path,
) -> None:
    record = Record(tmp_path / "quiet.record")
    with running_daemon(tmp_path) as daemon:
        read_end = start_with_stalled_stderr(daemon, record)
        try:
            assert_answers_while_stalled(daemon)
            assert daemon.stop() == 0  # while still nobody reads
            assert record.events("signal")[-1][2] == "SIGTERM"
        finally:
            os.close(read_end)


def test_lines_lost_to_a_stalled_stderr_are_counted_once_it_reads_again(
    tmp_path: Path,
) -> None:
    record = Record(tmp_path / "quiet.record")
    with running_daemon(tmp_path) as daemon:
        read_end = start_with_stalled_stderr(daemon, record)
        try:
            assert_answers_while_stalled(daemon)
            text = read_until(read_end, b" log lines\n", "the drop report").decode()
            (count,) = re.findall(r"WARNING watchd: dropped (\d+) log lines\n", text)
            seen = re.findall(r"flood \| flood (\d+) ", text)
            # Every flood line is either written or counted (watchd's own lines as well).
            assert len(seen) + int(count) >= FLOOD_LINES
            assert int(count) > 0
            # Afterwards lines flow again.
            daemon.watchctl("restart", "quiet")
            read_until(read_end, b"quiet: started pid", "a line after the report")
            assert daemon.stop() == 0
        finally:
            os.close(read_end)


def test_an_output_fifo_nobody_reads_fails_the_start_and_blocks_nothing(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    piped, other = Record(tmp_path / "piped.record"), Record(tmp_path / "other.record")
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs(
            "jobs.yaml",
            {
                "piped": {
                    "command": child_command(piped.path, "--print", "through the fifo"),
                    "output": str(fifo),
                },
                "other": {"command": child_command(other.path)},
            },
        )
        daemon.start()
        daemon.wait_log(f"piped: failed to start: output {fifo} is a FIFO (or socket) that nobody")
        other.wait_starts(1)
        state = daemon.job("piped")["state"]
        assert state in ("backoff", "failed")
        assert piped.starts() == []

        # With a reader the next attempt starts, and the child writes into the FIFO.
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            daemon.watchctl("restart", "piped")
            piped.wait_starts(1)
            read_until(reader, b"through the fifo\n", "the child's line in the FIFO")
            assert daemon.stop() == 0
        finally:
            os.close(reader)


def test_a_fifo_named_yaml_in_jobs_d_is_refused_not_read(tmp_path: Path) -> None:
    record = Record(tmp_path / "web.record")
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": {"command": child_command(record.path)}})
        daemon.start()
        record.wait_starts(1)

        os.mkfifo(daemon.jobs_dir / "trap.yaml")
        wait_until(
            lambda: daemon.status()["config_error"],
            "the config with the FIFO to be refused",
        )
        error = daemon.status()["config_error"]
        assert "jobs.d/trap.yaml" in error
        assert "not a regular file (a FIFO)" in error
        assert daemon.job("web")["state"] == "running"
        assert record.starts() == record.starts()[:1]
        assert daemon.stop() == 0


def test_watchd_refuses_to_start_on_a_fifo_in_jobs_d(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    try:
        os.mkfifo(daemon.jobs_dir / "trap.yaml")
        command = [sys.executable, "-m", "watchd"]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        check = subprocess.run(
            [*command, "check", "-c", str(daemon.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert check.returncode == 1
        assert "trap.yaml: cannot read: not a regular file (a FIFO)" in check.stderr
        run = subprocess.run(
            [*command, "run", "-c", str(daemon.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert run.returncode == 78
        assert "not a regular file (a FIFO)" in run.stderr
    finally:
        daemon._socket_dir.cleanup()
