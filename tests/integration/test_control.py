"""watchctl against a real daemon: status, exit codes, start/stop/restart, logs, live config,
permissions and a protocol that survives abuse."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import REPO, Daemon, Record, child_command, running_daemon
from tests.helpers.wait import wait_until

WATCHCTL = (sys.executable, "-m", "watchd.ctl")


def sleeper(record: Path, *options: str, **settings: Any) -> dict[str, Any]:
    return {"command": child_command(record, *options), **settings}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path) as running:
        yield running


def wait_state(daemon: Daemon, name: str, state: str) -> dict[str, Any]:
    return wait_until(
        lambda: (job := daemon.job(name))["state"] == state and job,
        f"job {name} to be {state}",
    )


def test_status_table_and_json_show_running_backoff_and_stopped_jobs(
    daemon: Daemon, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    daemon.write_jobs(
        "jobs.yaml",
        {
            "web": sleeper(tmp_path / "web", watch={"paths": [str(src)]}),
            "crashy": sleeper(
                tmp_path / "crashy", "--exit", "1", backoff_initial="1m", start_limit_burst=100
            ),
            "idle": sleeper(tmp_path / "idle"),
        },
    )
    daemon.start()
    Record(tmp_path / "web").wait_starts(1)
    assert daemon.watchctl("stop", "idle").returncode == 0
    wait_state(daemon, "crashy", "backoff")

    body = daemon.status()
    assert body["config_error"] is None
    jobs = {job["name"]: job for job in body["jobs"]}
    assert set(jobs) == {"web", "crashy", "idle"}
    web = jobs["web"]
    assert web["state"] == "running"
    assert web["pid"] == Record(tmp_path / "web").starts()[0]
    assert web["restarts"] == 0
    assert web["backend"] == "inotify"
    assert web["watched_paths"] == 1
    assert web["last_trigger"]["kind"] == "config"
    assert jobs["crashy"]["state"] == "backoff" and jobs["crashy"]["pid"] is None
    assert jobs["crashy"]["last_trigger"]["detail"] == "exit status 1"
    assert jobs["idle"]["state"] == "stopped" and jobs["idle"]["pid"] is None
    assert jobs["idle"]["last_trigger"]["kind"] == "manual"

    table = daemon.watchctl("status")
    assert table.returncode == 3  # crashy and idle are not running
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["JOB", "STATE", "PID", "UPTIME", "RESTARTS"]
    row = next(line for line in lines if line.startswith("web "))
    assert "running" in row and str(web["pid"]) in row and "inotify, 1 path" in row
    assert "backoff" in next(line for line in lines if line.startswith("crashy "))


def test_status_exit_codes(daemon: Daemon, tmp_path: Path) -> None:
    daemon.write_jobs(
        "jobs.yaml",
        {"up": sleeper(tmp_path / "up"), "down": sleeper(tmp_path / "down", "--exit", "0")},
    )
    daemon.start()
    Record(tmp_path / "up").wait_starts(1)
    wait_state(daemon, "down", "exited")
    assert daemon.watchctl("status", "up").returncode == 0
    assert daemon.watchctl("status", "up", "down").returncode == 3
    assert daemon.watchctl("status").returncode == 3  # all jobs shown: one is down
    unknown = daemon.watchctl("status", "nope")
    assert unknown.returncode == 4
    assert "known jobs: up, down" in unknown.stderr or "known jobs: down, up" in unknown.stderr


def test_unreachable_daemon_exits_1_naming_the_socket(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sock"
    result = subprocess.run(
        [sys.executable, "-m", "watchd.ctl", "--socket", str(missing), "status"],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert result.returncode == 1
    assert str(missing) in result.stderr and "no such socket" in result.stderr


def test_start_stop_restart_change_state_and_pid(daemon: Daemon, tmp_path: Path) -> None:
    record = Record(tmp_path / "web")
    daemon.write_jobs("jobs.yaml", {"web": sleeper(record.path)})
    daemon.start()
    (first,) = record.wait_starts(1)

    restarted = daemon.watchctl("restart", "web")
    assert restarted.returncode == 0, restarted.stderr
    job = daemon.job("web")
    assert job["state"] == "running" and job["pid"] not in (None, first)
    assert job["restarts"] == 1 and job["last_trigger"]["kind"] == "manual"

    assert daemon.watchctl("stop", "web").returncode == 0
    assert daemon.job("web")["state"] == "stopped"
    assert daemon.watchctl("status", "web").returncode == 3

    assert daemon.watchctl("start", "web").returncode == 0
    assert daemon.job("web")["state"] == "running"
    # "running" comes as the child is spawned, maybe before it has written its record.
    assert len(record.wait_starts(3)) == 3
    assert daemon.watchctl("restart", "ghost").returncode == 4


def test_logs_last_lines_and_follow(daemon: Daemon, tmp_path: Path) -> None:
    record = Record(tmp_path / "web")
    daemon.write_jobs("jobs.yaml", {"web": sleeper(record.path, "--print", "hello")})
    daemon.start()
    record.wait_starts(1)
    wait_until(lambda: daemon.watchctl("logs", "web").stdout == "hello\n", "the first line")
    with daemon.following("logs", "web", "-n", "1", "-f") as follow:
        assert follow.readline() == "hello\n"
        assert daemon.watchctl("restart", "web").returncode == 0
        assert follow.readline() == "hello\n"  # the new child's line, live
    last = daemon.watchctl("logs", "web", "-n", "1")
    assert (last.returncode, last.stdout, last.stderr) == (0, "hello\n", "")
    assert daemon.watchctl("logs", "web", "-n", "5").stdout == "hello\nhello\n"


def test_job_files_apply_themselves(daemon: Daemon, tmp_path: Path) -> None:
    one, two, three = (Record(tmp_path / name) for name in ("one", "two", "three"))
    daemon.write_jobs("a.yaml", {"one": sleeper(one.path), "two": sleeper(two.path)})
    daemon.start()
    (one_pid,) = one.wait_starts(1)
    two.wait_starts(1)

    # A new file: its job starts, the others are untouched.
    daemon.write_jobs("b.yaml", {"three": sleeper(three.path)})
    three.wait_starts(1)
    # An edit to one job: only it restarts.
    daemon.write_jobs(
        "a.yaml", {"one": sleeper(one.path), "two": sleeper(two.path, "--print", "x")}
    )
    two.wait_starts(2)
    wait_state(daemon, "two", "running")
    assert daemon.job("one")["pid"] == one_pid
    # Deleting a file stops its jobs.
    (daemon.jobs_dir / "b.yaml").unlink()
    wait_until(lambda: "three" not in [j["name"] for j in daemon.status()["jobs"]], "three gone")
    wait_until(lambda: three.events("exit"), "three's child to exit")
    assert daemon.job("one")["pid"] == one_pid
    # An editor's swap file changes nothing.
    (daemon.jobs_dir / ".a.yaml.swp").write_text("garbage: [")
    assert daemon.job("one")["pid"] == one_pid


def test_broken_job_file_is_refused_and_shown_until_fixed(daemon: Daemon, tmp_path: Path) -> None:
    one = Record(tmp_path / "one")
    path = daemon.write_jobs("a.yaml", {"one": sleeper(one.path)})
    daemon.start()
    (pid,) = one.wait_starts(1)
    good = path.read_text()
    path.write_text(good + "    stop_timeout: soon\n")
    body = wait_until(lambda: (s := daemon.status())["config_error"] and s, "the config error")
    assert "a.yaml:" in body["config_error"] and "jobs.one.stop_timeout" in body["config_error"]
    assert daemon.job("one")["pid"] == pid
    table = daemon.watchctl("status")
    assert "config error" in table.stdout and "stop_timeout" in table.stdout

    path.write_text(yaml_with_print(good, one.path))
    wait_until(lambda: daemon.status()["config_error"] is None, "the error to clear")
    one.wait_starts(2)


def yaml_with_print(text: str, record: Path) -> str:
    """The job file with ``--print fixed`` added to the command after the record path."""
    lines = text.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.strip() == f"- {record}")
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    lines[index + 1 : index + 1] = [f"{indent}- --print\n", f"{indent}- fixed\n"]
    return "".join(lines)


def test_sighup_and_watchctl_reload_apply_at_once(daemon: Daemon, tmp_path: Path) -> None:
    one, two = Record(tmp_path / "one"), Record(tmp_path / "two")
    daemon.write_jobs("a.yaml", {"one": sleeper(one.path)})
    daemon.start()
    one.wait_starts(1)
    # Written in place by an unwatched path, then renamed in: also seen by the watcher,
    # so check the reload arrives either way, then that an explicit reload reports ok.
    assert daemon.process is not None
    daemon.write_jobs("b.yaml", {"two": sleeper(two.path)})
    daemon.process.send_signal(signal.SIGHUP)
    two.wait_starts(1)
    result = daemon.watchctl("reload")
    assert result.returncode == 0 and "reloaded" in result.stdout
    (daemon.jobs_dir / "b.yaml").write_text("jobs: [\n")
    refused = daemon.watchctl("reload")
    assert refused.returncode == 1 and "b.yaml:" in refused.stderr


def test_non_member_is_refused_a_restart_but_may_read_status(
    daemon: Daemon, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run watchctl as another user")
    record = Record(tmp_path / "web")
    daemon.write_jobs("jobs.yaml", {"web": sleeper(record.path)})
    daemon.start()
    (pid,) = record.wait_starts(1)
    os.chmod(daemon.socket, 0o666)  # let `nobody` connect at all
    os.chmod(daemon.socket.parent, 0o755)
    refused = daemon.watchctl("restart", "web", user="nobody")
    assert refused.returncode == 1
    assert "permission denied" in refused.stderr
    assert daemon.job("web")["pid"] == pid
    allowed = daemon.watchctl("status", user="nobody")
    assert allowed.returncode == 0, allowed.stderr


def test_abusive_clients_do_not_disturb_status(daemon: Daemon, tmp_path: Path) -> None:
    record = Record(tmp_path / "web")
    daemon.write_jobs("jobs.yaml", {"web": sleeper(record.path)})
    daemon.start()
    record.wait_starts(1)
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(str(daemon.socket))
    silent_since = time.monotonic()
    half = socket.socket(socket.AF_UNIX)
    half.connect(str(daemon.socket))
    half.sendall(b'{"command": "sta')
    try:
        garbage = _exchange(daemon.socket, b"\x00\xffnot json\n")
        assert garbage["ok"] is False and "not JSON" in garbage["error"]
        unknown = _exchange(daemon.socket, b'{"command": "explode"}\n')
        assert unknown["ok"] is False and "unknown command" in unknown["error"]
        huge = _exchange(daemon.socket, b"x" * (10 * 1024 * 1024) + b"\n")
        assert huge["ok"] is False and "larger than 64 KiB" in huge["error"]
        assert daemon.watchctl("status").returncode == 0
        # Answered before the silent client's 5 s timeout: it did not wait behind it.
        assert time.monotonic() - silent_since < 5, "status waited for the silent client"
        timed_out = json.loads(silent.makefile("rb").readline())
        assert timed_out["ok"] is False and "within 5s" in timed_out["error"]
    finally:
        silent.close()
        half.close()
    assert daemon.watchctl("status").returncode == 0


def _exchange(path: Path, payload: bytes) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        # The daemon may hang up on an oversized request, after replying.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(payload)
        reply: dict[str, Any] = json.loads(sock.makefile("rb").readline())
        return reply
