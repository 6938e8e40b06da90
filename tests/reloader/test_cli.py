"""``python -m watchd.reloader``: MODULE:FUNCTION mode, ``-- command`` mode, a real Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from tests.helpers.procs import alive
from tests.helpers.wait import wait_until
from tests.reloader.harness import COMMAND, Program, group_members, write_module

ENTRY = """\
import os
import signal
import sys

import helper


def main():
    with open(os.environ["RECORD"], "a") as out:
        out.write(f"start {os.getpid()} {helper.VERSION} {' '.join(sys.argv[1:])}\\n")
    if "--exit" in sys.argv:
        return int(sys.argv[-1])
    if "--os-exit" in sys.argv:
        os._exit(int(sys.argv[-1]))
    while True:
        signal.pause()
"""


@pytest.fixture
def entry_point(tmp_path: Path) -> Path:
    (tmp_path / "service.py").write_text(ENTRY)
    write_module(tmp_path / "helper.py", "VERSION = 1\n")
    return tmp_path


@pytest.fixture
def command_dir(tmp_path: Path) -> Path:
    (tmp_path / "cmd.py").write_text(COMMAND)
    (tmp_path / "version").write_text("1\n")
    (tmp_path / "src").mkdir()
    return tmp_path


def test_entry_point_runs_with_arguments_and_reloads(
    entry_point: Path, programs: list[Program]
) -> None:
    program = Program.reloader(entry_point, "service:main", "--port", "8000")
    programs.append(program)
    program.wait_starts(1)
    assert program.rows("start")[0][1:] == ["1", "--port", "8000"]

    write_module(entry_point / "helper.py", "VERSION = 2\n")

    program.wait_starts(2)
    assert program.rows("start")[1][1:] == ["2", "--port", "8000"]


def test_entry_point_return_value_is_the_exit_status(
    entry_point: Path, programs: list[Program]
) -> None:
    program = Program.reloader(entry_point, "service:main", "--exit", "4")
    programs.append(program)
    assert program.exit_status() == 4


def test_entry_point_os_exit_is_the_exit_status(entry_point: Path, programs: list[Program]) -> None:
    program = Program.reloader(entry_point, "service:main", "--os-exit", "6")
    programs.append(program)
    assert program.exit_status() == 6
    assert "waiting for a change" not in program.output()


def test_entry_point_that_fails_to_import_is_retried_after_the_fix(
    entry_point: Path, programs: list[Program]
) -> None:
    program = Program.reloader(entry_point, "service:main")
    programs.append(program)
    program.wait_starts(1)

    write_module(entry_point / "service.py", ENTRY + "\nthis is not python\n")

    program.wait_output(f"waiting for a change to {entry_point / 'service.py'}")
    program.check_running()
    write_module(entry_point / "service.py", ENTRY)
    program.wait_starts(2)


def test_a_missing_module_is_a_usage_error(tmp_path: Path, programs: list[Program]) -> None:
    program = Program.reloader(tmp_path, "no_such_module:main")
    programs.append(program)
    assert program.exit_status() == 2
    assert "no module named 'no_such_module'" in program.output()


def test_command_is_restarted_when_a_watched_file_changes(
    command_dir: Path, programs: list[Program]
) -> None:
    program = Program.reloader(command_dir, "--watch", "src", "--", sys.executable, "cmd.py")
    programs.append(program)
    [(first, _)] = program.wait_starts(1)

    (command_dir / "version").write_text("2\n")  # not watched
    (command_dir / "src" / "app.js").write_text("changed\n")

    starts = program.wait_starts(2)
    assert starts[1][1] == "2"
    assert not alive(first)
    assert "app.js changed, restarting" in program.output()


def test_command_exiting_3_is_restarted_at_once(command_dir: Path, programs: list[Program]) -> None:
    program = Program.reloader(command_dir, "-w", "src", "--", sys.executable, "cmd.py", "3")
    programs.append(program)
    program.wait_starts(2)
    program.check_running()


def test_command_that_ends_runs_again_after_a_change(
    command_dir: Path, programs: list[Program]
) -> None:
    program = Program.reloader(command_dir, "-w", "src", "--", sys.executable, "cmd.py", "0")
    programs.append(program)
    program.wait_starts(1)
    program.wait_output("exited with status 0; waiting for a change")

    (command_dir / "src" / "main.c").write_text("int main;\n")

    program.wait_starts(2)


def test_command_watches_the_working_directory_by_default(
    command_dir: Path, programs: list[Program]
) -> None:
    program = Program.reloader(command_dir, "--include", "*.txt", "--", sys.executable, "cmd.py")
    programs.append(program)
    program.wait_starts(1)

    (command_dir / "ignored.md").write_text("not included\n")
    (command_dir / "src" / "notes.txt").write_text("included\n")

    program.wait_starts(2)
    assert "notes.txt changed" in program.output()
    assert "ignored.md" not in program.output()


def test_sigterm_stops_the_command_and_the_parent(
    command_dir: Path, programs: list[Program]
) -> None:
    program = Program.reloader(command_dir, "-w", "src", "--", sys.executable, "cmd.py")
    programs.append(program)
    [(child, _)] = program.wait_starts(1)

    program.signal(signal.SIGTERM)

    assert program.exit_status() == 143
    assert not alive(child)
    assert not group_members(program.pid)


def test_a_command_that_cannot_run(command_dir: Path, programs: list[Program]) -> None:
    program = Program.reloader(command_dir, "--", "./no-such-command")
    programs.append(program)
    assert program.exit_status() == 127
    assert "cannot run ./no-such-command" in program.output()


INTERRUPTED = """\
import os
import signal
import sys
import time

from watchd.reloader import run_with_reloader


def record(*words):
    with open(os.environ["RECORD"], "a") as out:
        out.write(" ".join(str(word) for word in words) + "\\n")


def main():
    interrupts = []

    def on_interrupt(signum, frame):
        record("sigint", os.getpid())
        interrupts.append(signum)

    signal.signal(signal.SIGINT, on_interrupt)
    record("start", os.getpid(), 1)
    while not interrupts:
        signal.pause()
    sys.exit(130)


run_with_reloader(main)
"""


# A child outside the terminal's process group: every SIGINT it gets is one its parent sent.
BEHIND_THE_PARENT = """\
import os
import signal
import time

from watchd.reloader import run_with_reloader


def main():
    os.setpgid(0, 0)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    with open(os.environ["RECORD"], "a") as out:
        out.write(f"start {os.getpid()} 1\\n")
    while signal.SIGINT not in signal.sigpending():
        time.sleep(0.005)
    with open(os.environ["RECORD"], "a") as out:
        out.write(f"passed-on {os.getpid()}\\n")
    os._exit(130)


run_with_reloader(main)
"""


def test_a_ctrl_c_the_child_got_itself_is_not_passed_on(
    tmp_path: Path, programs: list[Program]
) -> None:
    """Only the parent is in the terminal's group here, so the child can only learn of the
    Ctrl-C from its parent: which must not send it (the child had its own), and instead
    kills the child when the stop timeout is up."""
    (tmp_path / "app.py").write_text(BEHIND_THE_PARENT)
    master, slave = os.openpty()
    try:
        program = Program(tmp_path, ["setsid", "--ctty", sys.executable, "app.py"], stdin=slave)
        programs.append(program)
        [(child, _)] = program.wait_starts(1)
        wait_until(lambda: os.getpgid(child) == child, "the child in a group of its own")

        os.write(master, b"\x03")

        assert program.exit_status(timeout=60) == 128 + signal.SIGKILL  # the child's fate
        assert program.rows("passed-on") == []
        assert not alive(child)
    finally:
        os.close(slave)
        os.close(master)


def test_ctrl_c_at_a_terminal_stops_both_once(tmp_path: Path, programs: list[Program]) -> None:
    """The terminal sends SIGINT to the whole foreground group, child included; the parent
    must not send the child a second one."""
    (tmp_path / "app.py").write_text(INTERRUPTED)
    master, slave = os.openpty()
    try:
        program = Program(tmp_path, ["setsid", "--ctty", sys.executable, "app.py"], stdin=slave)
        programs.append(program)
        [(child, _)] = program.wait_starts(1)

        os.write(master, b"\x03")

        assert program.exit_status() == 130
        assert program.rows("sigint") == [[str(child)]]
        assert not alive(child)
    finally:
        os.close(slave)
        os.close(master)
