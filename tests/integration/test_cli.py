"""The daemon's own command line, as a real process: run, SIGTERM, check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.daemon import REPO, Record, child_command, running_daemon
from tests.helpers.wait import wait_until


def watchd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watchd", *args],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=60,
    )


def test_run_starts_jobs_and_sigterm_stops_them_and_exits_0(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs(
            "web.yaml", {"web": {"command": child_command(record.path, "--grandchild")}}
        )
        daemon.start()
        (pid,) = record.wait_starts(1)
        grandchild = int(record.events("grandchild")[0][1])
        assert daemon.stop() == 0
    assert not Path(f"/proc/{pid}").exists()
    wait_until(lambda: not Path(f"/proc/{grandchild}").exists(), "the grandchild to be gone")
    assert "Traceback" not in daemon.log()


def test_child_output_reaches_the_log_prefixed_with_the_job_name(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs(
            "web.yaml",
            {"web": {"command": child_command(record.path, "--print", "hello from the child")}},
        )
        daemon.start()
        daemon.wait_log("web | hello from the child")
        assert daemon.stop() == 0


def test_check_accepts_the_example_config() -> None:
    result = watchd("check", "-c", str(REPO / "config" / "watchd.yaml"))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_check_names_file_line_column_and_key(tmp_path: Path) -> None:
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "watchd.yaml").write_text("jobs_dir: jobs.d\n")
    (tmp_path / "jobs.d" / "web.yaml").write_text(
        "jobs:\n  web:\n    command: [sleep, '60']\n    stop_timeout: soon\n    restrat: always\n"
    )
    result = watchd("check", "-c", str(tmp_path / "watchd.yaml"))
    assert result.returncode != 0
    web = tmp_path / "jobs.d" / "web.yaml"
    lines = result.stderr.splitlines()
    expected = 'web.yaml:4:19: jobs.web.stop_timeout: expected a duration like "10s", got "soon"'
    assert any(line.endswith(expected) and str(web.parent) in line for line in lines), result.stderr
    assert any(":5:5: jobs.web.restrat:" in line and "restart" in line for line in lines), (
        result.stderr
    )


def test_run_with_a_broken_config_exits_non_zero_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "watchd.yaml").write_text("jobs:\n  web:\n    command: []\n    bogus: 1\n")
    result = watchd("run", "-c", str(tmp_path / "watchd.yaml"))
    assert result.returncode == 78  # EX_CONFIG: the unit does not restart on it
    assert "Traceback" not in result.stderr
    assert "watchd.yaml:4:5: jobs.web.bogus" in result.stderr


def test_a_running_daemon_has_no_tls_library_loaded(tmp_path: Path) -> None:
    """asyncio's TLS and hashlib's OpenSSL cost 4 MB of memory the daemon never uses."""
    record = Record(tmp_path / "record")
    (tmp_path / "tree").mkdir()
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs(
            "web.yaml",
            {"web": {"command": child_command(record.path), "watch": {"paths": ["tree"]}}},
        )
        daemon.start()
        record.wait_starts(1)
        assert daemon.process is not None
        maps = Path(f"/proc/{daemon.process.pid}/maps").read_text()
        assert daemon.stop() == 0
    loaded = {line.split()[-1] for line in maps.splitlines() if ".so" in line}
    assert not [path for path in loaded if "libssl" in path or "libcrypto" in path], loaded
    assert any("libc.so" in path for path in loaded)  # the libraries are listed at all
