"""A tree that outgrows the kernel's inotify watch limit after start moves its job to
polling, on the real kernel.

The limit is the real one, lowered for watchd alone: watchd runs in a user namespace of
its own, where ``/proc/sys/user/max_inotify_watches`` caps the watches of that namespace
(the kernel charges them there and to every namespace above it). Lowering
``fs.inotify.max_user_watches`` instead would starve everything else on the machine.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.daemon import Record, child_command, running_daemon
from tests.helpers.wait import wait_until

LIMIT = 40  # watches for the whole daemon: its config directory's and its jobs'

# unshare's new user namespace maps our user to root in it (the same uid outside), so the
# control socket's peer checks see the same user on both sides.
IN_ITS_OWN_NAMESPACE = (
    "unshare",
    "--user",
    "--map-root-user",
    "sh",
    "-c",
    'echo "$0" > /proc/sys/user/max_inotify_watches && exec "$@"',
    str(LIMIT),
)


def _why_not() -> str | None:
    try:
        probe = subprocess.run(
            [*IN_ITS_OWN_NAMESPACE, "cat", "/proc/sys/user/max_inotify_watches"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except FileNotFoundError:
        return "unshare is not installed"
    if probe.returncode != 0 or probe.stdout.strip() != str(LIMIT):
        return f"no user namespace with its own inotify limit here: {probe.stderr.strip()}"
    return None


def _waited(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    try:
        wait_until(predicate, "", timeout)
    except AssertionError:
        return False
    return True


def test_a_tree_that_outgrows_the_watch_limit_moves_its_job_to_polling(tmp_path: Path) -> None:
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    tree, small = tmp_path / "tree", tmp_path / "small"
    for index in range(10):
        (tree / f"d{index}").mkdir(parents=True)
    small.mkdir()
    web, other = Record(tmp_path / "web"), Record(tmp_path / "other")
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs(
            "jobs.yaml",
            {
                "web": {"command": child_command(web.path), "watch": {"paths": [str(tree)]}},
                "other": {"command": child_command(other.path), "watch": {"paths": [str(small)]}},
            },
        )
        daemon.start(prefix=IN_ITS_OWN_NAMESPACE)
        web.wait_starts(1)
        other.wait_starts(1)
        assert daemon.job("web")["backend"] == "inotify"
        # A clone or an install lands in the tree: more directories than the limit allows.
        for index in range(2 * LIMIT):
            (tree / "grown" / f"g{index:03d}" / "sub").mkdir(parents=True)
        daemon.wait_log(f"polling {tree} instead")
        assert "inotify watch limit reached while watching" in daemon.log()
        assert "fs.inotify.max_user_watches" in daemon.log()
        wait_until(
            lambda: daemon.job("web")["backend"] == "poll (inotify watch limit reached)",
            "the job's status to show the fallback",
        )
        web.wait_starts(2)  # the growth itself was a change
        # Every directory is covered now, not only the 40 inotify could watch: the root, 10,
        # grown/ and 2 x 80 below it.
        wait_until(lambda: daemon.job("web")["watched_paths"] == 1 + 10 + 1 + 4 * LIMIT, "poll")
        # A file where inotify could never have watched: the poll sees it. (Written again
        # until a restart names it alone: the first write may land in the growth's batch.)
        deep = tree / "grown" / f"g{2 * LIMIT - 1:03d}" / "sub" / "app.py"

        def restarted_for_deep() -> bool:
            deep.write_text(f"{len(web.starts())}\n")
            return _waited(lambda: daemon.job("web")["last_trigger"]["detail"] == str(deep))

        wait_until(restarted_for_deep, "a restart for a file in a directory past the limit")
        assert daemon.job("web")["state"] == "running"
        # The other job was not touched: still inotify, never restarted.
        assert daemon.job("other")["backend"] == "inotify"
        (small / "app.py").write_text("x\n")
        other.wait_starts(2)
        assert "Traceback" not in daemon.log()
