"""watchd as PID 1 of a new PID namespace, as in a container: it reaps every orphan,
SIGTERM stops it cleanly, and its exit status says how its jobs stopped."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.daemon import Daemon, Record, child_command, running_daemon
from tests.helpers.wait import wait_until

# --kill-child: the namespace goes with unshare if the test dies first.
PID_NAMESPACE = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child")
ORPHANS = 5


def _skip_unless_permitted() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed (util-linux)")
    probe = subprocess.run([*PID_NAMESPACE, "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"a new PID namespace is not permitted here: {probe.stderr.strip()}")


def _stat(pid: int) -> list[str]:
    """State, parent, ...: the fields of /proc/PID/stat after the command name."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def init_pid(daemon: Daemon) -> int:
    """The host PID of watchd, PID 1 of the new namespace (unshare's one child)."""
    assert daemon.process is not None
    unshare = daemon.process.pid
    (pid,) = Path(f"/proc/{unshare}/task/{unshare}/children").read_text().split()
    return int(pid)


def zombies_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    found = []
    for child in map(int, children):
        try:
            if _stat(child)[0] == "Z":
                found.append(child)
        except OSError:
            continue
    return found


def stop(daemon: Daemon) -> int:
    """SIGTERM to watchd itself (unshare does not pass it on); unshare exits with its status."""
    assert daemon.process is not None
    os.kill(init_pid(daemon), signal.SIGTERM)
    return daemon.process.wait(60)


@pytest.fixture
def in_namespace(tmp_path: Path) -> Iterator[Daemon]:
    _skip_unless_permitted()
    with running_daemon(tmp_path) as daemon:
        yield daemon


def test_pid_1_reaps_orphans_of_its_jobs_and_of_processes_entering_its_namespace(
    in_namespace: Daemon, tmp_path: Path
) -> None:
    daemon = in_namespace
    orphans = tmp_path / "orphans"
    # Each subshell leaves a sleep behind and exits: the sleep is re-parented to watchd.
    leave_orphans = f"for i in $(seq {ORPHANS}); do (sleep 0.2 & echo $! >> {orphans}); done"
    daemon.write_jobs(
        "jobs.yaml", {"orphans": {"command": ["sh", "-c", f"{leave_orphans}; exec sleep 600"]}}
    )
    daemon.start(prefix=PID_NAMESPACE)
    init = init_pid(daemon)
    assert "PID 1 without a /proc" not in daemon.log()
    wait_until(
        lambda: orphans.exists() and len(orphans.read_text().split()) == ORPHANS,
        "the job to leave its orphans",
    )
    # As `docker exec` would: a process entering the namespace from outside leaves one too,
    # re-parented to the namespace's PID 1 rather than to anything of watchd's.
    subprocess.run(
        ["nsenter", "-t", str(init), "-p", "-m", "sh", "-c", f"(sleep 0.2 & echo $! >> {orphans})"],
        check=True,
    )
    assert len(orphans.read_text().split()) == ORPHANS + 1

    def all_reaped() -> bool:
        # The orphans exist in the namespace's /proc until reaped, zombies included.
        ns_proc = Path(f"/proc/{init}/root/proc")
        left = [pid for pid in orphans.read_text().split() if (ns_proc / pid).exists()]
        return not left and not zombies_of(init)

    wait_until(all_reaped, "every orphan to be reaped")
    assert stop(daemon) == 0
    assert "stopped" in daemon.log().splitlines()[-1]


def test_sigterm_stops_every_job_and_exits_0_when_they_stop_cleanly(
    in_namespace: Daemon, tmp_path: Path
) -> None:
    daemon = in_namespace
    web, stubborn = Record(tmp_path / "web"), Record(tmp_path / "stubborn")
    daemon.write_jobs(
        "jobs.yaml",
        {
            "web": {"command": child_command(web.path)},  # exits 143 on SIGTERM
            "stubborn": {
                "command": child_command(stubborn.path, "--ignore-term"),
                "stop_timeout": "300ms",
            },
        },
    )
    daemon.start(prefix=PID_NAMESPACE)
    web.wait_starts(1)
    stubborn.wait_starts(1)

    assert stop(daemon) == 0
    assert web.events("signal")[-1][2] == "SIGTERM"
    assert stubborn.events("signal")[-1][2] == "SIGTERM"


def test_exit_status_is_that_of_a_job_that_failed_to_stop_cleanly(
    in_namespace: Daemon, tmp_path: Path
) -> None:
    daemon = in_namespace
    trapped = tmp_path / "trapped"
    trap = f"trap 'exit 7' TERM; touch {trapped}; while :; do sleep 0.05; done"
    daemon.write_jobs(
        "jobs.yaml", {"fine": {"command": ["sleep", "600"]}, "bad": {"command": ["sh", "-c", trap]}}
    )
    daemon.start(prefix=PID_NAMESPACE)
    wait_until(trapped.exists, "the bad job to trap SIGTERM")

    assert stop(daemon) == 7
    assert "stopped; exit status 7" in daemon.log()


def test_pid_1_stops_what_is_left_in_its_namespace_before_it_exits(in_namespace: Daemon) -> None:
    daemon = in_namespace
    daemon.write_jobs("jobs.yaml", {"idle": {"command": ["sleep", "600"]}})
    daemon.start(prefix=PID_NAMESPACE)
    # A process started in the namespace by something other than watchd (`docker exec`).
    visitor = subprocess.Popen(["nsenter", "-t", str(init_pid(daemon)), "-p", "-m", "sleep", "600"])
    try:
        wait_until(lambda: _has_child(visitor.pid), "the visitor to run")
        assert stop(daemon) == 0
        # SIGTERM from watchd, not the kernel's SIGKILL when PID 1 exits.
        assert visitor.wait(30) == -signal.SIGTERM
    finally:
        if visitor.poll() is None:
            visitor.kill()
            visitor.wait()
    assert "1 process left after the jobs stopped: sending SIGTERM" in daemon.log()


def _has_child(pid: int) -> bool:
    return bool(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
