"""One job's containment: its cgroup below watchd's (or why it has none), the cgroup of
each child below that, its limits, and what it uses."""

from __future__ import annotations

import itertools
import logging
from typing import Any

from watchd.config.model import JobConfig, Limits
from watchd.supervise.cgroup import Cgroup, Hierarchy, available_controllers, not_enforced

log = logging.getLogger("watchd.job")

# Each child's cgroup gets a name never used before in this watchd, so that two children of
# one job (an overlap restart) never share one.
_RUNS = itertools.count(1)


def warning(limits: Limits, key: str, why: str) -> str:
    """``FILE:LINE:COL: warning: limits.KEY: WHY``."""
    where = limits.position(key)
    return f"{where + ': ' if where else ''}warning: limits.{key}: {why}"


def check_warnings(job: JobConfig) -> list[str]:
    """What ``watchd check`` says of a job's limits, judged by the cgroup it runs in."""
    if not job.limits.items():
        return []
    controllers, reason = available_controllers()
    found = []
    for key, _ in job.limits.items():
        controller = {"memory": "memory", "tasks": "pids", "cpu": "cpu"}[key]
        if reason is not None:
            found.append(warning(job.limits, key, f"not enforced: {reason}"))
        elif controller not in controllers:
            found.append(warning(job.limits, key, not_enforced(controller)))
    return found


class JobContainment:
    def __init__(self, job: JobConfig, containment: Hierarchy | str) -> None:
        self._limits = job.limits
        self._name = job.name
        self.hierarchy = containment if isinstance(containment, Hierarchy) else None
        self.reason = containment if isinstance(containment, str) else None
        self.cgroup = None if self.hierarchy is None else self.hierarchy.job(job.name)
        self._created = False
        self.warnings: list[str] = []
        if self.cgroup is None:
            why = f"not enforced: no cgroup ({self.reason})"
            self.warnings = [warning(self._limits, key, why) for key, _ in self._limits.items()]
            for text in self.warnings:
                log.warning("%s: %s", self._name, text)

    @property
    def kind(self) -> str:
        return "process-group" if self.cgroup is None else "cgroup"

    def child_cgroup(self) -> Cgroup | None:
        """A new, empty cgroup for the next child (the job's own is made on first use, with
        its limits); None without a hierarchy. Raises OSError when it cannot be made."""
        if self.cgroup is None:
            return None
        if not self._created:
            self.cgroup.create()
            self.warnings = [
                warning(self._limits, key, why) for key, why in self.cgroup.apply(self._limits)
            ]
            for text in self.warnings:
                log.warning("%s: %s", self._name, text)
            self._created = True
        leaf = self.cgroup.child(f"run-{next(_RUNS)}")
        leaf.create()
        return leaf

    def holds(self, pid: int, leaf: Cgroup | None) -> bool:
        """Whether *pid* is in a child's cgroup *leaf* (never without a hierarchy)."""
        return self.hierarchy is not None and leaf is not None and self.hierarchy.holds(pid, leaf)

    def oom_kills(self) -> int:
        if self.cgroup is None:
            return 0
        return self.cgroup.oom_kills() or 0

    def close(self) -> None:
        """Remove the job's cgroup once nothing is left in it."""
        if self.cgroup is not None and self._created:
            self.cgroup.remove()
            self._created = False

    def status(self) -> dict[str, Any]:
        cgroup, hierarchy = self.cgroup, self.hierarchy
        live = cgroup is not None and self._created
        return {
            "containment": self.kind,
            "containment_reason": self.reason,
            "cgroup": hierarchy.shown(cgroup) if hierarchy and cgroup else None,
            "memory_bytes": cgroup.memory_bytes() if live and cgroup else None,
            "cpu_seconds": cgroup.cpu_seconds() if live and cgroup else None,
            "limits": tuple(self._limits.items()),
            "limit_warnings": tuple(self.warnings),
        }
