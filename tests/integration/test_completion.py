"""Shell completion of watchctl and watchd, loaded into real bash, zsh and fish: the
commands and options of the programs' own parsers, and the job names of a running daemon."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.daemon import REPO, Daemon, Record, child_command, running_daemon
from tests.helpers.tty import Terminal
from watchd import cli, ctl

JOBS = ("db", "web", "worker")
# watchctl as the shells find it: the one installed beside this Python (the venv's).
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
ENV.pop("WATCHD_SOCKET", None)


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("completion")
    subprocess.run(
        [sys.executable, str(REPO / "packaging" / "completions.py"), str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path) as running:
        running.write_jobs(
            "jobs.yaml", {name: {"command": child_command(tmp_path / name)} for name in JOBS}
        )
        running.start()
        for name in JOBS:
            Record(tmp_path / name).wait_starts(1)
        yield running


def bash_complete(scripts: Path, *words: str, env: dict[str, str] = ENV) -> list[str]:
    """What bash offers for the command line *words* (the last one being completed)."""
    program = f"""
        source {shlex.quote(str(scripts / "bash" / words[0]))}
        COMP_WORDS=({" ".join(shlex.quote(word) for word in words)})
        COMP_CWORD={len(words) - 1}
        $(complete -p {words[0]} | sed 's/^complete -F \\([^ ]*\\) .*/\\1/')
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, ""), result
    return [line for line in result.stdout.splitlines() if line]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def options(parser: argparse.ArgumentParser) -> list[str]:
    return [
        name
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for name in action.option_strings
    ]


@pytest.mark.parametrize(
    ("prog", "parser"), [("watchctl", ctl.build_parser()), ("watchd", cli.build_parser())]
)
def test_bash_offers_every_command_and_option_the_parser_has(
    scripts: Path, prog: str, parser: argparse.ArgumentParser
) -> None:
    commands = subcommands(parser)
    assert bash_complete(scripts, prog, "") == list(commands)
    assert bash_complete(scripts, prog, "-") == options(parser)
    for name, sub in commands.items():
        assert bash_complete(scripts, prog, name, "-") == options(sub), name


def test_bash_completes_the_running_daemons_job_names(scripts: Path, daemon: Daemon) -> None:
    sock = str(daemon.socket)
    assert bash_complete(scripts, "watchctl", "st") == ["status", "start", "stop"]
    assert bash_complete(scripts, "watchctl", "--socket", sock, "restart", "") == list(JOBS)
    assert bash_complete(scripts, "watchctl", "-s", sock, "logs", "-f", "w") == ["web", "worker"]
    assert bash_complete(scripts, "watchctl", "-s", sock, "logs", "web", "wo") == ["worker"]
    assert bash_complete(scripts, "watchctl", "--color", "always", "-s", sock, "stop", "d") == [
        "db"
    ]
    # --socket=PATH, as bash splits it ("--socket" "=" PATH), and whole (without "=" in
    # COMP_WORDBREAKS).
    assert bash_complete(scripts, "watchctl", "--socket", "=", sock, "stop", "w") == [
        "web",
        "worker",
    ]
    assert bash_complete(scripts, "watchctl", f"--socket={sock}", "stop", "w") == ["web", "worker"]
    assert bash_complete(scripts, "watchctl", "--color", "=", "") == ["auto", "always", "never"]
    from_env = {**ENV, "WATCHD_SOCKET": sock}
    assert bash_complete(scripts, "watchctl", "events", "", env=from_env) == list(JOBS)
    # Option values: choices, files, or nothing to offer.
    assert bash_complete(scripts, "watchctl", "--color", "") == ["auto", "always", "never"]
    assert bash_complete(scripts, "watchctl", "-s", sock, "logs", "-n", "") == []
    assert bash_complete(scripts, "watchctl", "reload", "") == []  # takes no job


def test_bash_offers_no_job_names_and_says_nothing_when_no_daemon_answers(
    scripts: Path, tmp_path: Path
) -> None:
    missing = str(tmp_path / "none.sock")
    assert bash_complete(scripts, "watchctl", "--socket", missing, "restart", "") == []
    # A daemon that accepts and never answers: completion gives up on it within a second
    # (the subprocess's 30 s timeout fails this test if it waited as watchctl does, 60 s).
    with socket.socket(socket.AF_UNIX) as hung:
        hung.bind(str(tmp_path / "hung.sock"))
        hung.listen()
        assert (
            bash_complete(scripts, "watchctl", "-s", str(tmp_path / "hung.sock"), "stop", "") == []
        )


def test_bash_completes_files_after_the_options_that_take_one(
    scripts: Path, tmp_path: Path
) -> None:
    (tmp_path / "watchd.yaml").touch()
    prefix = str(tmp_path / "watchd.y")
    assert bash_complete(scripts, "watchd", "check", "-c", prefix) == [prefix + "aml"]
    assert bash_complete(scripts, "watchctl", "--socket", prefix) == [prefix + "aml"]
    assert bash_complete(scripts, "watchctl", "--socket", "=", prefix) == [prefix + "aml"]


def fish_complete(scripts: Path, line: str) -> list[str]:
    script = scripts / "fish" / f"{line.split(maxsplit=1)[0]}.fish"
    result = subprocess.run(
        ["fish", "--no-config", "-c", f"source {script}; complete -C {shlex.quote(line)}"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, ""), result
    return [entry.split("\t")[0] for entry in result.stdout.splitlines()]


needs_fish = pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
needs_zsh = pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")


@needs_fish
def test_fish_offers_commands_options_and_the_daemons_job_names(
    scripts: Path, daemon: Daemon
) -> None:
    sock = str(daemon.socket)
    assert fish_complete(scripts, "watchctl ") == sorted(subcommands(ctl.build_parser()))
    assert fish_complete(scripts, f"watchctl --socket {sock} restart ") == list(JOBS)
    assert fish_complete(scripts, f"watchctl -s {sock} logs -f w") == ["web", "worker"]
    assert fish_complete(scripts, f"watchctl --socket={sock} stop w") == ["web", "worker"]
    assert set(fish_complete(scripts, "watchctl logs --")) == {
        name for name in options(subcommands(ctl.build_parser())["logs"]) if name.startswith("--")
    }
    assert fish_complete(scripts, "watchctl --color ") == ["always", "auto", "never"]
    assert fish_complete(scripts, "watchd ") == ["check", "run"]
    assert fish_complete(scripts, "watchctl -s /nonexistent.sock stop ") == []


@needs_zsh
def test_zsh_offers_commands_and_the_daemons_job_names_on_tab(
    scripts: Path, daemon: Daemon, tmp_path: Path
) -> None:
    terminal = Terminal(["zsh", "-f", "-i"], {**ENV, "PS1": "%% ", "HOME": str(tmp_path)})
    try:
        setup = f"fpath=({scripts / 'zsh'} $fpath); autoload -U compinit; compinit -u -D\n"
        terminal.type(setup.encode())
        # Each line completed, then printed by echo (Ctrl-A: to the start of the line).
        terminal.type(b"watchctl res\t\x01echo \n")  # one command starts so
        terminal.read_until(b"\nwatchctl restart\r\n")
        terminal.type(f"watchctl --socket {daemon.socket} restart wo\t\x01echo \n".encode())
        terminal.read_until(b" restart worker\r\n")
        terminal.type(f"watchctl --socket={daemon.socket} stop wo\t\x01echo \n".encode())
        terminal.read_until(b" stop worker\r\n")
        terminal.type(f"watchctl -s {daemon.socket} logs \t".encode())  # listed, all three
        screen = terminal.read_until(b"worker", since=len(terminal.screen))
        assert all(name.encode() in screen[-400:] for name in JOBS), screen[-400:]
        terminal.type(b"\x15exit\n")
        assert terminal.wait() == 0
    finally:
        terminal.close()


@needs_zsh
@needs_fish
def test_zsh_and_fish_scripts_parse(scripts: Path) -> None:
    for path in (scripts / "zsh").iterdir():
        subprocess.run(["zsh", "-n", str(path)], check=True, timeout=30)
    for path in (scripts / "fish").iterdir():
        subprocess.run(["fish", "--no-execute", str(path)], check=True, timeout=30)
