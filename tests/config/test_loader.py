"""The YAML loader: what a good config becomes, and how a bad one is reported."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import pytest

from watchd.config.loader import load_config
from watchd.config.model import (
    ChangeAction,
    DaemonConfig,
    FileOutput,
    KillMode,
    LogOutput,
    NullOutput,
    OnChange,
    Output,
    RestartPolicy,
)
from watchd.config.nodes import _SCALARS
from watchd.errors import ConfigError
from watchd.watch.base import Backend

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # errors name files relative to the working directory


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load(tmp_path: Path, main: str = "", **job_files: str) -> DaemonConfig:
    for name, text in job_files.items():
        write(tmp_path / "jobs.d" / f"{name}.yaml", text)
    return load_config(write(tmp_path / "watchd.yaml", main))


def errors(tmp_path: Path, main: str = "", **job_files: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, main, **job_files)
    return str(raised.value).splitlines()


@pytest.mark.parametrize(
    "path", [REPO / "config" / "watchd.yaml", REPO / "packaging" / "watchd.yaml"], ids=str
)
def test_shipped_configs_load(path: Path) -> None:
    config = load_config(path)
    assert config.path == path


def test_example_job_file_loads(tmp_path: Path) -> None:
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "web.yaml").write_text(
        (REPO / "packaging/examples/web.yaml").read_text()
    )
    config = load_config(write(tmp_path / "watchd.yaml", ""))
    assert config.jobs


def test_a_full_job(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        web="""
        jobs:
          web:
            command: ["python", "-m", "http.server", 8000]
            cwd: app
            env: {PYTHONUNBUFFERED: 1, DEBUG: yes}
            watch:
              paths: [app, /srv/shared]
              include: ["*.py", "templates/"]
              exclude: "*.log"
              gitignore: true
              backend: poll
              poll_interval: 500ms
            debounce: 200ms
            on_change: signal HUP
            before_restart: make assets
            stop_signal: INT
            stop_timeout: 1m
            kill_mode: mixed
            restart: always
            restart_exit_codes: [3, 4]
            start_limit_burst: 2
            output: logs/web.log
        """,
    )
    (job,) = config.jobs
    jobs_dir = (tmp_path / "jobs.d").resolve()
    assert job.name == "web"
    assert job.command == ("python", "-m", "http.server", "8000")
    assert job.cwd == jobs_dir / "app"
    assert job.env == (("DEBUG", "yes"), ("PYTHONUNBUFFERED", "1"))
    assert job.watch.paths == (jobs_dir / "app", Path("/srv/shared"))
    assert job.watch.include == ("*.py", "templates/")
    assert job.watch.exclude == ("*.log",)
    assert job.watch.gitignore is True
    assert job.watch.backend is Backend.POLL
    assert job.watch.poll_interval == 0.5
    assert job.debounce == 0.2
    assert job.on_change == OnChange(ChangeAction.SIGNAL, signal.SIGHUP)
    assert job.before_restart == ("make", "assets")
    assert job.stop_signal is signal.SIGINT
    assert job.stop_timeout == 60
    assert job.kill_mode is KillMode.MIXED
    assert job.restart is RestartPolicy.ALWAYS
    assert job.restart_exit_codes == (3, 4)
    assert job.start_limit_burst == 2
    assert job.output == FileOutput(jobs_dir / "logs" / "web.log")
    assert job.source == tmp_path / "jobs.d" / "web.yaml"
    assert config.files == (tmp_path / "watchd.yaml", tmp_path / "jobs.d" / "web.yaml")


def test_defaults_fill_in_and_a_jobs_own_value_wins(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        defaults:
          debounce: 300ms
          stop_timeout: 2s
          env: {LANG: C.UTF-8, MODE: base}
          watch: {paths: [shared], exclude: ["*.tmp"]}
        """,
        a="""
        jobs:
          own:
            command: a
            stop_timeout: 7s
            env: {MODE: own}
            watch: {include: ["*.py"]}
          plain: {command: b}
        """,
    )
    own, plain = config.jobs
    assert (own.debounce, own.stop_timeout) == (0.3, 7)
    assert own.env == (("LANG", "C.UTF-8"), ("MODE", "own"))
    assert own.watch.include == ("*.py",)
    assert own.watch.exclude == ("*.tmp",)
    # A relative path in the defaults is taken from the main file's folder.
    assert own.watch.paths == ((tmp_path / "shared").resolve(),)
    assert (plain.debounce, plain.stop_timeout) == (0.3, 2)


def test_defaults_and_builtin_defaults(tmp_path: Path) -> None:
    (job,) = load(tmp_path, "jobs:\n  solo: {command: 'sleep 5'}\n").jobs
    assert job.command == ("sleep", "5")
    assert job.restart_exit_codes == (3,)
    assert job.restart is RestartPolicy.ON_FAILURE
    assert job.on_change == OnChange(ChangeAction.RESTART)
    assert (job.debounce, job.debounce_max, job.stop_timeout) == (0.1, 2.0, 10.0)
    assert job.kill_mode is KillMode.GROUP
    assert job.watch.paths == ()
    assert job.output == LogOutput()


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("log", LogOutput()),
        ("null", NullOutput()),  # YAML's null: the word as the docs write it
        ('"null"', NullOutput()),
        ("out/web.log", FileOutput(Path("jobs.d/out/web.log"))),
        ("./log", FileOutput(Path("jobs.d/log"))),  # a file that happens to be named log
        ("/var/log/web.log", FileOutput(Path("/var/log/web.log"))),
    ],
)
def test_output_is_the_log_nothing_or_a_file(
    tmp_path: Path, written: str, expected: Output
) -> None:
    (job,) = load(tmp_path, web=f"jobs:\n  web: {{command: 'true', output: {written}}}\n").jobs
    if isinstance(expected, FileOutput) and not expected.path.is_absolute():
        expected = FileOutput(tmp_path.resolve() / expected.path)
    assert job.output == expected


def test_an_empty_output_is_an_error(tmp_path: Path) -> None:
    found = errors(tmp_path, web="jobs:\n  web: {command: 'true', output: }\n")
    assert found == ["jobs.d/web.yaml:2:34: jobs.web.output: expected a string, got nothing"]


def test_shell_commands_run_through_sh(tmp_path: Path) -> None:
    main = """
    jobs:
      piped: {command: "make | tee build.log", shell: true, before_restart: "make && true"}
      split: {command: "echo 'two words' three"}
    """
    piped, split = load(tmp_path, main).jobs
    assert piped.command == ("/bin/sh", "-c", "make | tee build.log")
    assert piped.before_restart == ("/bin/sh", "-c", "make && true")
    assert split.command == ("echo", "two words", "three")


def test_control_settings(tmp_path: Path) -> None:
    config = load(tmp_path, "control: {socket: run/ctl.sock, mode: 0640, group: root}\n")
    assert config.control.socket == (tmp_path / "run" / "ctl.sock").resolve()
    assert config.control.mode == 0o640
    assert config.control.group == "root"
    assert load(tmp_path, "control: {mode: '600'}\n").control.mode == 0o600


def test_jobs_dir_may_be_missing_or_turned_off(tmp_path: Path) -> None:
    config = load(tmp_path, "jobs_dir: not-yet\n")
    assert config.jobs_dir == (tmp_path / "not-yet").resolve()
    assert config.jobs == ()
    assert load(tmp_path, "jobs_dir: null\n").jobs_dir is None


def test_only_visible_yaml_files_are_job_files(tmp_path: Path) -> None:
    write(tmp_path / "jobs.d" / "b.yml", "jobs: {b: {command: b}}\n")
    write(tmp_path / "jobs.d" / "a.yaml", "jobs: {a: {command: a}}\n")
    write(tmp_path / "jobs.d" / ".#a.yaml", "not: [yaml")  # an emacs lock file
    write(tmp_path / "jobs.d" / "a.yaml.bak", "jobs: {c: {command: c}}\n")
    write(tmp_path / "jobs.d" / "empty.yaml", "")
    config = load_config(write(tmp_path / "watchd.yaml", ""))
    assert [job.name for job in config.jobs] == ["a", "b"]


def test_the_example_error_from_the_docs(tmp_path: Path) -> None:
    lines = errors(
        tmp_path,
        web="""
        jobs:
          web:
            command: [sleep, '60']
            stop_timeout: soon
            restrat: always
        """,
    )
    assert lines == [
        'jobs.d/web.yaml:4:19: jobs.web.stop_timeout: expected a duration like "10s", got "soon"',
        'jobs.d/web.yaml:5:5: jobs.web.restrat: unknown key; did you mean "restart"?',
    ]


def test_every_issue_in_every_file_is_reported_in_order(tmp_path: Path) -> None:
    lines = errors(
        tmp_path,
        "log_level: loud\ncontrol: {mode: 999}\n",
        a="""
        jobs:
          one:
            command: []
            on_change: signal NOPE
            watch: {backend: fsevents, paths: [ok]}
            restart_exit_codes: [3, 300]
          "bad name": {command: x}
          two:
            env: {GOOD: 1, BAD-NAME: 2}
        """,
        b="jobs:\n  x: {command: x, zzz: 1}\nextra: 1\n",
    )
    text = "\n".join(lines)
    expected = [
        ":3:14: jobs.one.command: expected a command, got a list",
        ':4:16: jobs.one.on_change: expected "signal" and a signal name like "SIGHUP", got',
        ':5:22: jobs.one.watch.backend: expected one of auto | inotify | poll, got "fsevents"',
        ":6:29: jobs.one.restart_exit_codes: expected an exit status from 0 to 255, got 300",
        ':7:3: jobs: expected a job name of letters, digits, "-", "_", "." or "@"',
        ':8:3: jobs.two: missing the required key "command"',
        ':9:20: jobs.two.env.BAD-NAME: expected a variable name like "PYTHONPATH", got "BAD-NAME"',
        "b.yaml:2:19: jobs.x.zzz: unknown key; expected one of: command,",
        'b.yaml:3:1: extra: unknown key; expected "jobs"',
        'watchd.yaml:1:12: log_level: expected one of debug | info | warning | error, got "loud"',
        'watchd.yaml:2:17: control.mode: expected permission bits like "0660", got 999',
    ]
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    assert len(lines) == len(expected)
    assert lines[0].startswith(str(Path("jobs.d") / "a.yaml"))


def test_duplicate_keys_and_jobs_name_both_places(tmp_path: Path) -> None:
    lines = errors(
        tmp_path,
        "jobs:\n  web: {command: a}\n",
        web="jobs:\n  web:\n    command: b\n    command: c\n",
    )
    assert lines == [
        "jobs.d/web.yaml:2:3: jobs.web: job already defined at watchd.yaml:2",
        "jobs.d/web.yaml:4:5: jobs.web.command: duplicate key (first set on line 3)",
    ]


def test_broken_yaml_names_the_place(tmp_path: Path) -> None:
    (line,) = errors(tmp_path, web="jobs:\n  web: {command: [a, b}\n")
    assert line.startswith("jobs.d/web.yaml:2:")
    assert "invalid YAML" in line


def test_files_outside_the_working_directory_are_named_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")
    (line,) = errors(tmp_path, "bogus: 1\n")
    assert line.startswith(f"{tmp_path}/watchd.yaml:1:1: bogus: unknown key")


def test_a_missing_main_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: cannot read: No such file"):
        load_config(tmp_path / "nowhere.yaml")


def test_shell_wants_a_string_and_unknown_users_are_caught(tmp_path: Path) -> None:
    lines = errors(
        tmp_path,
        "jobs:\n  a: {command: [a, b], shell: true}\n  b: {command: b, user: no-such-user-here}\n",
    )
    assert "jobs.a.command: expected a shell command string (shell: true), got a list" in lines[0]
    assert (
        'jobs.b.user: expected a user that exists on this system, got "no-such-user-here"'
        in (lines[1])
    )


def test_reloading_keeps_no_nodes_alive(tmp_path: Path) -> None:
    for _ in range(3):
        load(tmp_path, "defaults: {debounce: 1s}\njobs: {web: {command: x, stop_timeout: 2s}}\n")
    assert not _SCALARS.constructed_objects  # a long-running daemon reloads many times


def test_a_kill_mode_is_group_or_mixed(tmp_path: Path) -> None:
    lines = errors(tmp_path, "", a="jobs:\n  web: {command: x, kill_mode: process}\n")
    assert lines == [
        'jobs.d/a.yaml:2:32: jobs.web.kill_mode: expected one of group | mixed, got "process"'
    ]
