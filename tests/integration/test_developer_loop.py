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
from tests.helpers.tty import type_into
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


async def restarts_only_for(
    daemon: Daemon, record: Record, sentinel: Path, before: int, seen_as: Path | None = None
) -> None:
    """*sentinel* is written; it must be the one restart after *before* starts (and the
    trigger names it, or *seen_as*: the path under the watched root as configured)."""
    sentinel.write_text("sentinel\n")
    await async_wait_until(lambda: len(record.starts()) >= before + 1, "the sentinel's restart")
    runner = daemon.runners["web"]
    await async_wait_until(lambda: runner.job.settled, "the job to settle")
    trigger = runner.job.last_trigger
    assert trigger is not None and trigger.detail == str(seen_as or sentinel), trigger
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


# How each editor saves app.py, with the files it leaves or passes through on the way:
# vim's swap file (.app.py.swp), its write probe (4913) and backup (app.py~, kept or not,
# the original renamed away or copied), emacs' lock (.#app.py) and backup by rename, mg's
# backup (app.py~).
VIM = ("vim", "-N", "-u", "NONE", "-i", "NONE", "-n", "-es")
EDITOR_SAVES: dict[str, tuple[str, ...]] = {
    "vim": (*VIM, "-c", "set swapfile writebackup nobackup backupcopy=auto"),
    "vim-backup-by-rename": (*VIM, "-c", "set swapfile backup backupcopy=no"),
    "vim-backup-by-copy": (*VIM, "-c", "set swapfile backup backupcopy=yes"),
    "emacs": ("emacs", "-Q", "--batch"),
    "mg": ("mg",),
}


def save_with(editor: str, directory: Path) -> None:
    """Open app.py in *editor*, add a line, save, quit: as a person would."""
    argv = EDITOR_SAVES[editor]
    if editor.startswith("vim"):
        subprocess.run(
            [*argv, "-c", "normal Gox = 2", "-c", "wq", "app.py"],
            cwd=directory,
            check=True,
            timeout=60,
        )
    elif editor == "emacs":
        edit = (
            '(progn (find-file "app.py") (goto-char (point-max)) (insert "x = 2\\n") (save-buffer))'
        )
        subprocess.run([*argv, "--eval", edit], cwd=directory, check=True, timeout=60)
    else:  # mg has no batch mode that runs without a terminal: type into it on one
        type_into(
            [*argv, "app.py"],
            directory,
            [
                (b"", b"app.py"),
                (b"\x1b>x = 2\r", b"x = 2"),
                (b"\x18\x13", b"Wrote"),
                (b"\x18\x03", b""),
            ],
        )


@pytest.mark.parametrize("editor", list(EDITOR_SAVES))
def test_an_editor_save_restarts_once(tmp_path: Path, editor: str) -> None:
    if shutil.which(EDITOR_SAVES[editor][0]) is None:
        pytest.skip(f"{EDITOR_SAVES[editor][0]} not installed")
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text("x = 1\n")
    record = Record(tmp_path / "record")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, src)}) as daemon:
            await async_wait_until(record.starts, "the first start")
            await asyncio.to_thread(save_with, editor, src)
            assert "x = 2" in (src / "app.py").read_text()
            await async_wait_until(lambda: len(record.starts()) >= 2, "the save's restart")
            runner = daemon.runners["web"]
            await async_wait_until(lambda: runner.job.settled, "the job to settle")
            trigger = runner.job.last_trigger
            assert trigger is not None and trigger.detail == str(src / "app.py"), trigger
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


@needs("rsync")
def test_an_rsync_of_a_release_restarts_once(tmp_path: Path) -> None:
    release, src = tmp_path / "release", tmp_path / "src"
    for number in range(300):
        package = release / f"pkg{number // 30}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"m{number}.py").write_text(f"m = {number}\n")
    src.mkdir()
    record = Record(tmp_path / "record")
    # rsync writes each file as .NAME.XXXXXX, then renames it into place. The debounce is
    # raised from 100 ms for a loaded machine: rsync must not pause that long between files.
    web = job(record.path, src, debounce="1s", debounce_max="30s")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": web}) as daemon:
            await async_wait_until(record.starts, "the first start")
            result = await run("rsync", "-a", "--delete", f"{release}/", f"{src}/", cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            await async_wait_until(lambda: len(record.starts()) >= 2, "the rsync's restart")
            runner = daemon.runners["web"]
            await async_wait_until(lambda: runner.job.settled, "the job to settle")
            trigger = runner.job.last_trigger
            assert trigger is not None, trigger
            # Named after a file rsync put in place, not one of its temporary names.
            last = Path(trigger.detail.split(" and ")[0])
            assert last.exists() and last.is_relative_to(src), trigger
            # The same rsync again copies nothing: no restart.
            again = await run("rsync", "-a", "--delete", f"{release}/", f"{src}/", cwd=tmp_path)
            assert again.returncode == 0, again.stderr
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
            new_app = tmp_path / "releases" / "v2" / "app.py"
            await restarts_only_for(daemon, record, new_app, 2, seen_as=current / "app.py")

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


# The child first notes what it finds in the repository: HEAD, and how many of git's
# operation-in-progress markers exist. A restart after the operation sees its final HEAD
# and none.
SEE_REPO = (
    'echo "$(git rev-parse HEAD)'
    ' $(ls -d .git/index.lock .git/rebase-merge .git/rebase-apply 2>/dev/null | wc -l)"'
    ' >> "$0" && exec "$@"'
)


def repo_job(record: Path, seen: Path, repo: Path, **watch: Any) -> dict[str, Any]:
    web = job(record, repo, cwd=str(repo), watch=watch)
    web["command"] = ["sh", "-c", SEE_REPO, str(seen), *web["command"]]
    return web


def seen_by_children(seen: Path) -> list[tuple[str, int]]:
    lines = seen.read_text().splitlines() if seen.exists() else []
    return [(head, int(markers)) for head, markers in (line.split() for line in lines)]


async def restarted_once_after(
    daemon: Daemon, record: Record, seen: Path, repo: Path, result: Any
) -> None:
    """The operation has ended (*result*): one restart, which saw its outcome, and the
    sentinel's restart next."""
    assert result.returncode == 0, result.stderr
    head = git(repo, "rev-parse", "HEAD").strip()
    await async_wait_until(lambda: len(record.starts()) >= 2, "the operation's restart")
    runner = daemon.runners["web"]
    await async_wait_until(lambda: runner.job.settled, "the job to settle")
    await restarts_only_for(daemon, record, repo / "sentinel.py", 2)
    first, after_operation, _ = seen_by_children(seen)
    assert first[0] != head
    assert after_operation == (head, 0), (seen_by_children(seen), head)


@needs("git")
@pytest.mark.parametrize("step", [0.0, 0.3], ids=["fast", "slower-than-debounce_max"])
def test_a_ten_commit_rebase_restarts_once_after_it(tmp_path: Path, step: float) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    ten_commits_on_a_branch(repo)
    record, seen = Record(tmp_path / "record"), tmp_path / "seen"

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": repo_job(record.path, seen, repo)}) as d:
            await async_wait_until(record.starts, "the first start")
            command = ["git", "rebase", "-q", "main"]
            if step:
                command += ["--exec", f"sleep {step}"]  # 10 x 0.3 s: past debounce_max
            result = await run(*command, cwd=repo)
            assert (repo / "main.py").exists()
            await restarted_once_after(d, record, seen, repo, result)

    asyncio.run(scenario())


def two_branches(repo: Path, files: int) -> None:
    """*repo* on ``main``; ``other`` changes every one of its *files* files."""
    make_repo(repo, files)
    git(repo, "checkout", "-qb", "other")
    for number in range(files):
        (repo / f"m{number}.py").write_text(f"m = {number} # other\n")
    git(repo, "commit", "-qam", "other")
    git(repo, "checkout", "-q", "main")


@needs("git")
def test_a_checkout_restarts_once_after_it(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    two_branches(repo, 1000)
    record, seen = Record(tmp_path / "record"), tmp_path / "seen"

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": repo_job(record.path, seen, repo)}) as d:
            await async_wait_until(record.starts, "the first start")
            result = await run("git", "checkout", "-q", "other", cwd=repo)
            await restarted_once_after(d, record, seen, repo, result)

    asyncio.run(scenario())


@needs("git")
def test_a_checkout_under_the_poll_backend_restarts_once(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    two_branches(repo, 1000)
    record, seen = Record(tmp_path / "record"), tmp_path / "seen"
    # vcs off: the poll backend alone must see one operation (scans 1 s apart, the
    # debounce 100 ms, as in the default config; the batch waits for a scan that finds
    # nothing new, at most debounce_max: long enough here for a loaded machine).
    web = repo_job(record.path, seen, repo, backend="poll", vcs=False)
    web["debounce_max"] = "30s"

    async def scenario() -> None:
        jobs = {"web": web}
        async with daemon_running(tmp_path, jobs) as d:
            await async_wait_until(record.starts, "the first start")
            result = await run("git", "checkout", "-q", "other", cwd=repo)
            await restarted_once_after(d, record, seen, repo, result)

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


# ---- Mercurial ---------------------------------------------------------------------------

HG_ENV = {"HGUSER": "t", "HGRCPATH": "/dev/null", "HGPLAIN": "1"}


def hg(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["hg", *args],
        cwd=repo,
        env={**os.environ, **HG_ENV},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


def hg_two_revisions(repo: Path, files: int) -> None:
    """*repo* at revision 1; revision 0 has a different content in every one of its files."""
    repo.mkdir()
    hg(repo, "init", "-q")
    for text in ("base", "next"):
        for number in range(files):
            (repo / f"m{number}.py").write_text(f"m = {number} # {text}\n")
        hg(repo, "commit", "-qAm", text)


# As SEE_REPO, for Mercurial: the working directory's revision, and whether its wlock exists.
SEE_HG = (
    'echo "$(HGRCPATH=/dev/null HGPLAIN=1 hg log -r . -T "{node}")'
    ' $(ls -d .hg/wlock 2>/dev/null | wc -l)" >> "$0" && exec "$@"'
)


def hg_job(record: Path, seen: Path, repo: Path, **settings: Any) -> dict[str, Any]:
    web = job(record, repo, cwd=str(repo), **settings)
    web["command"] = ["sh", "-c", SEE_HG, str(seen), *web["command"]]
    return web


@needs("hg")
def test_an_hg_update_restarts_once_after_it(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    hg_two_revisions(repo, 5000)
    record, seen = Record(tmp_path / "record"), tmp_path / "seen"
    # 5,000 files and a cap far below the update's length: only the wlock's hold keeps it
    # to one restart.
    web = hg_job(record.path, seen, repo, debounce="20ms", debounce_max="50ms")

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": web}) as d:
            await async_wait_until(record.starts, "the first start")
            result = await run(
                "env",
                *(f"{k}={v}" for k, v in HG_ENV.items()),
                "hg",
                "update",
                "-q",
                "0",
                cwd=repo,
            )
            assert result.returncode == 0, result.stderr
            target = hg(repo, "log", "-r", ".", "-T", "{node}")
            await async_wait_until(lambda: len(record.starts()) >= 2, "the update's restart")
            runner = d.runners["web"]
            await async_wait_until(lambda: runner.job.settled, "the job to settle")
            await restarts_only_for(d, record, repo / "sentinel.py", 2)
            states = seen_by_children(seen)
            assert len(states) == 3, states  # the first start, the update's, the sentinel's
            first, after_update, _ = states
            assert first[0] != target
            assert after_update == (target, 0), (seen_by_children(seen), target)

    asyncio.run(scenario())


@needs("hg")
def test_an_hg_command_holding_the_wlock_holds_changes_until_it_ends(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    hg_two_revisions(repo, 2)
    record = Record(tmp_path / "record")
    lock = repo / ".hg" / "wlock"

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, repo)}) as daemon:
            await async_wait_until(record.starts, "the first start")
            # Takes the working directory's lock and keeps it until told to let go.
            holder = await asyncio.create_subprocess_exec(
                *("hg", "--config", "ui.interactive=true", "debuglocks", "--set-wlock"),
                cwd=repo,
                env={**os.environ, **HG_ENV},
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            try:
                await async_wait_until(lambda: os.path.lexists(lock), "hg to take its wlock")
                (repo / "m0.py").write_text("changed while hg works\n")
                runner = daemon.runners["web"]
                await async_wait_until(lambda: runner.watch.held, "the hold")
                (status,) = json.loads((await watchctl(daemon, "status", "--json")).stdout)["jobs"]
                assert (status["held"], status["held_by"]) == (True, str(lock))
                assert "held by .hg/wlock" in (await watchctl(daemon, "status")).stdout
                (repo / "m1.py").write_text("and this\n")
                await async_wait_until(lambda: runner.watch.pending() >= 2, "both kept")
                assert len(record.starts()) == 1
                assert holder.stdin is not None
                holder.stdin.write(b"y\n")  # hg lets go of its lock, and ends
                await holder.stdin.drain()
                # Its exit status is not ours to see: the daemon in this process reaps
                # every child. Its letting go is: the lock is gone.
                said, _ = await asyncio.wait_for(holder.communicate(), 60)
                assert b"release the lock" in said, said
            finally:
                if holder.returncode is None:
                    holder.kill()
                    await holder.wait()
            assert not os.path.lexists(lock)
            await async_wait_until(lambda: len(record.starts()) >= 2, "the restart")
            await async_wait_until(lambda: runner.job.settled, "the job to settle")
            assert not runner.watch.held
            await restarts_only_for(daemon, record, repo / "sentinel.py", 2)

    asyncio.run(scenario())


@needs("hg")
def test_an_hg_wlock_left_by_a_crashed_hg_holds_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    hg_two_revisions(repo, 1)
    record = Record(tmp_path / "record")
    lock = repo / ".hg" / "wlock"

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": job(record.path, repo)}) as daemon:
            await async_wait_until(record.starts, "the first start")
            # What a killed hg leaves: its lock, a symlink naming its host and pid, an hour old.
            os.symlink("gone.example:4194304", lock)
            an_hour_ago = os.lstat(lock).st_mtime - 3600
            os.utime(lock, (an_hour_ago, an_hour_ago), follow_symlinks=False)
            await restarts_only_for(daemon, record, repo / "sentinel.py", 1)
            assert not daemon.runners["web"].watch.held

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
