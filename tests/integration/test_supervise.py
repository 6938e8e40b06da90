"""What a user sees of supervision: restarts on change, exit 3, backoff, stop, process trees."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import Record, child_command
from tests.helpers.procs import alive
from tests.helpers.wait import async_wait_until
from tests.integration.conftest import daemon_running
from watchd.control.status import JobStatus
from watchd.daemon import Daemon
from watchd.supervise.states import StatusWord


def job(record: Path, watched: Path | None, *options: str, **settings: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {"command": child_command(record, *options)}
    if watched is not None:
        definition["watch"] = {"paths": [str(watched)], **settings.pop("watch", {})}
    definition.update(settings)
    return definition


async def starts(record: Record, count: int) -> list[int]:
    await async_wait_until(lambda: len(record.starts()) >= count, f"{count} child starts")
    return record.starts()


def status_of(daemon: Daemon, name: str) -> JobStatus:
    """The job as ``watchctl status`` reports it."""
    (status,) = daemon.job_status([name])
    return status


async def settle(daemon: Daemon, name: str) -> JobStatus:
    """Wait until nothing is pending for the job (no debounce, restart or backoff under
    way), then report its status."""
    runner = daemon.runners[name]
    await async_wait_until(lambda: runner.job.settled, f"{name} to settle")
    return status_of(daemon, name)


def test_editing_a_watched_file_restarts_the_child(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text("v1")
    record = Record(tmp_path / "record")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, src)}) as daemon:
            (first,) = await starts(record, 1)
            (src / "app.py").write_text("v2")
            second = (await starts(record, 2))[1]
            assert second != first
            assert not alive(first)
            assert record.events("signal")[0][2] == "SIGTERM"
            await async_wait_until(
                lambda: status_of(daemon, "web").pid == second, "the new pid to be known"
            )
            status = status_of(daemon, "web")
            trigger = status.last_trigger
            assert trigger is not None and trigger.kind == "change"
            assert trigger.detail == str(src / "app.py")
            assert status.restarts == 1

    asyncio.run(scenario())


def test_excluded_and_editor_files_do_not_restart(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    record = Record(tmp_path / "record")
    watch = {"include": ["*.py"], "exclude": ["build/"]}

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, src, watch=watch)}) as daemon:
            await starts(record, 1)
            (src / "notes.txt").write_text("not included")
            (src / "build").mkdir()
            (src / "build" / "gen.py").write_text("excluded")
            (src / ".app.py.swp").write_text("vim swap")
            (src / "app.py~").write_text("backup")
            (src / "sentinel.py").write_text("included")  # must cause exactly one restart
            await starts(record, 2)
            status = await settle(daemon, "web")
            assert status.restarts == 1
            trigger = status.last_trigger
            assert trigger is not None and trigger.detail == str(src / "sentinel.py")
        assert len(record.starts()) == 2, record.events()

    asyncio.run(scenario())


def test_atomic_save_restarts_once(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text("v1")
    record = Record(tmp_path / "record")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, src)}) as daemon:
            await starts(record, 1)
            temp = src / ".app.py.tmp123"
            temp.write_text("v2")
            os.rename(temp, src / "app.py")
            await starts(record, 2)
            status = await settle(daemon, "web")
            assert status.restarts == 1
            trigger = status.last_trigger
            assert trigger is not None and trigger.detail.startswith(str(src / "app.py"))
        assert len(record.starts()) == 2

    asyncio.run(scenario())


def test_file_in_a_brand_new_nested_directory_restarts(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    record = Record(tmp_path / "record")

    async def scenario() -> None:
        async with daemon_running(
            tmp_path, {"web": job(record.path, src, watch={"include": ["*.py"]})}
        ) as daemon:
            await starts(record, 1)
            nested = src / "a" / "b" / "c"
            nested.mkdir(parents=True)
            (nested / "new.py").write_text("x")
            await starts(record, 2)
            trigger = status_of(daemon, "web").last_trigger
            assert trigger is not None and trigger.detail == str(nested / "new.py")

    asyncio.run(scenario())


def test_storm_of_5000_writes_restarts_exactly_once(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    files = [src / f"f{i}.py" for i in range(5000)]
    for path in files:
        path.write_text("0")
    record = Record(tmp_path / "record")
    # A quiet window wide enough that a noisy machine's pause mid-storm is not "quiet".
    settings = {"debounce": "1s", "debounce_max": "60s"}

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, src, **settings)}) as daemon:
            await starts(record, 1)
            for path in files:
                path.write_text("1")
            (src / "sentinel.py").write_text("last")
            await starts(record, 2)
            assert (await settle(daemon, "web")).restarts == 1
        assert len(record.starts()) == 2

    asyncio.run(scenario())


def test_exit_3_restarts_at_once_and_is_not_a_failure(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    # Exits 3 five times at 0.1 s spacing: well under the tight-loop limit.
    definition = job(record.path, None, "--exit", "3", "--after", "0.1")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": definition}) as daemon:
            await starts(record, 5)
            assert status_of(daemon, "web").state in (StatusWord.RUNNING, StatusWord.STARTING)
            exits = [int(row[-1]) for row in record.events("exit")]
            begins = [int(row[-1]) for row in record.events("start")]
            gaps = [(begins[i + 1] - exits[i]) / 1e9 for i in range(3)]
            # "At once": no backoff delay (the first backoff step alone would be 0.1 s).
            assert max(gaps) < 2.0, gaps

    asyncio.run(scenario())


def test_crashing_child_backs_off_then_fails(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")
    definition = job(
        record.path,
        None,
        "--exit",
        "1",
        backoff_initial="50ms",
        start_limit_burst=3,
        start_limit_interval="1m",
    )

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": definition}) as daemon:
            await async_wait_until(
                lambda: status_of(daemon, "web").state is StatusWord.FAILED, "failed"
            )
            assert len(record.starts()) == 3
            assert status_of(daemon, "web").pid is None
            exits = [int(row[-1]) for row in record.events("exit")]
            begins = [int(row[-1]) for row in record.events("start")]
            gap1, gap2 = (begins[1] - exits[0]) / 1e9, (begins[2] - exits[1]) / 1e9
            assert gap1 >= 0.05 and gap2 >= 0.1  # exponential backoff

    asyncio.run(scenario())


def test_a_command_that_cannot_be_executed_fails_to_start_with_the_reason(
    tmp_path: Path,
) -> None:
    script = tmp_path / "server"
    script.write_text("#!/bin/sh\nexec sleep 600\n")  # not executable
    definition = {"command": [str(script)], "start_limit_burst": 1}

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": definition}) as daemon:
            await async_wait_until(
                lambda: status_of(daemon, "web").state is StatusWord.FAILED, "failed"
            )
            status = status_of(daemon, "web")
            assert status.pid is None
            assert status.last_trigger is not None
            assert status.last_trigger.detail == (
                f"failed to start: Permission denied: {str(script)!r}"
            )

    asyncio.run(scenario())


def test_child_ignoring_sigterm_is_killed_after_stop_timeout(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    record = Record(tmp_path / "record")
    definition = job(record.path, src, "--ignore-term", stop_timeout="500ms")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": definition}):
            (first,) = await starts(record, 1)
            (src / "x.py").write_text("change")
            await starts(record, 2)
            signalled = int(record.events("signal")[0][-1])
            restarted = int(record.events("start")[1][-1])
            assert not alive(first)
            assert (restarted - signalled) / 1e9 >= 0.5, "new child started before the kill"

    asyncio.run(scenario())


def test_grandchildren_are_gone_after_restart_and_shutdown(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    record = Record(tmp_path / "record")
    definition = job(record.path, src, "--grandchild", stop_timeout="5s")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": definition}):
            await starts(record, 1)
            (src / "x.py").write_text("change")
            await starts(record, 2)
            first_grandchild = int(record.events("grandchild")[0][1])
            assert not alive(first_grandchild)
        grandchildren = [int(row[1]) for row in record.events("grandchild")]
        assert len(grandchildren) == 2
        assert not any(alive(pid) for pid in grandchildren)

    asyncio.run(scenario())


# A leader with a forked grandchild in its process group; each notes its start and every
# SIGTERM it gets. The leader exits on its first; the grandchild never does.
FAMILY = """\
import os, signal, sys
def note(*words):
    with open(sys.argv[1], "a") as out:
        out.write(" ".join(map(str, words)) + "\\n")
if os.fork() == 0:
    signal.signal(signal.SIGTERM, lambda *_: note("term", os.getpid()))
    note("grandchild", os.getpid())
else:
    signal.signal(signal.SIGTERM, lambda *_: (note("term", os.getpid()), os._exit(0)))
    note("start", os.getpid())
while True:
    signal.pause()
"""


async def family_restarted(tmp_path: Path, **settings: Any) -> tuple[Record, int, int]:
    """Start the family as a job, restart it by a change; return the record, the first
    leader and its grandchild, once the second family has started."""
    src = tmp_path / "src"
    src.mkdir()
    record = Record(tmp_path / "record")
    definition = {
        "command": [sys.executable, "-c", FAMILY, str(record.path)],
        "watch": {"paths": [str(src)]},
        **settings,
    }
    async with daemon_running(tmp_path, {"web": definition}):
        await async_wait_until(lambda: len(record.events("grandchild")) == 1, "a grandchild")
        (leader,) = await starts(record, 1)
        (grandchild,) = (int(row[1]) for row in record.events("grandchild"))
        (src / "x.py").write_text("change")
        await starts(record, 2)
        assert not alive(leader) and not alive(grandchild)
        await async_wait_until(lambda: len(record.events("grandchild")) == 2, "a new grandchild")
    return record, leader, grandchild


def test_by_default_every_process_of_the_job_gets_the_stop_signal(tmp_path: Path) -> None:
    async def scenario() -> None:
        record, leader, grandchild = await family_restarted(tmp_path, stop_timeout="1s")
        termed = [int(row[1]) for row in record.events("term")]
        assert leader in termed and grandchild in termed

    asyncio.run(scenario())


def test_in_mixed_kill_mode_only_the_child_gets_it_and_what_it_leaves_is_killed(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        # Were the grandchild left to its stop_timeout, the restart would wait a minute.
        record, leader, grandchild = await family_restarted(
            tmp_path, kill_mode="mixed", stop_timeout="60s"
        )
        termed = [int(row[1]) for row in record.events("term")]
        assert leader in termed and grandchild not in termed

    asyncio.run(scenario())


def test_poll_backend_sees_create_modify_delete(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text("1")
    record = Record(tmp_path / "record")
    definition = job(
        record.path, src, watch={"backend": "poll", "poll_interval": "100ms"}, debounce="10ms"
    )

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": definition}) as daemon:
            assert daemon.runners["web"].backend == "poll"
            await starts(record, 1)
            (src / "b.py").write_text("new")
            await starts(record, 2)
            (src / "a.py").write_text("changed size")
            await starts(record, 3)
            (src / "b.py").unlink()
            await starts(record, 4)

    asyncio.run(scenario())


def test_path_missing_at_start_is_picked_up_when_it_appears(tmp_path: Path) -> None:
    later = tmp_path / "not" / "yet"
    record = Record(tmp_path / "record")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, later)}):
            await starts(record, 1)
            later.mkdir(parents=True)
            (later / "config.py").write_text("x")
            await starts(record, 2)

    asyncio.run(scenario())


def test_shutdown_stops_every_job_in_parallel(tmp_path: Path) -> None:
    records = [Record(tmp_path / f"record{i}") for i in range(3)]
    jobs = {
        f"job{i}": job(r.path, None, "--ignore-term", stop_timeout="2s")
        for i, r in enumerate(records)
    }

    async def scenario() -> float:
        async with daemon_running(tmp_path, jobs):
            for r in records:
                await starts(r, 1)
            began = time.monotonic()
        return time.monotonic() - began

    elapsed = asyncio.run(scenario())
    assert all(not alive(r.starts()[0]) for r in records)
    # Three 2 s timeouts in parallel (about 2 s), not in a row (6 s).
    assert elapsed < 5, elapsed


def test_signal_on_change_reaches_the_running_child(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    record = Record(tmp_path / "record")

    async def scenario() -> None:
        definition = job(record.path, src, on_change="signal SIGHUP")
        async with daemon_running(tmp_path, {"web": definition}) as daemon:
            (pid,) = await starts(record, 1)
            (src / "settings.ini").write_text("x")
            await async_wait_until(lambda: record.events("signal"), "the signal to arrive")
            assert record.events("signal")[0][1:3] == [str(pid), "SIGHUP"]
            assert record.starts() == [pid]
            assert status_of(daemon, "web").pid == pid

    asyncio.run(scenario())


def test_before_restart_gates_the_restart(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = tmp_path / "src"
    src.mkdir()
    record = Record(tmp_path / "record")
    built = tmp_path / "built"
    # The build fails while src/broken exists, and leaves a mark when it succeeds.
    build = f"test ! -e {src}/broken && echo built >> {built}"
    definition = job(record.path, src, before_restart=["/bin/sh", "-c", build])

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": definition}):
            (first,) = await starts(record, 1)
            (src / "broken").write_text("x")
            await async_wait_until(
                lambda: "before_restart failed" in caplog.text, "the failed build to be logged"
            )
            assert record.starts() == [first] and alive(first)
            assert not built.exists()
            (src / "broken").unlink()
            second = (await starts(record, 2))[1]
            assert built.read_text() == "built\n"
            assert not alive(first) and second != first

    asyncio.run(scenario())


def test_user_runs_the_child_as_that_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch users")
    with tempfile.TemporaryDirectory(prefix="wd-user") as shared:
        os.chmod(shared, 0o777)  # pytest's own tmp dirs are private to root
        out = Path(shared) / "ids"
        command = ["/bin/sh", "-c", f"id -un > {out}; exec sleep 600"]

        async def scenario() -> None:
            async with daemon_running(tmp_path, {"web": {"command": command, "user": "nobody"}}):
                await async_wait_until(lambda: out.exists() and out.read_text(), "the child")
                assert out.read_text() == "nobody\n"

        asyncio.run(scenario())


def test_stopping_during_before_restart_stops_the_step(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    record = Record(tmp_path / "record")
    step_pid = tmp_path / "step.pid"
    definition = job(
        record.path, src, before_restart=["/bin/sh", "-c", f"echo $$ > {step_pid}; exec sleep 600"]
    )

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": definition}):
            await starts(record, 1)
            (src / "x.py").write_text("change")
            await async_wait_until(lambda: step_pid.exists() and step_pid.read_text(), "the step")
            assert alive(int(step_pid.read_text()))

    asyncio.run(scenario())
    assert not alive(int(step_pid.read_text())), "before_restart outlived watchd"
