"""A bad config, at start-up or on reload, is refused as a whole: the running jobs keep
running under the last good config and status shows why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.daemon import REPO, Daemon, Record, child_command, running_daemon
from tests.helpers.wait import wait_until


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path) as running:
        yield running


def job_file(record: Path, *extra: str) -> str:
    lines = ["jobs:", "  one:", f"    command: {json.dumps(child_command(record))}", *extra]
    return "\n".join(lines) + "\n"


# Each passes the YAML parser, or fails it, in its own way; each was once lost or a traceback.
BAD_EDITS: list[tuple[list[str] | bytes, str]] = [
    (["    log_lines: 9223372036854775808"], "a.yaml:4:16: jobs.one.log_lines: expected"),
    (["    cwd: ~nosuchuser-here/x"], "a.yaml:4:10: jobs.one.cwd: cannot expand ~"),
    (["    stop_timeout: .nan"], "a.yaml:4:19: jobs.one.stop_timeout: expected a duration"),
    (["    shell: !!bool maybe"], "a.yaml:4:12: jobs.one.shell: not a valid !!bool"),
    (['    env: {A: "\\0"}'], "a.yaml:4:14: jobs.one.env.A: a NUL character"),
    (["    user: !!python/name:os.system ''"], "a.yaml:4:11: unsupported tag"),
    (["    watch: {include: 'a\\'}"], "a.yaml:4:22: jobs.one.watch.include: expected a gitignore"),
    (b"jobs:\n  one:\n    command: caf\xe9\n", "a.yaml:3:17: not UTF-8 text"),
    (b"jobs: " + b"[" * 5000 + b"]" * 5000 + b"\n", "a.yaml:1:1006: invalid YAML"),
]


def test_bad_edits_are_refused_and_shown_and_the_job_keeps_running(
    daemon: Daemon, tmp_path: Path
) -> None:
    one = Record(tmp_path / "one")
    good = job_file(one.path)
    path = daemon.jobs_dir / "a.yaml"
    path.write_text(good)
    daemon.start()
    (pid,) = one.wait_starts(1)
    for edit, expected in BAD_EDITS:
        path.write_bytes(edit if isinstance(edit, bytes) else job_file(one.path, *edit).encode())
        refused = daemon.watchctl("reload")
        assert refused.returncode == 1 and expected in refused.stderr, (expected, refused)
        body = daemon.status()
        assert expected in (body["config_error"] or ""), (expected, body)
        assert [(job["name"], job["pid"]) for job in body["jobs"]] == [("one", pid)]
    path.write_text(good)
    assert daemon.watchctl("reload").returncode == 0
    wait_until(lambda: daemon.status()["config_error"] is None, "the error to clear")
    assert daemon.job("one")["pid"] == pid  # the same definition: never restarted
    assert one.starts() == [pid]


def test_watchd_run_refuses_a_bound_it_cannot_hold_with_ex_config(tmp_path: Path) -> None:
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "a.yaml").write_text(
        job_file(tmp_path / "one", "    log_lines: 9223372036854775808")
    )
    main = tmp_path / "watchd.yaml"
    main.write_text(f"control: {{socket: {tmp_path / 'ctl.sock'}}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "watchd", "run", "-c", str(main)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        cwd=tmp_path,
    )
    assert result.returncode == 78, result.stderr
    assert "jobs.d/a.yaml:4:16: jobs.one.log_lines: expected a whole number" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "one").exists()


def test_a_missing_working_directory_is_named_as_such(daemon: Daemon, tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    daemon.write_jobs(
        "a.yaml",
        {"web": {"command": child_command(tmp_path / "web"), "cwd": str(missing)}},
    )
    daemon.start()
    expected = f"failed to start: working directory {missing}: No such file or directory"

    def start_failure() -> str:
        trigger = daemon.job("web")["last_trigger"] or {}
        detail = str(trigger.get("detail", ""))
        return detail if expected in detail else ""

    assert "PosixPath" not in wait_until(start_failure, "the start failure")
    daemon.wait_log(f"web: {expected}")
