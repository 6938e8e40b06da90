"""Stop means gone: each job in a cgroup of its own, whatever its program forks (SPEC §11).

Real cgroups: these tests need root and a writable cgroup v2 hierarchy (on a hybrid host,
``/sys/fs/cgroup/unified``); they skip, saying why, where there is none. The daemons are
real: fork, setsid, fork (tests/helpers/daemonize.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import REPO, running_daemon
from tests.helpers.procs import alive
from tests.helpers.wait import async_wait_until, wait_until
from tests.integration.conftest import daemon_running
from watchd.supervise import cgroup

DAEMONIZE = str(REPO / "tests" / "helpers" / "daemonize.py")
DAEMONS = 5


def _probe() -> cgroup.Hierarchy | str:
    found = cgroup.setup(f"probe-{os.getpid()}-{id(object())}")
    if isinstance(found, cgroup.Hierarchy):
        found.close()
    return found


PROBE = _probe()
needs_cgroup = pytest.mark.skipif(
    not isinstance(PROBE, cgroup.Hierarchy), reason=f"no writable cgroup v2 hierarchy: {PROBE}"
)
CONTROLLERS = PROBE.controllers if isinstance(PROBE, cgroup.Hierarchy) else frozenset()


class Tree:
    """What one daemonize.py job recorded: its main processes and its daemons."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self, kind: str) -> list[list[str]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        return [line.split() for line in text.splitlines() if line.startswith(kind + " ")]

    def mains(self) -> list[int]:
        return [int(row[1]) for row in self.lines("main")]

    def old_alive_at_start(self) -> list[int]:
        return [int(row[2]) for row in self.lines("main")]

    def daemons(self) -> list[int]:
        return [int(row[1]) for row in self.lines("daemon")]

    def living(self) -> list[int]:
        return [pid for pid in [*self.mains(), *self.daemons()] if alive(pid)]


def tree_job(tree: Tree, *options: str, **settings: Any) -> dict[str, Any]:
    command = [sys.executable, DAEMONIZE, str(tree.path), str(DAEMONS), *options]
    return {"command": command, "stop_timeout": "2s", **settings}


async def daemons_up(tree: Tree, count: int = DAEMONS) -> list[int]:
    await async_wait_until(lambda: len(tree.daemons()) >= count, f"{count} daemons to run")
    return tree.daemons()


def cgroup_of(pid: int) -> str:
    return cgroup.own_cgroup(Path(f"/proc/{pid}/cgroup").read_text()) or ""


@needs_cgroup
def test_stopping_a_job_leaves_none_of_its_escaped_daemons(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": tree_job(tree)}) as daemon:
            daemons = await daemons_up(tree)
            (main,) = tree.mains()
            assert all(os.getpgid(pid) != main for pid in daemons)  # out of the job's group
            await daemon.control_jobs("stop", ["web"])
            assert tree.living() == []
            status = daemon.job_status(["web"])[0]
            assert status.state == "stopped"

    asyncio.run(scenario())


@needs_cgroup
def test_a_daemon_the_job_forked_into_a_session_of_its_own_may_say_it_is_ready(
    tmp_path: Path,
) -> None:
    tree = Tree(tmp_path / "tree")

    async def scenario() -> None:
        job = tree_job(tree, "--notify", ready="notify", ready_timeout="30s")
        async with daemon_running(tmp_path, {"web": job}) as daemon:
            (status,) = daemon.job_status(["web"])
            assert (status.state, status.ready) == ("running", True)
            (main,) = tree.mains()
            assert os.getsid(tree.daemons()[0]) != main  # not the job's own session

    asyncio.run(scenario())


@needs_cgroup
def test_daemons_that_ignore_the_stop_signal_are_killed_after_stop_timeout(
    tmp_path: Path,
) -> None:
    tree = Tree(tmp_path / "tree")

    async def scenario() -> None:
        job = tree_job(tree, "--ignore-term", stop_timeout="300ms")
        async with daemon_running(tmp_path, {"web": job}) as daemon:
            await daemons_up(tree)
            await daemon.control_jobs("stop", ["web"])
            assert tree.living() == []

    asyncio.run(scenario())


@needs_cgroup
def test_a_file_change_restart_starts_the_new_child_only_once_the_old_tree_is_gone(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    tree = Tree(tmp_path / "tree")

    async def scenario() -> None:
        job = tree_job(tree, "--ignore-term", stop_timeout="300ms", watch={"paths": [str(src)]})
        async with daemon_running(tmp_path, {"web": job}):
            old = await daemons_up(tree)
            (src / "app.py").write_text("v2")
            await daemons_up(tree, 2 * DAEMONS)
            assert len(tree.mains()) == 2
            assert tree.old_alive_at_start() == [0, 0]  # the new child saw none of them
            assert not any(alive(pid) for pid in old)

    asyncio.run(scenario())


@needs_cgroup
def test_daemons_a_before_restart_step_leaves_are_gone_once_it_ends(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    tree, build = Tree(tmp_path / "tree"), Tree(tmp_path / "build")

    async def scenario() -> None:
        step = [sys.executable, DAEMONIZE, str(build.path), "3", "--exit"]
        job = tree_job(tree, before_restart=step, watch={"paths": [str(src)]})
        async with daemon_running(tmp_path, {"web": tree_job(tree) | job}):
            await daemons_up(tree)
            (src / "app.py").write_text("v2")
            await async_wait_until(lambda: len(tree.mains()) == 2, "the restart after the build")
            assert len(build.daemons()) == 3
            assert build.living() == []

    asyncio.run(scenario())


@needs_cgroup
def test_stopping_watchd_leaves_none_of_the_jobs_daemons(tmp_path: Path) -> None:
    trees = [Tree(tmp_path / "a"), Tree(tmp_path / "b")]

    async def scenario() -> None:
        jobs = {"a": tree_job(trees[0]), "b": tree_job(trees[1], "--ignore-term")}
        async with daemon_running(tmp_path, jobs):
            for tree in trees:
                await daemons_up(tree)
        assert [tree.living() for tree in trees] == [[], []]

    asyncio.run(scenario())


@needs_cgroup
def test_each_jobs_processes_share_one_cgroup_apart_from_watchd_and_other_jobs(
    tmp_path: Path,
) -> None:
    trees = {"a": Tree(tmp_path / "a"), "b": Tree(tmp_path / "b")}

    async def scenario() -> None:
        jobs = {name: tree_job(tree) for name, tree in trees.items()}
        async with daemon_running(tmp_path, jobs) as daemon:
            found = {}
            for name, tree in trees.items():
                daemons = await daemons_up(tree)
                found[name] = {cgroup_of(pid) for pid in [*tree.mains(), *daemons]}
            assert len(found["a"]) == 1 and len(found["b"]) == 1
            assert found["a"] != found["b"]
            assert cgroup_of(os.getpid()) not in found["a"] | found["b"]
            for name in trees:
                status = daemon.job_status([name])[0]
                assert status.containment == "cgroup" and status.cgroup is not None
                (leaf,) = found[name]
                assert leaf.startswith(status.cgroup + "/")
                assert status.cgroup.endswith(f"/job-{name}")

    asyncio.run(scenario())


@needs_cgroup
def test_status_shows_the_cpu_time_and_memory_of_the_job(tmp_path: Path) -> None:
    burn = [
        sys.executable,
        "-c",
        "import time\nend = time.process_time() + 0.3\n"
        "while time.process_time() < end: pass\ntime.sleep(3600)",
    ]

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"burn": {"command": burn}}) as daemon:

            def used() -> float:
                seconds = daemon.job_status(["burn"])[0].cpu_seconds
                return float(seconds or 0)

            await async_wait_until(lambda: used() >= 0.3, "the job's CPU time to show")
            memory = daemon.job_status(["burn"])[0].memory_bytes
            if "memory" in CONTROLLERS:
                assert memory is not None and memory > 1 << 20
            else:
                assert memory is None  # the memory controller is not in the v2 hierarchy

    asyncio.run(scenario())


LIMITED = {"memory": "64M", "tasks": 20, "cpu": "50%"}
CONTROLLER_OF = {"memory": "memory", "tasks": "pids", "cpu": "cpu"}
UNENFORCED = [key for key, controller in CONTROLLER_OF.items() if controller not in CONTROLLERS]
WARNING = re.compile(r"^(.+):(\d+):(\d+): warning: limits\.(\w+): not enforced: ")


def assert_points_at_its_limit(warning: str, path: Path) -> str:
    """The warning names FILE:LINE:COL of the limit's value; returns the limit's key."""
    match = WARNING.match(warning)
    assert match is not None, warning
    file, line, column, key = match.groups()
    assert file == str(path)
    text = path.read_text().splitlines()[int(line) - 1]
    assert text.lstrip().startswith(f"{key}:")
    assert text[int(column) - 1 :].strip() == str(LIMITED[key])
    return key


@needs_cgroup
@pytest.mark.skipif(not UNENFORCED, reason="every limit's controller is available here")
def test_a_limit_without_its_controller_is_a_warning_in_status_and_watchctl(
    tmp_path: Path,
) -> None:
    with running_daemon(tmp_path) as daemon:
        job = {"command": ["sleep", "3600"], "limits": LIMITED}
        path = daemon.write_jobs("jobs.yaml", {"web": job})
        daemon.start()
        status = daemon.job("web")
        assert status["limits"] == {"memory": 64 << 20, "tasks": 20, "cpu": 0.5}
        warnings = status["limit_warnings"]
        assert [assert_points_at_its_limit(w, path) for w in warnings] == UNENFORCED
        table = daemon.watchctl("status").stdout
        assert all(f"web: {w}" in table for w in warnings)
        assert warnings[0] in daemon.log()


@pytest.mark.skipif(not UNENFORCED, reason="every limit's controller is available here")
def test_watchd_check_warns_of_a_limit_it_cannot_enforce(tmp_path: Path) -> None:
    with running_daemon(tmp_path) as daemon:
        job = {"command": ["sleep", "3600"], "limits": LIMITED}
        path = daemon.write_jobs("jobs.yaml", {"web": job})
        result = subprocess.run(
            [sys.executable, "-m", "watchd", "check", "-c", str(daemon.config_path)],
            capture_output=True,
            text=True,
            check=False,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
    assert result.returncode == 0, result.stderr
    assert "ok (1 job" in result.stdout
    warnings = result.stderr.splitlines()
    assert [assert_points_at_its_limit(w, path) for w in warnings] == UNENFORCED


@needs_cgroup
@pytest.mark.skipif("memory" not in CONTROLLERS, reason="no memory controller in cgroup v2 here")
def test_a_child_killed_by_the_oom_killer_shows_oom_killed(tmp_path: Path) -> None:
    hog = [sys.executable, "-c", "import time\nb = bytearray(256 << 20)\ntime.sleep(3600)"]

    async def scenario() -> None:
        job = {"command": hog, "limits": {"memory": "32M"}, "restart": "never"}
        async with daemon_running(tmp_path, {"hog": job}) as daemon:
            runner = daemon.runners["hog"]
            await async_wait_until(
                lambda: (
                    runner.job.last_trigger is not None
                    and runner.job.last_trigger.kind == "oom-killed"
                ),
                "the OOM kill to show",
            )

    asyncio.run(scenario())


@needs_cgroup
@pytest.mark.skipif(
    not ({"memory", "pids", "cpu"} & CONTROLLERS), reason="no limit controller in cgroup v2 here"
)
def test_limits_are_written_to_the_jobs_cgroup(tmp_path: Path) -> None:
    async def scenario() -> None:
        job = {"command": ["sleep", "3600"], "limits": {"memory": "64M", "tasks": 20, "cpu": "50%"}}
        async with daemon_running(tmp_path, {"web": job}) as daemon:
            runner = daemon.runners["web"]
            await async_wait_until(lambda: runner.job.pid is not None, "the child")
            path = runner.containment.cgroup.path  # type: ignore[union-attr]
            expected = {
                "memory": ("memory.max", "67108864"),
                "pids": ("pids.max", "20"),
                "cpu": ("cpu.max", "50000 100000"),
            }
            for controller, (name, value) in expected.items():
                if controller in CONTROLLERS:
                    assert (path / name).read_text().strip() == value

    asyncio.run(scenario())


@contextlib.contextmanager
def killed_afterwards(*trees: Tree) -> Iterator[None]:
    """However the test ends, nothing it started lives on (what survives is the failure)."""
    try:
        yield
    finally:
        for tree in trees:
            for pid in tree.living():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@needs_cgroup
def test_a_watchd_started_after_a_sigkill_empties_what_the_killed_one_left(
    tmp_path: Path,
) -> None:
    tree = Tree(tmp_path / "tree")
    with running_daemon(tmp_path) as daemon, killed_afterwards(tree):
        daemon.write_jobs("jobs.yaml", {"web": tree_job(tree)})
        daemon.start()
        wait_until(lambda: len(tree.daemons()) >= DAEMONS, "the daemons to run")
        assert daemon.process is not None
        daemon.process.kill()
        daemon.process.wait()
        (main,) = tree.mains()
        # The direct child goes with watchd (PR_SET_PDEATHSIG); what forked away cannot.
        wait_until(lambda: not alive(main), "the child to get its parent-death signal")
        assert all(alive(pid) for pid in tree.daemons())

        daemon.start()  # the same control socket: the same cgroup subtree
        wait_until(lambda: len(tree.mains()) == 2, "the job to start again")
        assert tree.old_alive_at_start() == [0, 0]  # the old daemons were gone before
        assert f"killing {DAEMONS} processes an earlier watchd left in " in daemon.log()
        wait_until(lambda: len(tree.daemons()) >= 2 * DAEMONS, "the new daemons to run")
        assert daemon.stop() == 0
        assert tree.living() == []


def _private_mounts() -> str | None:
    """Why a read-only remount in a private mount namespace is impossible here, if it is."""
    if os.geteuid() != 0:
        return "a private read-only mount needs root"
    if cgroup.find_cgroup2_mount(Path("/proc/self/mountinfo").read_text()) is None:
        return "no cgroup v2 hierarchy to make read-only"
    try:
        probe = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "true"],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return "no unshare(1)"
    return None if probe.returncode == 0 else f"unshare --mount: {probe.stderr.strip()}"


PRIVATE_MOUNTS = _private_mounts()


@pytest.mark.skipif(PRIVATE_MOUNTS is not None, reason=str(PRIVATE_MOUNTS))
def test_without_a_writable_hierarchy_jobs_fall_back_to_process_groups_and_say_so(
    tmp_path: Path,
) -> None:
    mount = cgroup.find_cgroup2_mount(Path("/proc/self/mountinfo").read_text())
    remount = 'mount -o remount,bind,ro "$0" && exec "$@"'
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", remount, str(mount)]
    record = tmp_path / "sleep.pid"
    with running_daemon(tmp_path) as daemon:
        script = f"echo $$ > {record} && exec sleep 3600"
        job = {"command": ["sh", "-c", script], "limits": {"tasks": 20}}
        daemon.write_jobs("jobs.yaml", {"web": job})
        daemon.start(prefix=prefix)
        status = daemon.job("web")
        assert status["containment"] == "process-group"
        assert "Read-only file system" in status["containment_reason"]
        assert status["cgroup"] is None and status["cpu_seconds"] is None
        (warning,) = status["limit_warnings"]
        assert ": warning: limits.tasks: not enforced: no cgroup (cannot write " in warning
        assert warning in daemon.log()
        table = daemon.watchctl("status").stdout
        assert "containment: process group only (cannot write " in table
        pid = int(wait_until(lambda: record.exists() and record.read_text().strip(), "the pid"))
        assert daemon.watchctl("stop", "web").returncode == 0
        assert not alive(pid)


@needs_cgroup
def test_where_cgroup_kill_is_missing_a_frozen_tree_is_killed_whole(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    hierarchy = cgroup.setup(f"freeze-{tmp_path}")
    assert isinstance(hierarchy, cgroup.Hierarchy)
    leaf = hierarchy.job("tree").child("run-1")
    hierarchy.job("tree").create()
    leaf.create()
    join = f'echo $$ > {leaf.path}/cgroup.procs && exec "$@"'
    command = [
        "sh",
        "-c",
        join,
        "sh",
        sys.executable,
        DAEMONIZE,
        str(tree.path),
        "5",
        "--ignore-term",
    ]
    child = subprocess.Popen(command)
    try:
        with killed_afterwards(tree):
            wait_until(lambda: len(tree.daemons()) >= DAEMONS, "the daemons to run")
            leaf.kill_frozen()
            assert child.wait(10) == -signal.SIGKILL
            wait_until(lambda: not leaf.populated(), "the cgroup to empty")
            assert tree.living() == []
    finally:
        leaf.kill()
        child.wait()
        hierarchy.close()
    assert not hierarchy.root.exists()
