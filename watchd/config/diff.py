"""What a reload changes: jobs added, removed, redefined, and left alone."""

from __future__ import annotations

from dataclasses import dataclass

from watchd.config.model import DaemonConfig, JobConfig


@dataclass(frozen=True)
class JobsDiff:
    added: tuple[JobConfig, ...]
    removed: tuple[str, ...]
    changed: tuple[JobConfig, ...]  # the new definitions
    unchanged: tuple[JobConfig, ...]  # the new definitions (their file may have moved)


def diff_jobs(old: DaemonConfig, new: DaemonConfig) -> JobsDiff:
    """Compare by job name; a job is changed when it would run differently, not when it moved."""
    before = {job.name: job for job in old.jobs}
    added, changed, unchanged = [], [], []
    for job in new.jobs:
        previous = before.get(job.name)
        if previous is None:
            added.append(job)
        elif previous.same_definition(job):
            unchanged.append(job)
        else:
            changed.append(job)
    kept = {job.name for job in new.jobs}
    removed = tuple(name for name in before if name not in kept)
    return JobsDiff(tuple(added), removed, tuple(changed), tuple(unchanged))
