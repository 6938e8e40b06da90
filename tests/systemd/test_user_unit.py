"""The package's user unit under a real user manager (`systemd --user`, started by the
sandbox's systemd as user@UID.service): the README's two commands for a developer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers.wait import wait_until
from tests.systemd.conftest import Installation
from tests.systemd.sandbox import Sandbox

pytestmark = pytest.mark.systemd

USER, UID = "dev", 4242
HOME = f"/home/{USER}"
RUNTIME = f"/run/user/{UID}"
TIMEOUT = 30.0


def as_user(box: Sandbox, *argv: str, check: bool = True) -> str:
    """*argv* run as the developer, in their session's environment."""
    env = ["env", f"XDG_RUNTIME_DIR={RUNTIME}", f"HOME={HOME}"]
    return box.run("runuser", "-u", USER, "--", *env, *argv, check=check).stdout


def status(box: Sandbox) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(as_user(box, "watchctl", "status", "--json", check=False))
    return body


def test_a_developer_runs_watchd_under_their_own_systemd_in_two_commands(
    installed: Installation,
) -> None:
    box = installed.sandbox
    box.run("useradd", "--create-home", "--uid", str(UID), USER)
    box.systemctl("start", f"user@{UID}.service")  # what logging in does
    assert as_user(box, "systemctl", "--user", "is-system-running", check=False).strip() in (
        "running",
        "degraded",
    )
    # The README's two commands.
    as_user(
        box,
        "install",
        "-D",
        "/usr/share/doc/watchd/examples/user.yaml",
        f"{HOME}/.config/watchd/watchd.yaml",
    )
    as_user(box, "systemctl", "--user", "enable", "--now", "watchd")
    assert as_user(box, "systemctl", "--user", "is-active", "watchd").strip() == "active"

    # A job file saved into ~/.config/watchd/jobs.d applies itself; watchctl finds the
    # socket under $XDG_RUNTIME_DIR by itself, and the job runs as the developer.
    jobs = f"{HOME}/.config/watchd/jobs.d"
    as_user(box, "mkdir", "-p", jobs)
    as_user(
        box,
        "sh",
        "-c",
        f"printf 'jobs:\\n  idle:\\n    command: [sleep, \"600\"]\\n' > {jobs}/idle.yaml",
    )

    def idle() -> dict[str, Any] | None:
        found = [job for job in status(box).get("jobs", []) if job["name"] == "idle"]
        return found[0] if found and found[0]["state"] == "running" else None

    job = wait_until(idle, "the job to run under the user's watchd", TIMEOUT)
    assert job is not None
    assert box.path(f"{RUNTIME}/watchd/control.sock").is_socket()
    owner = box.path(f"/proc/{job['pid']}/status").read_text()
    assert f"Uid:\t{UID}\t" in owner
    as_user(box, "systemctl", "--user", "stop", "watchd")
    assert not box.alive(job["pid"])
