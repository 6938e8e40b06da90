"""run_with_reloader with real processes: restarts, failures, exit statuses, signals."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.helpers.procs import alive
from tests.reloader.conftest import Launch
from tests.reloader.harness import group_members, write_module


def test_editing_an_imported_module_restarts_the_child(tmp_path: Path, launch_app: Launch) -> None:
    program = launch_app()
    [(first, version)] = program.wait_starts(1)
    assert version == "1"

    write_module(tmp_path / "mod.py", "VERSION = 2\n")

    starts = program.wait_starts(2)
    assert starts[1][1] == "2"
    assert starts[1][0] != first
    program.wait(lambda: not alive(first), "the old child to be gone")
    program.check_running()


def test_one_save_is_one_restart(tmp_path: Path, launch_app: Launch) -> None:
    # A wide quiet window, so a slow machine cannot split the save below in two.
    program = launch_app(DEBOUNCE="0.3")
    program.wait_starts(1)

    # An editor's save: a backup, a write, a rename over the original, a chmod.
    (tmp_path / "mod.py~").write_text("VERSION = 1\n")
    write_module(tmp_path / "mod.py", "VERSION = 2\n")
    (tmp_path / "mod.py").chmod(0o644)
    write_module(tmp_path / "mod.py", "VERSION = 3\n")

    program.wait_starts(2)
    write_module(tmp_path / "mod.py", "VERSION = 4\n")  # a later save is a second restart
    starts = program.wait_starts(3)
    assert [version for _, version in starts] == ["1", "3", "4"]


def test_a_reload_runs_the_childs_atexit_functions(tmp_path: Path, launch_app: Launch) -> None:
    """As with Django's sys.exit(3): what the program registered (a log flushed, coverage
    data written) runs before the next child starts."""
    program = launch_app("atexit")
    [(first, _)] = program.wait_starts(1)

    write_module(tmp_path / "mod.py", "VERSION = 2\n")

    program.wait_starts(2)
    assert program.rows("atexit") == [[str(first)]]


def test_a_module_imported_after_start_is_watched(tmp_path: Path, launch_app: Launch) -> None:
    late = tmp_path / "late.py"
    write_module(late, "VERSION = 1\n")
    program = launch_app("late")
    program.wait_starts(1)
    program.wait(lambda: program.rows("late"), "the late import")
    program.wait_watching(late)

    write_module(late, "VERSION = 2\n")

    program.wait_starts(2)
    program.wait(lambda: ["2"] in program.rows("late"), "the new late module")


@pytest.mark.parametrize("patterns", ["", "*.toml"])
def test_an_extra_file_restarts_the_child(
    tmp_path: Path, launch_app: Launch, patterns: str
) -> None:
    config = tmp_path / "conf" / "settings.toml"
    config.parent.mkdir()
    config.write_text("debug = false\n")
    # A named file, or a directory filtered by patterns.
    extra = str(config if not patterns else config.parent)
    program = launch_app(EXTRA=extra, PATTERNS=patterns)
    program.wait_starts(1)

    if patterns:
        (config.parent / "notes.txt").write_text("not matched\n")
    config.write_text("debug = true\n")

    program.wait_starts(2)
    assert "settings.toml changed" in program.output()


def test_a_syntax_error_keeps_the_parent_waiting_for_the_fix(
    tmp_path: Path, launch_app: Launch
) -> None:
    program = launch_app()
    program.wait_starts(1)

    write_module(tmp_path / "mod.py", "VERSION = (\n")

    program.wait_output("SyntaxError")
    program.wait_output("the program failed (exit status 1)")
    program.check_running()
    assert len(program.starts()) == 1

    write_module(tmp_path / "mod.py", "VERSION = 5\n")

    starts = program.wait_starts(2)
    assert starts[1][1] == "5"


def test_is_serving_child_is_true_in_exactly_one_process(
    tmp_path: Path, launch_app: Launch
) -> None:
    program = launch_app()
    [(child, _)] = program.wait_starts(1)

    processes = {int(pid): serving for pid, serving in program.rows("process")}
    assert processes == {program.pid: "False", child: "True"}
    assert [pid for pid in (program.pid, child) if alive(pid)] == [program.pid, child]


@pytest.mark.parametrize("status", [0, 7])
def test_the_parent_exits_with_mains_exit_status(launch_app: Launch, status: int) -> None:
    program = launch_app(f"exit={status}")
    assert program.exit_status() == status
    assert len(program.starts()) == 1


@pytest.mark.parametrize("status", [0, 1, 7])
def test_the_parent_exits_with_the_status_of_os_exit_in_main(
    launch_app: Launch, status: int
) -> None:
    """As runserver does when its port is taken: ``os._exit(1)`` is a deliberate end."""
    program = launch_app(f"os-exit={status}")
    assert program.exit_status() == status
    assert len(program.starts()) == 1
    assert "waiting for a change" not in program.output()


def test_an_exception_in_main_waits_for_a_change(tmp_path: Path, launch_app: Launch) -> None:
    program = launch_app("raise")
    program.wait_starts(1)
    program.wait_output("RuntimeError: main failed")
    program.wait_output("the program failed (exit status 1)")
    program.check_running()

    write_module(tmp_path / "mod.py", "VERSION = 2\n")

    assert program.wait_starts(2)[1][1] == "2"


def test_sys_exit_3_in_main_restarts_the_child(launch_app: Launch) -> None:
    program = launch_app("restart-once")
    first, second = program.wait_starts(2)[:2]
    assert first[0] != second[0]
    program.check_running()


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_a_stop_signal_to_the_parent_stops_both(
    launch_app: Launch, signum: int, status: int
) -> None:
    program = launch_app()
    [(child, _)] = program.wait_starts(1)

    program.signal(signum)

    assert program.exit_status() == status
    assert not alive(child)
    assert not group_members(program.pid)


def test_a_stop_signal_while_waiting_for_a_fix_ends_the_parent(
    tmp_path: Path, launch_app: Launch
) -> None:
    program = launch_app()
    program.wait_starts(1)
    write_module(tmp_path / "mod.py", "VERSION = (\n")
    program.wait_output("waiting for a change")

    program.signal(signal.SIGTERM)

    assert program.exit_status() == 1  # the failed child's status
    assert not group_members(program.pid)


def test_sigterm_to_the_whole_group_stops_both_cleanly(launch_app: Launch) -> None:
    """How watchd (or a shell's kill -TERM -PGID) stops a job: the child gets the signal
    directly and again from its parent; the second must not spoil the first's exit."""
    program = launch_app()
    [(child, _)] = program.wait_starts(1)

    os.killpg(program.pid, signal.SIGTERM)

    assert program.exit_status() == 0
    assert not alive(child)
    assert "Traceback" not in program.output()


def test_a_deleted_module_reloads_once_it_is_back(tmp_path: Path, launch_app: Launch) -> None:
    """As with Django's StatReloader: a new child could not import a deleted module, so
    its deletion is not a reload; its return is."""
    program = launch_app()
    program.wait_starts(1)

    (tmp_path / "mod.py").unlink()

    program.wait_output(f"{tmp_path / 'mod.py'} was removed; reloading once it is back")
    program.check_running()
    assert len(program.starts()) == 1
    write_module(tmp_path / "mod.py", "VERSION = 2\n")

    assert program.wait_starts(2)[1][1] == "2"
    assert "ModuleNotFoundError" not in program.output()
