"""Errors a user sees, each able to say what went wrong and where."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class WatchdError(Exception):
    """Base for errors that are reported to the user as one clear message."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in one config file, printed compiler style."""

    file: Path
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    key: str  # dotted key path, e.g. "jobs.web.stop_timeout"; "" for the file itself
    message: str  # "expected …, got …"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else f"{self.file}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(WatchdError):
    """Every problem found in a configuration; the configuration is refused as a whole."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class WatchLimitError(WatchdError):
    """inotify_add_watch failed with ENOSPC: the per-user watch limit was reached."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"inotify watch limit reached while watching {path}; raise it with "
            "'sysctl fs.inotify.max_user_watches=524288' "
            "(persist in /etc/sysctl.d/90-watchd.conf)"
        )
