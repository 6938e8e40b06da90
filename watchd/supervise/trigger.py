"""Why a job last (re)started or stopped: shown by ``watchctl status``."""

from __future__ import annotations

from dataclasses import dataclass

from watchd.supervise.events import TriggerKind


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    detail: str
    at: float  # wall-clock seconds


def describe_paths(paths: list[str]) -> str:
    """The most recent path, and how many others came with it."""
    if not paths:
        return "files"
    if len(paths) == 1:
        return paths[0]
    return f"{paths[-1]} and {len(paths) - 1} more"
