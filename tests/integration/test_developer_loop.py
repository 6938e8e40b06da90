"""A developer's day, with the real programs: editors, git, pytest, a symlink deploy, holds.

Each test shows that a job restarts exactly as often as the user expects: after the noise,
one sentinel change must be the only restart (and the last trigger).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import REPO, Record, child_command
from tests.helpers.wait import async_wait_until
from tests.integration.conftest import daemon_running
from watchd.daemon import Daemon

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def needs(program: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(shutil.which(program) is None, reason=f"{program} not installed")


def job(record: Path, *paths: Path, **settings: Any) -> dict[str, Any]:
    watch = {"paths": [str(path) for path in paths], **settings.pop("watch", {})}
    return {"command": child_command(record), "watch": watch, **settings}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


async def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A real program, off the loop (the daemon under test runs on it)."""
    return await asyncio.to_thread(
        subprocess.run, list(argv), cwd=cwd, capture_output=True, text=True, timeout=120
    )


async def restarts_only_for(daemon: Daemon, record: Record, sentinel: Path, before: int) -> None:
    """*sentinel* is written; it must be the one restart after *before* starts."""
    sentinel.write_text("sentinel\n")
    await async_wait_until(lambda: len(record.starts()) >= before + 1, "the sentinel's restart")
    runner = daemon.runners["web"]
    await async_wait_until(lambda: runner.job.settled, "the job to settle")
    trigger = runner.job.last_trigger
    assert trigger is not None and trigger.detail == str(sentinel), trigger
    assert len(record.starts()) == before + 1, record.events()


async def watchctl(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    socket = str(daemon.config.control.socket)
    command = [sys.executable, "-m", "watchd.ctl", "--socket", socket, *args]
    return await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


# ---- editors and tools ---------------------------------------------------------------


@needs("emacs")
def test_an_emacs_auto_save_does_not_restart(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text("x = 1\n")
    record = Record(tmp_path / "record")
    edit = (
        '(progn (find-file "app.py") (auto-save-mode 1) (goto-char (point-max))'
        ' (insert "y = 2\\n") (do-auto-save t))'
    )

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, src)}) as daemon:
            await async_wait_until(record.starts, "the first start")
            result = await run("emacs", "-Q", "--batch", "--eval", edit, cwd=src)
            assert (src / "#app.py#").exists(), result.stderr
            await restarts_only_for(daemon, record, src / "sentinel.py", 1)

    asyncio.run(scenario())


@needs("vim")
def test_a_vim_save_restarts_once(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text("x = 1\n")
    record = Record(tmp_path / "record")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, src)}) as daemon:
            await async_wait_until(record.starts, "the first start")
            await run(
                "vim", "-Nu", "NONE", "-es", "-c", "normal Gox = 2", "-c", "wq", "app.py", cwd=src
            )
            assert "x = 2" in (src / "app.py").read_text()
            await async_wait_until(lambda: len(record.starts()) >= 2, "the save's restart")
            runner = daemon.runners["web"]
            await async_wait_until(lambda: runner.job.settled, "the job to settle")
            await restarts_only_for(daemon, record, src / "sentinel.py", 2)

    asyncio.run(scenario())


def test_running_pytest_in_the_tree_does_not_restart(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "test_app.py").write_text("def test_one():\n    assert True\n")
    record = Record(tmp_path / "record")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, src)}) as daemon:
            await async_wait_until(record.starts, "the first start")
            result = await run(sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", cwd=src)
            assert result.returncode == 0, result.stdout
            assert (src / ".pytest_cache").is_dir()
            await restarts_only_for(daemon, record, src / "sentinel.py", 1)

    asyncio.run(scenario())


def test_a_jobs_own_output_file_in_its_tree_is_no_change(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    record = Record(tmp_path / "record")
    web = job(record.path, src, output=str(src / "web.log"))
    web["command"] = child_command(record.path, "--print", "serving")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": web}) as daemon:
            await async_wait_until(record.starts, "the first start")
            await async_wait_until(lambda: "serving" in (src / "web.log").read_text(), "output")
            await restarts_only_for(daemon, record, src / "sentinel.py", 1)
            await restarts_only_for(daemon, record, src / "sentinel2.py", 2)

    asyncio.run(scenario())


def test_an_edited_gitignore_is_honoured_at_once(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "logs").mkdir(parents=True)
    record = Record(tmp_path / "record")
    web = job(record.path, src, watch={"gitignore": True})

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": web}) as daemon:
            await async_wait_until(record.starts, "the first start")
            (src / ".gitignore").write_text("*.log\nlogs/\n")  # itself a change
            await async_wait_until(lambda: len(record.starts()) >= 2, "the .gitignore's restart")
            watch = daemon.runners["web"].watch
            await async_wait_until(lambda: watch.reloads >= 1, "the watch to be set up again")
            (src / "server.log").write_text("noise\n")
            (src / "logs" / "today").write_text("noise\n")
            await restarts_only_for(daemon, record, src / "sentinel.py", 2)

    asyncio.run(scenario())


# ---- a symlink deploy ------------------------------------------------------------------


def test_deploying_by_switching_a_symlink_restarts_in_the_new_release(tmp_path: Path) -> None:
    for release in ("v1", "v2"):
        (tmp_path / "releases" / release).mkdir(parents=True)
        (tmp_path / "releases" / release / "app.py").write_text(f"{release}\n")
    current = tmp_path / "current"
    current.symlink_to("releases/v1")
    record = Record(tmp_path / "record")
    web = job(record.path, current, cwd=str(current))

    def cwd_of_child() -> str:
        return os.readlink(f"/proc/{record.starts()[-1]}/cwd")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": web}) as daemon:
            await async_wait_until(record.starts, "the first start")
            assert cwd_of_child() == str((tmp_path / "releases" / "v1").resolve())
            (tmp_path / "next").symlink_to("releases/v2")
            os.rename(tmp_path / "next", current)  # ln -s + mv -T
            await async_wait_until(lambda: len(record.starts()) >= 2, "the switch's restart")
            assert cwd_of_child() == str((tmp_path / "releases" / "v2").resolve())
            runner = daemon.runners["web"]
            await async_wait_until(lambda: runner.job.settled, "the job to settle")
            (tmp_path / "releases" / "v1" / "app.py").write_text("old release\n")
            await restarts_only_for(daemon, record, tmp_path / "releases" / "v2" / "app.py", 2)

    asyncio.run(scenario())


# ---- git ---------------------------------------------------------------------------------


def make_repo(repo: Path, files: int = 20) -> None:
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for number in range(files):
        (repo / f"m{number}.py").write_text(f"m = {number}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")


def ten_commits_on_a_branch(repo: Path) -> None:
    git(repo, "checkout", "-qb", "topic")
    for number in range(10):
        (repo / f"topic{number}.py").write_text(f"t = {number}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"topic {number}")
    git(repo, "checkout", "-q", "main")
    (repo / "main.py").write_text("moved on\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "main moves on")
    git(repo, "checkout", "-q", "topic")


@needs("git")
@pytest.mark.parametrize("step", [0.0, 0.3], ids=["fast", "slower-than-debounce_max"])
def test_a_ten_commit_rebase_restarts_once(tmp_path: Path, step: float) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    ten_commits_on_a_branch(repo)
    record = Record(tmp_path / "record")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, repo)}) as daemon:
            await async_wait_until(record.starts, "the first start")
            command = ["git", "rebase", "-q", "main"]
            if step:
                command += ["--exec", f"sleep {step}"]  # 10 x 0.3 s: past debounce_max
            result = await run(*command, cwd=repo)
            assert result.returncode == 0, result.stderr
            assert (repo / "main.py").exists()
            await async_wait_until(lambda: len(record.starts()) >= 2, "the rebase's restart")
            runner = daemon.runners["web"]
            await async_wait_until(lambda: runner.job.settled, "the job to settle")
            await restarts_only_for(daemon, record, repo / "sentinel.py", 2)

    asyncio.run(scenario())


@needs("git")
def test_a_checkout_under_the_poll_backend_restarts_once(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, files=1500)
    git(repo, "checkout", "-qb", "other")
    for number in range(1500):
        (repo / f"m{number}.py").write_text(f"m = {number} # other\n")
    git(repo, "commit", "-qam", "other")
    git(repo, "checkout", "-q", "main")
    record = Record(tmp_path / "record")
    # vcs off: the poll backend alone must see one operation.
    watch = {"backend": "poll", "poll_interval": "100ms", "vcs": False}

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, repo, watch=watch)}) as d:
            await async_wait_until(record.starts, "the first start")
            result = await run("git", "checkout", "-q", "other", cwd=repo)
            assert result.returncode == 0, result.stderr
            await async_wait_until(lambda: len(record.starts()) >= 2, "the checkout's restart")
            await async_wait_until(lambda: d.runners["web"].job.settled, "the job to settle")
            await restarts_only_for(d, record, repo / "sentinel.py", 2)

    asyncio.run(scenario())


@needs("git")
def test_a_lock_holds_changes_and_a_stale_one_does_not(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, files=1)
    record = Record(tmp_path / "record")
    lock = repo / ".git" / "index.lock"

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, repo)}) as daemon:
            await async_wait_until(record.starts, "the first start")
            lock.write_text("")  # git at work
            (repo / "m0.py").write_text("changed while locked\n")
            runner = daemon.runners["web"]
            await async_wait_until(lambda: runner.watch.held, "the hold")
            (status,) = json.loads((await watchctl(daemon, "status", "--json")).stdout)["jobs"]
            assert (status["held"], status["held_by"]) == (True, str(lock))
            table = (await watchctl(daemon, "status")).stdout
            assert "held by .git/index.lock" in table
            assert len(record.starts()) == 1
            lock.unlink()  # git done: one restart
            await async_wait_until(lambda: len(record.starts()) >= 2, "the restart")
            await async_wait_until(lambda: runner.job.settled, "the job to settle")
            # A lock left behind an hour ago by a crashed git holds nothing.
            lock.write_text("")
            os.utime(lock, (os.path.getmtime(lock) - 3600,) * 2)
            await restarts_only_for(daemon, record, repo / "sentinel.py", 2)
            assert not runner.watch.held

    asyncio.run(scenario())


# ---- watchctl hold / release ----------------------------------------------------------


def test_hold_collects_changes_and_release_acts_once(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    record = Record(tmp_path / "record")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, src)}) as daemon:
            await async_wait_until(record.starts, "the first start")
            held = await watchctl(daemon, "hold", "web")
            assert held.returncode == 0, held.stderr
            assert "held by watchctl" in held.stdout
            (status,) = json.loads((await watchctl(daemon, "status", "--json")).stdout)["jobs"]
            assert (status["held"], status["held_by"], status["state"]) == (
                True,
                "watchctl",
                "running",
            )
            for number in range(5):
                (src / f"deploy{number}.py").write_text("x\n")
            sentinel = src / "last.py"
            sentinel.write_text("x\n")
            runner = daemon.runners["web"]
            await async_wait_until(lambda: runner.watch.pending() >= 6, "the changes to be kept")
            assert len(record.starts()) == 1
            released = await watchctl(daemon, "release")  # no job named: every job
            assert released.returncode == 0, released.stderr
            await async_wait_until(lambda: len(record.starts()) >= 2, "the release's restart")
            await async_wait_until(lambda: runner.job.settled, "the job to settle")
            assert not runner.watch.held
            await restarts_only_for(daemon, record, src / "sentinel.py", 2)

    asyncio.run(scenario())


def test_hold_of_an_unknown_job_exits_4(tmp_path: Path) -> None:
    record = Record(tmp_path / "record")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, tmp_path)}) as daemon:
            for command in ("hold", "release"):
                result = await watchctl(daemon, command, "nope")
                assert result.returncode == 4, result
                assert "web" in result.stderr

    asyncio.run(scenario())
