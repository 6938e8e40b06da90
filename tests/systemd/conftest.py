"""Fixtures for the end-to-end tests under a real systemd: the package, and one sandbox
booted per test module with that package installed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import _children
from tests.helpers.leaks import no_new_processes
from tests.systemd.sandbox import LIVE, Sandbox, unavailable_reason

REPO = Path(__file__).resolve().parents[2]
# Where the tests keep their own files in the sandbox: the package, the child program.
TEST_DIR = "/srv/watchd-test"


@dataclass(frozen=True)
class Installation:
    """The sandbox right after `dpkg -i`, before any test changed it."""

    sandbox: Sandbox
    dpkg_output: str
    jobs_dir: list[str]
    enabled: str
    active: str


def _skip_unless_possible() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"cannot boot systemd in a sandbox: {reason}")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    _skip_unless_possible()
    box = Sandbox.boot(tmp_path_factory.mktemp("sandbox"))
    try:
        yield box
    finally:
        box.shutdown()


@pytest.fixture(scope="module")
def installed(sandbox: Sandbox, deb: Path) -> Installation:
    """The package installed the way an operator installs it: `dpkg -i`."""
    inside = f"{TEST_DIR}/{deb.name}"
    sandbox.path(TEST_DIR).mkdir(parents=True)
    shutil.copy(deb, sandbox.path(inside))
    shutil.copy(REPO / "tests" / "helpers" / "child.py", sandbox.path(f"{TEST_DIR}/child.py"))
    if sandbox.run("dpkg-query", "-W", "watchd", check=False).returncode == 0:
        sandbox.run("dpkg", "--purge", "watchd")  # installed on the host the sandbox copies
    result = sandbox.run("dpkg", "-i", inside)
    return Installation(
        sandbox=sandbox,
        dpkg_output=result.stdout + result.stderr,
        jobs_dir=sorted(os.listdir(sandbox.path("/etc/watchd/jobs.d"))),
        enabled=sandbox.systemctl("is-enabled", "watchd", check=False).stdout.strip(),
        active=sandbox.systemctl("is-active", "watchd", check=False).stdout.strip(),
    )


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """tests/conftest.py's guard, minus the sandboxes: their processes are the sandbox
    system's, not the test's, and they end with its PID 1 (Sandbox.shutdown checks)."""
    with no_new_processes(_ours):
        yield


def _ours() -> set[int]:
    namespace = os.readlink("/proc/self/ns/pid")
    return {pid for pid in _children() - LIVE if _pid_namespace(pid) == namespace}


def _pid_namespace(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""
