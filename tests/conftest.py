"""Guards for every test: no leaked child processes, file descriptors or asyncio tasks."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.leaks import no_new_processes
from tests.helpers.package import built_deb
from tests.helpers.tasks import no_tasks_left_running


def _children() -> set[int]:
    """Live (non-zombie) descendants of this process, found through /proc."""
    me = os.getpid()
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {me}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    with no_new_processes(_children):
        yield


@pytest.fixture(autouse=True)
def no_leaked_tasks() -> Iterator[None]:
    with no_tasks_left_running() as left_running:
        yield
    if left_running:
        pytest.fail(f"asyncio tasks left running when the scenario ended: {left_running}")


@pytest.fixture(autouse=True)
def no_leaked_fds() -> Iterator[None]:
    before = _open_fds()
    yield
    leaked = _open_fds() - before
    if leaked:
        # Descriptors can be closed a moment late by garbage collection; give it a chance.
        gc.collect()
        leaked = _open_fds() - before
    if leaked:
        targets = {}
        for fd in leaked:
            try:
                targets[fd] = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
        if targets:
            pytest.fail(f"test leaked file descriptors: {targets}")


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb that packaging/build-deb makes of this checkout (built once per run)."""
    return built_deb(tmp_path_factory.mktemp("deb"))


# Building the package (two venvs, pip, an isolated setuptools build) takes a minute on a
# loaded machine, and is paid by whichever test needs it first.
BUILD_TIMEOUT = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "deb" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT))
