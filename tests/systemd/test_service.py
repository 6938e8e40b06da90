"""watchd as an operator runs it: installed from the .deb, under a real systemd."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.helpers.daemon import REPO, Record
from tests.helpers.wait import wait_until
from tests.systemd.conftest import TEST_DIR, Installation
from tests.systemd.sandbox import Sandbox

pytestmark = pytest.mark.systemd

UNIT = "watchd.service"
ERR = 3  # syslog priority
JOBS_DIR = "/etc/watchd/jobs.d"
WEB_ROOT = "/srv/www"
EXAMPLE_JOB = "/usr/share/doc/watchd/examples/web.yaml"
SUMMARY = re.compile(r"(\d+) jobs? running; [\d,]+ paths? watched \(inotify\)")
TIMEOUT = 30.0


# ---- helpers --------------------------------------------------------------------------


def status(box: Sandbox) -> dict[str, Any]:
    """`watchctl status --json`, run as an operator would."""
    result = box.run("watchctl", "status", "--json", check=False)
    assert result.returncode in (0, 3), result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def job(box: Sandbox, name: str) -> dict[str, Any] | None:
    return next((j for j in status(box)["jobs"] if j["name"] == name), None)


def main_pid(box: Sandbox) -> int:
    return int(box.show("watchd", "MainPID"))


def is_active(box: Sandbox) -> str:
    return box.systemctl("is-active", "watchd", check=False).stdout.strip()


def ensure_started(box: Sandbox) -> None:
    if is_active(box) != "active":
        box.systemctl("start", "watchd")


def ensure_stopped(box: Sandbox) -> None:
    if is_active(box) != "inactive":
        box.systemctl("stop", "watchd")


def write_jobs(
    box: Sandbox, filename: str, jobs: dict[str, Any], directory: str = JOBS_DIR
) -> None:
    """Write a job file at once (a rename), as a careful editor saves."""
    text = yaml.safe_dump({"jobs": jobs}, sort_keys=False)
    temporary = box.write(f"{directory}/.{filename}.tmp", text)
    os.replace(temporary, box.path(f"{directory}/{filename}"))


def remove_jobs(box: Sandbox, filename: str) -> None:
    box.path(f"{JOBS_DIR}/{filename}").unlink(missing_ok=True)


def child_job(name: str, *options: str, **settings: Any) -> dict[str, Any]:
    """A job running tests/helpers/child.py, which records its life in TEST_DIR/NAME.record."""
    command = ["python3", f"{TEST_DIR}/child.py", f"{TEST_DIR}/{name}.record", *options]
    return {name: {"command": command, **settings}}


def record(box: Sandbox, name: str) -> Record:
    return Record(box.path(f"{TEST_DIR}/{name}.record"))


def install_example_job(box: Sandbox) -> None:
    box.path(WEB_ROOT).mkdir(parents=True, exist_ok=True)
    box.write(f"{WEB_ROOT}/index.html", "<h1>hello</h1>\n")
    box.run("cp", EXAMPLE_JOB, f"{JOBS_DIR}/web.yaml")


@pytest.fixture
def running(installed: Installation) -> Iterator[Sandbox]:
    """watchd started, with the example job from the package's documentation."""
    box = installed.sandbox
    if not box.path(f"{JOBS_DIR}/web.yaml").exists():
        install_example_job(box)
    ensure_started(box)
    wait_until(lambda: job(box, "web"), "the web job to exist", TIMEOUT)
    yield box


# ---- the package ----------------------------------------------------------------------


def test_package_installs_everything_and_starts_nothing(installed: Installation) -> None:
    box = installed.sandbox
    assert installed.active == "inactive"
    assert installed.enabled == "disabled"
    assert installed.jobs_dir == []
    assert box.run("getent", "group", "watchd").stdout.startswith("watchd:")
    on_path = box.run("sh", "-c", "command -v watchd; command -v watchctl").stdout.split()
    assert on_path == ["/usr/bin/watchd", "/usr/bin/watchctl"]
    assert "watchd 0" in box.run("watchd", "--version").stdout
    conffiles = box.run("dpkg-query", "-W", "-f", "${Conffiles}", "watchd").stdout
    assert "/etc/watchd/watchd.yaml" in conffiles
    config = yaml.safe_load(box.path("/etc/watchd/watchd.yaml").read_text())
    assert config["control"] == {"socket": "/run/watchd/control.sock", "group": "watchd"}
    assert config["jobs_dir"] == "jobs.d"
    box.run("watchd", "check", "-c", "/etc/watchd/watchd.yaml")


# ---- start, status --------------------------------------------------------------------


def test_start_returns_once_ready_and_status_shows_the_summary(
    installed: Installation, capsys: pytest.CaptureFixture[str]
) -> None:
    box = installed.sandbox
    ensure_stopped(box)
    install_example_job(box)

    started = time.monotonic()
    box.systemctl("start", "watchd")
    took = time.monotonic() - started

    assert is_active(box) == "active"
    # STATUS= arrives with READY=1: a status line the moment start returns shows that
    # start waited for READY=1, and the job it counts was started before that.
    text = box.show("watchd", "StatusText")
    assert SUMMARY.fullmatch(text), text
    assert f'Status: "{text}"' in box.systemctl("status", "watchd").stdout
    web = job(box, "web")
    assert web is not None
    assert web["state"] == "running"
    assert box.alive(web["pid"])
    with capsys.disabled():
        print(f"\n`systemctl start watchd` with the example job took {took:.2f}s")


def test_status_line_follows_the_jobs(running: Sandbox) -> None:
    box = running
    box.run("watchctl", "stop", "web")
    wait_until(
        lambda: box.show("watchd", "StatusText").startswith("1 job stopped;"),
        "STATUS= to say the job stopped",
        TIMEOUT,
    )
    box.run("watchctl", "start", "web")
    wait_until(
        lambda: SUMMARY.fullmatch(box.show("watchd", "StatusText")),
        "STATUS= to say the job runs again",
        TIMEOUT,
    )


# ---- changes and reloads --------------------------------------------------------------


def test_child_restarts_when_its_file_is_edited(running: Sandbox) -> None:
    box = running
    before = job(box, "web")
    assert before is not None and before["state"] == "running"
    box.write(f"{WEB_ROOT}/index.html", "<h1>edited</h1>\n")

    def restarted() -> dict[str, Any] | None:
        now = job(box, "web")
        return now if now and now["restarts"] > before["restarts"] and now["pid"] else None

    after = wait_until(restarted, "the web job to restart", TIMEOUT)
    assert after is not None
    assert after["pid"] != before["pid"]
    assert after["last_trigger"]["kind"] == "change"
    assert "index.html" in after["last_trigger"]["detail"]
    assert not box.alive(before["pid"])


def test_reload_picks_up_a_new_job_file(running: Sandbox) -> None:
    box = running
    # watchd also reloads by itself when a job file changes. A bind mount over the jobs
    # directory changes what it reads without any inotify event, so only the reload can
    # pick the new job up.
    staged = f"{TEST_DIR}/jobs-next"
    box.run("cp", "-a", JOBS_DIR, staged)
    write_jobs(box, "added.yaml", child_job("added"), directory=staged)
    cursor = box.journal_cursor()
    box.run("mount", "--bind", staged, JOBS_DIR)
    try:
        listing = box.run("nsenter", "-t", str(main_pid(box)), "-m", "ls", JOBS_DIR).stdout
        assert "added.yaml" in listing.split(), "the bind mount did not reach watchd"
        assert job(box, "added") is None

        box.systemctl("reload", "watchd")
        record(box, "added").wait_starts(1, TIMEOUT)
        wait_until(
            lambda: "reload requested: 1 added" in box.journal(cursor, UNIT),
            "the reload to be logged",
            TIMEOUT,
        )
        assert job(box, "added") is not None
    finally:
        box.run("umount", JOBS_DIR)
        box.systemctl("reload", "watchd")
    wait_until(lambda: job(box, "added") is None, "the added job to go again", TIMEOUT)


# ---- logging --------------------------------------------------------------------------


def test_journal_has_priorities_and_job_output(running: Sandbox) -> None:
    box = running
    cursor = box.journal_cursor()
    write_jobs(box, "noisy.yaml", child_job("noisy", "--print", "hello from noisy"))
    try:
        record(box, "noisy").wait_starts(1, TIMEOUT)
        # The job's lines are entries of their own, under the job's name.
        wait_until(
            lambda: "hello from noisy" in box.journal(cursor, UNIT, identifier="noisy"),
            "the child's output in the journal",
            TIMEOUT,
        )
        box.write(f"{JOBS_DIR}/broken.yaml", "jobs:\n  broken:\n    comand: [true]\n")

        def errors() -> str:
            return box.journal(cursor, UNIT, identifier="watchd", priority=ERR)

        wait_until(
            lambda: "config refused" in errors() and "broken.yaml:" in errors(),
            "the refused config in the journal at error priority",
            TIMEOUT,
        )
        # Only errors at error priority: neither info lines nor the children's output.
        assert "hello from noisy" not in errors()
        assert "ready:" not in errors()
        assert "config error" in box.show("watchd", "StatusText")
    finally:
        remove_jobs(box, "broken.yaml")
        remove_jobs(box, "noisy.yaml")
    wait_until(lambda: job(box, "noisy") is None, "the noisy job to go", TIMEOUT)


def printer_job(name: str, code: str) -> dict[str, Any]:
    """A job running *code* in python3; it stays up until stopped."""
    program = f"import sys, time\n{code}\nsys.stdout.flush()\ntime.sleep(3600)\n"
    return {name: {"command": ["python3", "-u", "-c", program]}}


def journal_of(box: Sandbox, *matches: str, output: str = "cat") -> list[str]:
    """What an operator's `journalctl -u watchd MATCH…` prints, one entry a line."""
    result = box.run("journalctl", "--no-pager", "-u", UNIT, "-o", output, *matches)
    return result.stdout.splitlines()


def test_journalctl_shows_exactly_one_jobs_lines_by_its_name(running: Sandbox) -> None:
    box = running
    lines = {name: [f"{name} says {i}" for i in range(3)] for name in ("alpha", "beta")}
    write_jobs(
        box,
        "pair.yaml",
        {
            **printer_job("alpha", "for i in range(3): print(f'alpha says {i}')"),
            **printer_job("beta", "for i in range(3): print(f'beta says {i}')"),
        },
    )
    try:
        for name, expected in lines.items():

            def arrived(name: str = name, expected: list[str] = expected) -> bool:
                return journal_of(box, f"WATCHD_JOB={name}") == expected

            wait_until(arrived, f"{name}'s lines under WATCHD_JOB={name}", TIMEOUT)
        alpha = job(box, "alpha")
        assert alpha is not None
        entries = [json.loads(line) for line in journal_of(box, "WATCHD_JOB=alpha", output="json")]
        assert {e["SYSLOG_IDENTIFIER"] for e in entries} == {"alpha"}
        assert {e["SYSLOG_PID"] for e in entries} == {str(alpha["pid"])}
        assert {e["PRIORITY"] for e in entries} == {"6"}
        # `journalctl -t alpha` finds the same lines; watchd's own stay under "watchd".
        assert journal_of(box, "-t", "alpha") == lines["alpha"]
        assert any(
            line.startswith("alpha: started pid") for line in journal_of(box, "-t", "watchd")
        )
    finally:
        remove_jobs(box, "pair.yaml")
    wait_until(lambda: job(box, "alpha") is None, "the pair of jobs to go", TIMEOUT)


# 50,000 lines a second, 500 at a time.
FLOOD = """
n = 0
while True:
    sys.stdout.write("".join(f"flood {n + i}\\n" for i in range(500)))
    n += 500
    time.sleep(0.01)
"""
QUIET_LINES = 100


def test_a_flooding_job_cannot_get_another_jobs_lines_dropped(running: Sandbox) -> None:
    box = running
    assert box.show("watchd", "LogRateLimitIntervalUSec") == "0"
    write_jobs(box, "flood.yaml", printer_job("flood", FLOOD))
    try:
        # watchd has cut the flood down to its per-job rate and said so.
        dropped = re.compile(r"flood: \d+ lines dropped \(more than \d+ lines/s\)")
        wait_until(
            lambda: any(
                dropped.fullmatch(x) for x in journal_of(box, "WATCHD_JOB=flood", "-p", "4")
            ),
            "a line saying how many of the flood's lines were dropped",
            TIMEOUT,
        )
        write_jobs(
            box,
            "quiet.yaml",
            printer_job(
                "quiet", f"for i in range({QUIET_LINES}): print(f'quiet {{i}}'); time.sleep(0.02)"
            ),
        )
        expected = [f"quiet {i}" for i in range(QUIET_LINES)]
        wait_until(
            lambda: journal_of(box, "WATCHD_JOB=quiet")[-1:] == expected[-1:],
            "the quiet job's last line in the journal",
            TIMEOUT,
        )
        flood = job(box, "flood")
        assert flood is not None and flood["state"] == "running"  # status answers meanwhile
        # Every one of the quiet job's lines, in order, none lost to the flood.
        assert journal_of(box, "WATCHD_JOB=quiet") == expected
        # journald itself suppressed nothing of watchd's.
        own = box.run("journalctl", "--no-pager", "-o", "cat", "_TRANSPORT=driver").stdout
        assert not [x for x in own.splitlines() if "Suppressed" in x and "watchd" in x]
    finally:
        remove_jobs(box, "quiet.yaml")
        remove_jobs(box, "flood.yaml")
    wait_until(lambda: job(box, "flood") is None, "the flood to stop", TIMEOUT)


def test_jobs_do_not_see_the_notify_socket(running: Sandbox) -> None:
    box = running
    web = job(box, "web")
    assert web is not None and web["pid"]
    environ = box.path(f"/proc/{web['pid']}/environ").read_bytes().split(b"\0")
    names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
    assert "PATH" in names
    assert not names & {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}


# ---- watchdog, stop -------------------------------------------------------------------


def test_watchdog_restarts_a_hung_daemon(running: Sandbox) -> None:
    box = running
    dropin = box.write(
        "/etc/systemd/system/watchd.service.d/test-watchdog.conf",
        "[Service]\nWatchdogSec=2s\n",
    )
    try:
        box.systemctl("daemon-reload")
        box.systemctl("restart", "watchd")
        assert box.show("watchd", "WatchdogUSec") == "2s"
        old = main_pid(box)
        old_web = wait_until(lambda: job(box, "web"), "the web job", TIMEOUT)
        assert old_web is not None
        restarts = int(box.show("watchd", "NRestarts"))
        cursor = box.journal_cursor()

        box.run("kill", "-STOP", str(old))

        def restarted() -> bool:
            pid = main_pid(box)
            return pid not in (0, old) and is_active(box) == "active"

        wait_until(restarted, "systemd's watchdog to restart watchd", TIMEOUT, 0.2)
        assert int(box.show("watchd", "NRestarts")) == restarts + 1
        log = box.journal(cursor, UNIT)
        assert "Watchdog timeout" in log
        # faulthandler left the hung loop's Python stack in the journal.
        assert "Fatal Python error: Aborted" in log
        assert not box.alive(old)
        assert not box.alive(old_web["pid"])
        assert wait_until(lambda: job(box, "web"), "the web job again", TIMEOUT)
    finally:
        dropin.unlink()
        box.systemctl("daemon-reload")
        box.systemctl("restart", "watchd")


def test_stop_ends_every_job_process_itself(running: Sandbox) -> None:
    box = running
    write_jobs(
        box,
        "tree.yaml",
        {
            **child_job("tree", "--grandchild"),
            **child_job("stubborn", "--ignore-term", stop_timeout="1s"),
        },
    )
    try:
        tree, stubborn = record(box, "tree"), record(box, "stubborn")
        tree.wait_starts(1, TIMEOUT)
        stubborn.wait_starts(1, TIMEOUT)
        pids = [
            *tree.starts(),
            *stubborn.starts(),
            *(int(row[1]) for row in tree.events("grandchild")),
        ]
        web = job(box, "web")
        assert web is not None
        pids.append(web["pid"])
        assert all(box.alive(pid) for pid in pids)
        cursor = box.journal_cursor()

        box.systemctl("stop", "watchd")

        assert is_active(box) == "inactive"
        assert box.show("watchd", "Result") == "success"
        assert box.show("watchd", "ExecMainStatus") == "0"
        assert [pid for pid in pids if box.alive(pid)] == []
        log = box.journal(cursor, UNIT)
        assert "stopped" in log.splitlines()  # watchd's last word
        # watchd ended everything itself: systemd had nothing left to kill.
        assert "Killing process" not in log
        assert "remains running after unit stopped" not in log
        # The stubborn job ignored SIGTERM and got SIGKILL from watchd after its timeout.
        assert stubborn.events("signal")[-1][2] == "SIGTERM"
    finally:
        remove_jobs(box, "tree.yaml")


def test_a_jobs_escaped_daemons_are_gone_after_watchctl_stop_and_systemctl_stop(
    running: Sandbox,
) -> None:
    """Delegate=yes: each job in a cgroup of its own, so a daemon that forked twice and
    called setsid is stopped with its job."""
    box = running
    daemonize = REPO / "tests" / "helpers" / "daemonize.py"
    box.write(f"{TEST_DIR}/daemonize.py", daemonize.read_text())

    def tree_job(name: str) -> dict[str, Any]:
        command = ["python3", f"{TEST_DIR}/daemonize.py", f"{TEST_DIR}/{name}.tree", "3"]
        return {name: {"command": command, "stop_timeout": "2s"}}

    def daemons(name: str) -> list[int]:
        try:
            lines = box.path(f"{TEST_DIR}/{name}.tree").read_text().splitlines()
        except FileNotFoundError:
            return []
        return [int(line.split()[1]) for line in lines if line.startswith("daemon ")]

    write_jobs(box, "daemons.yaml", {**tree_job("forker"), **tree_job("other")})
    try:
        wait_until(lambda: len(daemons("forker")) >= 3, "forker's daemons", TIMEOUT)
        wait_until(lambda: len(daemons("other")) >= 3, "other's daemons", TIMEOUT)
        forker = job(box, "forker")
        assert forker is not None and forker["containment"] == "cgroup", forker
        assert forker["cgroup"].startswith("/system.slice/watchd.service/watchd-")

        box.run("watchctl", "stop", "forker")
        assert [pid for pid in daemons("forker") if box.alive(pid)] == []
        assert all(box.alive(pid) for pid in daemons("other"))

        cursor = box.journal_cursor()
        box.systemctl("stop", "watchd")
        assert [pid for pid in daemons("other") if box.alive(pid)] == []
        log = box.journal(cursor, UNIT)
        assert "Killing process" not in log  # watchd ended them itself
    finally:
        remove_jobs(box, "daemons.yaml")
