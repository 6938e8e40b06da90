"""The ``limits`` key: what a good value becomes, and how a bad one is reported."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from watchd.config.loader import load_config
from watchd.config.model import Limits
from watchd.errors import ConfigError


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # errors name files relative to the working directory


def job_file(tmp_path: Path, limits: str) -> Path:
    (tmp_path / "jobs.d").mkdir(exist_ok=True)
    text = f"jobs:\n  web:\n    command: sleep 1\n    limits: {limits}\n"
    (tmp_path / "jobs.d" / "web.yaml").write_text(text)
    main = tmp_path / "watchd.yaml"
    main.write_text("")
    return main


def limits_of(tmp_path: Path, limits: str) -> Limits:
    (job,) = load_config(job_file(tmp_path, limits)).jobs
    return job.limits


def errors(tmp_path: Path, limits: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(job_file(tmp_path, limits))
    return str(raised.value).splitlines()


def test_the_spec_example_becomes_bytes_a_task_count_and_a_share_of_a_cpu(tmp_path: Path) -> None:
    limits = limits_of(tmp_path, "{memory: 512M, tasks: 200, cpu: 50%}")
    assert (limits.memory, limits.tasks, limits.cpu) == (512 << 20, 200, 0.5)
    assert limits.position("memory") == "jobs.d/web.yaml:4:22"
    assert limits.position("cpu") == "jobs.d/web.yaml:4:45"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1G", 1 << 30), ("1.5G", 3 << 29), ("64MiB", 64 << 20), ("100K", 102400), ("4096", 4096)],
)
def test_memory_sizes_use_binary_multiples(tmp_path: Path, text: str, expected: int) -> None:
    assert limits_of(tmp_path, f"{{memory: {text}}}").memory == expected


def test_cpu_above_one_cpu_and_no_limits_at_all(tmp_path: Path) -> None:
    assert limits_of(tmp_path, "{cpu: 250%}").cpu == 2.5
    assert limits_of(tmp_path, "null") == Limits()
    assert limits_of(tmp_path, "{}").items() == []


def test_where_a_limit_was_written_does_not_make_it_another_definition(tmp_path: Path) -> None:
    first = limits_of(tmp_path, "{memory: 1G}")
    second = limits_of(tmp_path, "{ memory: 1G}")
    assert first == second and first.position("memory") != second.position("memory")


def test_bad_limits_are_each_reported_at_their_value(tmp_path: Path) -> None:
    found = errors(tmp_path, "{memory: lots, tasks: 0, cpu: 0.5, swap: 1G}")
    assert found[:4] == [
        'jobs.d/web.yaml:4:22: jobs.web.limits.memory: expected a size like "512M" or "2G" '
        '(bytes if bare), at most 1024T, got "lots"',
        "jobs.d/web.yaml:4:35: jobs.web.limits.tasks: expected a whole number from 1 to 4194304, "
        "got 0",
        "jobs.d/web.yaml:4:43: jobs.web.limits.cpu: expected a share of CPU from 1% to 100000% "
        'like "50%", got 0.5',
        "jobs.d/web.yaml:4:48: jobs.web.limits.swap: unknown key; expected one of: memory, "
        "tasks, cpu",
    ]


def test_limits_beyond_what_a_machine_has_are_refused(tmp_path: Path) -> None:
    huge = "9" * 400
    found = errors(tmp_path, f"{{memory: {huge}G, tasks: {huge[:90]}, cpu: '{huge}%'}}")
    assert [line.split(": ")[1] for line in found] == [
        "jobs.web.limits.memory",
        "jobs.web.limits.tasks",
        "jobs.web.limits.cpu",
    ]


def test_limits_must_be_a_mapping(tmp_path: Path) -> None:
    (line,) = errors(tmp_path, "512M")[:1]
    assert line.startswith("jobs.d/web.yaml:4:13: jobs.web.limits: expected a mapping")


def test_limits_set_in_defaults_apply_to_every_job(tmp_path: Path) -> None:
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "web.yaml").write_text("jobs:\n  web: {command: sleep 1}\n")
    main = tmp_path / "watchd.yaml"
    main.write_text(textwrap.dedent("defaults:\n  limits: {tasks: 50}\n"))
    (job,) = load_config(main).jobs
    assert job.limits.tasks == 50
    assert job.limits.position("tasks") == "watchd.yaml:2:19"
