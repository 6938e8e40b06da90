"""The control socket cannot be turned against root: its directory, links at its path, and
impostor sockets, driven by an unprivileged user (`nobody`) against a daemon run as root."""

from __future__ import annotations

import os
import pwd
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.daemon import Daemon, Record, child_command, running_daemon

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root, to act against root's daemon as another user"
)

NOBODY = pwd.getpwnam("nobody")
AS_NOBODY = ("setpriv", "--reuid=nobody", f"--regid={NOBODY.pw_gid}", "--clear-groups")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path) as running:
        running.write_jobs("jobs.yaml", {"web": {"command": child_command(tmp_path / "web")}})
        base = running.socket.parent
        base.chmod(0o755)  # let `nobody` reach what the tests put in there
        yield running


def use_socket(daemon: Daemon, path: Path, **control: object) -> None:
    """Point the daemon's config (and the test's watchctl) at *path*."""
    daemon.config_path.write_text(
        f"log_level: debug\njobs_dir: jobs.d\ncontrol: {{socket: {path}"
        + "".join(f", {key}: {value}" for key, value in control.items())
        + "}\n"
    )
    daemon.socket = path


def refused_start(daemon: Daemon) -> str:
    """Start watchd, expect it to refuse; return its log."""
    daemon.start(wait_ready=False)
    assert daemon.process is not None
    assert daemon.process.wait(60) == 1, daemon.log()
    return daemon.log()


def test_a_socket_directory_owned_by_another_user_is_refused(daemon: Daemon) -> None:
    theirs = daemon.socket.parent / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY.pw_uid, NOBODY.pw_gid)
    use_socket(daemon, theirs / "control.sock")
    log = refused_start(daemon)
    assert f"{theirs}: the socket's directory belongs to uid {NOBODY.pw_uid}" in log
    assert "not starting" in log and "Traceback" not in log
    assert list(theirs.iterdir()) == []


def test_a_socket_directory_writable_by_others_is_refused(daemon: Daemon) -> None:
    shared = daemon.socket.parent / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    use_socket(daemon, shared / "control.sock")
    log = refused_start(daemon)
    assert f"{shared}: the socket's directory is writable by others (mode 1777)" in log
    assert list(shared.iterdir()) == []


def test_a_missing_socket_directory_is_created_closed_to_others_whatever_the_umask(
    daemon: Daemon,
) -> None:
    made = daemon.socket.parent / "new" / "deeper"
    use_socket(daemon, made / "control.sock", mode="0660", group="nogroup")
    daemon.start(prefix=("sh", "-c", 'umask 000 && exec "$@"', "sh"))
    for directory in (made.parent, made):
        info = directory.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o755, 0), directory
    info = os.lstat(made / "control.sock")
    assert stat.S_ISSOCK(info.st_mode)
    assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o660, NOBODY.pw_gid)
    assert daemon.watchctl("status").returncode == 0
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(60) == 0
    assert not (made / "control.sock").exists()


def test_a_link_planted_at_the_socket_path_is_left_alone_with_its_target(
    daemon: Daemon,
) -> None:
    secret = daemon.socket.parent / "secret"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    link = daemon.socket.parent / "control.sock"
    link.symlink_to(secret)
    use_socket(daemon, link)
    log = refused_start(daemon)
    assert f"{link}: exists and is a symbolic link, not a socket" in log
    assert link.is_symlink() and secret.read_text() == "root only\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_stopping_removes_only_the_socket_it_made(daemon: Daemon) -> None:
    daemon.start()
    os.rename(daemon.socket, daemon.socket.with_name("moved.sock"))
    daemon.socket.write_text("not watchd's\n")
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(60) == 0
    assert daemon.socket.read_text() == "not watchd's\n"
    assert "stopped" in daemon.log()


def test_a_socket_left_by_a_killed_watchd_is_replaced(daemon: Daemon, tmp_path: Path) -> None:
    daemon.start()
    (child,) = Record(tmp_path / "web").wait_starts(1)
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait(30)
    os.kill(child, signal.SIGKILL)  # orphaned by the killed watchd
    assert stat.S_ISSOCK(os.lstat(daemon.socket).st_mode)
    daemon.start(wait_ready=False)
    daemon.wait_log("ready:", count=2)
    assert daemon.watchctl("status").returncode == 0


IMPOSTOR = textwrap.dedent(
    """
    import json, socket, sys
    server = socket.socket(socket.AF_UNIX)
    server.bind(sys.argv[1])
    server.listen()
    print("listening", flush=True)
    fake = {"ok": True, "config_error": None, "summary": "",
            "jobs": [{"name": "fake", "state": "running", "pid": 1, "restarts": 0}]}
    while True:
        client, _ = server.accept()
        client.makefile("rb").readline()
        client.sendall(json.dumps(fake).encode() + b"\\n")
        client.close()
    """
)


def test_root_watchctl_refuses_a_socket_served_by_another_user(daemon: Daemon) -> None:
    theirs = daemon.socket.parent / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY.pw_uid, NOBODY.pw_gid)
    daemon.socket = theirs / "control.sock"
    with subprocess.Popen(
        [*AS_NOBODY, sys.executable, "-c", IMPOSTOR, str(daemon.socket)],
        stdout=subprocess.PIPE,
        text=True,
    ) as impostor:
        try:
            assert impostor.stdout is not None and impostor.stdout.readline() == "listening\n"
            result = daemon.watchctl("status")
        finally:
            impostor.kill()
    assert result.returncode == 1
    assert "fake" not in result.stdout
    assert f"cannot reach watchd at {daemon.socket}" in result.stderr
    assert f"served by nobody (uid {NOBODY.pw_uid}), not by root" in result.stderr


def test_an_unprivileged_watchctl_accepts_the_daemon_root_runs(daemon: Daemon) -> None:
    daemon.start()
    daemon.socket.chmod(0o666)
    result = daemon.watchctl("status", user="nobody")
    assert result.returncode == 0, result.stderr
    assert "web" in result.stdout
