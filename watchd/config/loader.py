"""Read the main file and every job file into one DaemonConfig, or refuse with every issue found.

Nothing is half-loaded: a config with any issue raises ConfigError naming file, line,
column and key for each, so the daemon can keep running what it has.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import yaml

from watchd.config import values
from watchd.config.jobs import Entry, build_job, check_job_name, job_entries, unknown_key
from watchd.config.model import ControlConfig, DaemonConfig, JobConfig, MetricsConfig
from watchd.config.nodes import (
    Invalid,
    Issues,
    compose,
    is_null,
    mapping,
    printable,
    show,
    shown,
    source_of,
    text_of,
)
from watchd.config.serving import tcp_address
from watchd.errors import ConfigError, ConfigIssue

MAIN_KEYS = ("control", "metrics", "log_level", "jobs_dir", "defaults", "jobs")
CONTROL_KEYS = ("socket", "group", "mode")
METRICS_KEYS = ("listen",)
LOG_LEVELS = ("debug", "info", "warning", "error")
JOB_FILE_SUFFIXES = (".yaml", ".yml")
LOADER_FAULT = "cannot read the config: "


def load_config(path: Path) -> DaemonConfig:
    """The whole configuration rooted at the main file *path*; raises ConfigError."""
    path = path.absolute()
    try:
        return _Loader(path).load()
    except ConfigError:
        raise
    except Exception as error:  # a fault of the loader's own is reported like any issue
        frames = traceback.extract_tb(error.__traceback__)
        where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
        message = f"{LOADER_FAULT}{type(error).__name__}: {error}{where}"
        raise ConfigError([ConfigIssue(shown(path), 1, 1, "", printable(message))]) from error


def job_files(jobs_dir: Path) -> list[Path]:
    """The job files in *jobs_dir*, in name order; hidden files (editor locks) are skipped."""
    try:
        names = sorted(entry.name for entry in jobs_dir.iterdir())
    except FileNotFoundError:
        return []
    return [
        jobs_dir / name
        for name in names
        if name.endswith(JOB_FILE_SUFFIXES) and not name.startswith(".")
    ]


class _Loader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.issues = Issues()
        self.settings: dict[str, object] = {"jobs_dir": path.parent / "jobs.d"}
        self.control: dict[str, object] = {}
        self.metrics = MetricsConfig()
        self.defaults: dict[str, Entry] = {}
        self.jobs: dict[str, JobConfig] = {}
        self.defined_at: dict[str, yaml.Node] = {}
        self.files = [path]

    def load(self) -> DaemonConfig:
        root = compose(self.path, self.issues)
        pending_jobs: list[yaml.Node] = []
        if root is not None and not is_null(root):
            for key, (key_node, value) in (mapping(root, "", self.issues) or {}).items():
                if key == "jobs":
                    pending_jobs.append(value)  # after ``defaults``, wherever that is written
                else:
                    self._main_setting(key, key_node, value)
        for node in pending_jobs:
            self._jobs(node)
        jobs_dir = self.settings["jobs_dir"]
        if isinstance(jobs_dir, Path):
            self._jobs_dir(jobs_dir)
        if self.issues.found:
            raise ConfigError(sorted(self.issues.found, key=_reading_order))
        return DaemonConfig(
            path=self.path,
            control=ControlConfig(**self.control),  # type: ignore[arg-type]
            metrics=self.metrics,
            log_level=str(self.settings.get("log_level", "info")),
            jobs_dir=jobs_dir if isinstance(jobs_dir, Path) else None,
            jobs=tuple(self.jobs.values()),
            files=tuple(self.files),
        )

    def _main_setting(self, key: str, key_node: yaml.Node, value: yaml.Node) -> None:
        match key:
            case "control":
                self._control(value)
            case "metrics":
                self._metrics(value)
            case "log_level":
                level = (text_of(value) or "").lower()
                if level in LOG_LEVELS:
                    self.settings["log_level"] = level
                else:
                    expected = " | ".join(LOG_LEVELS)
                    self.issues.at(value, key, f"expected one of {expected}, got {show(value)}")
            case "jobs_dir":
                self.settings["jobs_dir"] = (
                    None if is_null(value) else self._value(key, value, values.path)
                )
            case "defaults":
                if not is_null(value):
                    self.defaults = job_entries(value, "defaults", self.issues)
            case _:
                unknown_key(self.issues, key_node, key, MAIN_KEYS)

    def _control(self, node: yaml.Node) -> None:
        # The group is looked up when the socket is made (it may not exist on a build machine).
        parsers = {"socket": values.socket_path, "group": values.string, "mode": values.file_mode}
        for key, (key_node, value) in (mapping(node, "control", self.issues) or {}).items():
            parser = parsers.get(key)
            if parser is None:
                unknown_key(self.issues, key_node, f"control.{key}", CONTROL_KEYS)
            elif not (key == "group" and is_null(value)):
                parsed = self._value(f"control.{key}", value, parser)
                if parsed is not None:
                    self.control[key] = parsed

    def _metrics(self, node: yaml.Node) -> None:
        for key, (key_node, value) in (mapping(node, "metrics", self.issues) or {}).items():
            if key != "listen":
                unknown_key(self.issues, key_node, f"metrics.{key}", METRICS_KEYS)
            elif not is_null(value):
                listen = self._value("metrics.listen", value, tcp_address)
                if isinstance(listen, tuple):
                    self.metrics = MetricsConfig(listen=listen)

    def _value(self, key_path: str, node: yaml.Node, parser: object) -> object:
        try:
            return parser(node)  # type: ignore[operator]
        except Invalid as error:
            self.issues.at(error.node or node, key_path, error.message)
            return None

    def _jobs_dir(self, jobs_dir: Path) -> None:
        if jobs_dir.exists() and not jobs_dir.is_dir():
            self.issues.in_file(jobs_dir, "jobs_dir is not a directory")
            return
        try:
            files = job_files(jobs_dir)
        except OSError as error:
            self.issues.in_file(jobs_dir, f"cannot list: {error.strerror}")
            return
        for path in files:
            self.files.append(path)
            root = compose(path, self.issues)
            if root is None or is_null(root):
                continue  # an empty job file defines nothing, which is fine
            for key, (key_node, value) in (mapping(root, "", self.issues) or {}).items():
                if key == "jobs":
                    self._jobs(value)
                else:
                    unknown_key(self.issues, key_node, key, ("jobs",))

    def _jobs(self, node: yaml.Node) -> None:
        if is_null(node):
            return
        for name, (name_node, value) in (mapping(node, "jobs", self.issues) or {}).items():
            if not check_job_name(name_node, self.issues):
                continue
            own = job_entries(value, f"jobs.{name}", self.issues)
            first = self.defined_at.setdefault(name, name_node)
            if first is not name_node:
                where = f"{shown(source_of(first))}:{first.start_mark.line + 1}"
                self.issues.at(name_node, f"jobs.{name}", f"job already defined at {where}")
                continue
            job = build_job(name_node, {**self.defaults, **own}, self.issues)
            if job is not None:
                self.jobs[name] = job


def _reading_order(issue: ConfigIssue) -> tuple[str, int, int]:
    return (str(issue.file), issue.line, issue.column)
