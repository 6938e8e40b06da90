"""Hostile or broken config files: every one is refused with FILE:LINE:COL: key: message,
quickly and in bounded memory, never with a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchd.config import bounds, jobs
from watchd.config.loader import load_config
from watchd.errors import ConfigError


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def refused(tmp_path: Path, job_file: bytes) -> list[str]:
    """The error lines for a config whose one job file holds *job_file*."""
    (tmp_path / "jobs.d").mkdir(exist_ok=True)
    (tmp_path / "jobs.d" / "web.yaml").write_bytes(job_file)
    main = tmp_path / "watchd.yaml"
    main.write_text("control: {socket: ctl.sock}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(main)
    lines = str(raised.value).splitlines()
    assert all(line.isprintable() for line in lines)
    return lines


def job(key_and_value: str) -> bytes:
    return f"jobs:\n  web:\n    command: app\n    {key_and_value}\n".encode()


ALIAS_BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 9)}]\n" for n in range(9)
    )
    + "jobs:\n  web:\n    command: *j\n    env: *j\n    watch: {paths: *j}\n"
).encode()

CASES = {
    "control character": (
        b"jobs:\n  web:\n    command: a\x01b\n",
        "3:15: invalid YAML: control characters are not allowed (#x0001)",
    ),
    "NUL byte": (b"jobs:\n  web:\n    command: a\x00b\n", "3:15: invalid YAML"),
    "escaped NUL in a command": (
        b'jobs:\n  web:\n    command: "a\\0b"\n',
        "3:14: jobs.web.command: a NUL character cannot be in a command",
    ),
    "escaped NUL in a variable": (
        job('env: {A: "\\0"}'),
        "4:14: jobs.web.env.A: a NUL character",
    ),
    "lone surrogate": (
        b'jobs:\n  web:\n    command: "\\ud800"\n',
        "3:17: invalid YAML: while parsing a quoted scalar found invalid Unicode",
    ),
    "bad UTF-8": (b"jobs:\n  web:\n    command: caf\xe9\n", "3:17: not UTF-8 text: byte 0xe9"),
    "Python tag": (
        b"jobs:\n  web:\n    command: !!python/object/apply:os.system ['true']\n",
        "3:14: unsupported tag !!python/object/apply:os.system",
    ),
    "local tag": (job("cwd: !mine /srv"), "4:10: unsupported tag !mine"),
    "bool that is not": (job("shell: !!bool maybe"), "4:12: jobs.web.shell: not a valid !!bool"),
    "timestamp that is not": (
        job("stop_timeout: !!timestamp xyz"),
        "4:19: jobs.web.stop_timeout: not a valid !!timestamp",
    ),
    "5,000 digits": (
        job("log_lines: " + "7" * 5000),
        "4:16: jobs.web.log_lines: expected a number of at most 100 digits",
    ),
    "log_lines beyond 64 bits": (
        job(f"log_lines: {2**63}"),
        "4:16: jobs.web.log_lines: expected a whole number from 0 to 1000000",
    ),
    "start_limit_burst beyond 64 bits": (
        job(f"start_limit_burst: {2**63}"),
        "4:24: jobs.web.start_limit_burst: expected a whole number from 1 to 1000000",
    ),
    "NaN duration": (job("stop_timeout: .nan"), "4:19: jobs.web.stop_timeout: expected a duration"),
    "infinite duration": (
        job("debounce: " + "9" * 400 + "s"),
        "4:15: jobs.web.debounce: expected a duration of at most a year",
    ),
    "unknown user's home": (
        job("cwd: ~nosuchuser-here/x"),
        "4:10: jobs.web.cwd: cannot expand ~: no home directory for nosuchuser-here",
    ),
    "job name with a newline": (
        b'jobs:\n  "web\\n":\n    command: app\n',
        '2:3: jobs: expected a job name of letters, digits, "-", "_", "." or "@"',
    ),
    "over-long job name": (
        b"jobs:\n  " + b"x" * 65 + b":\n    command: app\n",
        "2:3: jobs: expected a job name",
    ),
    "nesting 100,000 deep": (
        b"jobs:\n  web:\n    command: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "invalid YAML: while increasing flow level exceeded maximum nesting depth",
    ),
    "block nesting 3,000 deep": (
        b"jobs:\n  web:\n    command:\n      " + b"- " * 3000 + b"x\n",
        "invalid YAML: while increasing block level exceeded maximum nesting depth",
    ),
    "billion laughs": (ALIAS_BOMB, "1:1: a: unknown key"),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_hostile_job_file_is_refused_with_its_place(tmp_path: Path, case: str) -> None:
    data, expected = CASES[case]
    lines = refused(tmp_path, data)
    assert any(line.startswith("jobs.d/web.yaml:") and expected in line for line in lines), lines


def test_aliases_are_never_expanded_into_a_command(tmp_path: Path) -> None:
    lines = refused(tmp_path, ALIAS_BOMB.replace(b"a: &a", b"jobs_x: &a"))
    assert any("jobs.web.command: expected a string, got a list" in line for line in lines)


def test_a_command_beyond_arg_max_is_refused_before_it_is_split(tmp_path: Path) -> None:
    size = bounds.arg_max() + 1
    lines = refused(tmp_path, b"jobs:\n  web:\n    command: " + b"a " * (size // 2 + 1) + b"\n")
    assert any(
        "3:14: jobs.web.command: a command can be at most" in line and "(ARG_MAX)" in line
        for line in lines
    ), lines


def test_one_argument_beyond_the_kernels_limit_is_refused(tmp_path: Path) -> None:
    word = "y" * bounds.MAX_ARG_STRLEN
    lines = refused(tmp_path, f"jobs:\n  web:\n    command: [app, {word}]\n".encode())
    assert (
        f"jobs.web.command: a command argument can be at most {len(word) - 1} bytes" in (lines[0])
    )


def test_a_shell_command_and_its_env_beyond_arg_max_are_refused(tmp_path: Path) -> None:
    value = "v" * (bounds.MAX_ARG_STRLEN - 100)
    env = "".join(f"      V{n}: {value}\n" for n in range(bounds.arg_max() // len(value) + 1))
    text = f"jobs:\n  web:\n    command: app\n    shell: true\n    env:\n{env}"
    lines = refused(tmp_path, text.encode())
    assert any("a command and its env can be at most" in line for line in lines), lines


def test_a_file_too_large_to_be_a_config_is_refused_unread(tmp_path: Path) -> None:
    data = b"jobs: {}\n" + b"#" * bounds.FILE_BYTES_MAX
    assert refused(tmp_path, data) == ["jobs.d/web.yaml: larger than 16 MiB; not a config"]


def test_a_fault_in_the_loader_is_still_a_config_error_with_a_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fault that no input can cause today, so it is made: the parser of one key breaks.
    def broken(node: object) -> float:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setitem(jobs.JOB_VALUES, "stop_timeout", broken)
    lines = refused(tmp_path, job("stop_timeout: 5s"))
    assert len(lines) == 1 and lines[0].startswith(
        "watchd.yaml:1:1: cannot read the config: ZeroDivisionError: division by zero (at "
    ), lines
