"""Which jobs a reload adds, removes, redefines and leaves alone."""

from __future__ import annotations

from pathlib import Path

from watchd.config.diff import diff_jobs
from watchd.config.loader import load_config
from watchd.config.model import DaemonConfig


def config(tmp_path: Path, **files: str) -> DaemonConfig:
    jobs_dir = tmp_path / "jobs.d"
    jobs_dir.mkdir(exist_ok=True)
    for old in jobs_dir.iterdir():
        old.unlink()
    for name, text in files.items():
        (jobs_dir / f"{name}.yaml").write_text(text)
    main = tmp_path / "watchd.yaml"
    main.write_text("")
    return load_config(main)


def test_added_removed_changed_unchanged(tmp_path: Path) -> None:
    old = config(tmp_path, a="jobs: {keep: {command: k}, edit: {command: e}, drop: {command: d}}")
    new = config(tmp_path, a="jobs: {keep: {command: k}, edit: {command: e2}, new: {command: n}}")
    diff = diff_jobs(old, new)
    assert [job.name for job in diff.added] == ["new"]
    assert diff.removed == ("drop",)
    assert [job.command for job in diff.changed] == [("e2",)]
    assert [job.name for job in diff.unchanged] == ["keep"]


def test_a_job_moved_to_another_file_is_unchanged(tmp_path: Path) -> None:
    old = config(tmp_path, a="jobs: {web: {command: w, debounce: 1s}}")
    new = config(tmp_path, b="jobs: {web: {command: w, debounce: 1000ms}}")
    diff = diff_jobs(old, new)
    assert (diff.added, diff.removed, diff.changed) == ((), (), ())
    assert diff.unchanged[0].source.name == "b.yaml"


def test_nothing_changes_nothing(tmp_path: Path) -> None:
    old = config(tmp_path, a="jobs: {web: {command: w}}")
    diff = diff_jobs(old, old)
    assert (diff.added, diff.removed, diff.changed) == ((), (), ())
