"""The workloads. Each yields records: one dict per measurement, written as JSON lines."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import trees
from bench.django_reload import QUICK_DJANGO, DjangoSizes, Reloader
from bench.django_reload import django_reload as django_reload_of
from bench.downtime import QUICK_DOWNTIME, DowntimeSizes, Subject
from bench.downtime import downtime as downtime_of
from bench.gunicorn_restart import QUICK_GUNICORN, GunicornSizes
from bench.gunicorn_restart import Subject as GunicornSubject
from bench.gunicorn_restart import gunicorn as gunicorn_of
from bench.observe import QUICK_OBSERVE, ObserveSizes
from bench.observe import observe as observe_of
from bench.procs import (
    CLOCK_TICKS,
    cpu_seconds,
    current_rss_mb,
    inotify_usage,
    peak_rss_mb,
    tool_processes,
)
from bench.records import Record
from bench.tools import CHILD, HERE, Run, Tool, Watchd, warm_up_seconds
from watchd.watch.filters import PathFilter
from watchd.watch.scan import Scanner

Result = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """How big and how often: the full run, or ``--quick``."""

    latency_files: tuple[int, ...] = (1_000, 100_000)
    latency_reps: int = 20
    idle_files: tuple[int, ...] = (1_000, 10_000, 100_000)
    idle_window: float = 30.0
    storm_files: int = 10_000
    storm_writes: int = 5_000
    storm_reps: int = 3
    storm_quiet: float = 4.0
    storm_limit: float = 60.0
    startup_files: int = 100_000
    startup_reps: int = 3
    poll_files: int = 100_000
    jobs: int = 100
    job_files: int = 1_000
    reload_reps: int = 5
    change_timeout: float = 10.0
    scale_files: int = 1_000_000
    scale_limit: float = 300.0  # for a change to be acted on after launch


QUICK = Sizes(
    latency_files=(200,),
    latency_reps=1,
    idle_files=(200,),
    idle_window=0.5,
    storm_files=500,
    storm_writes=250,
    storm_reps=1,
    storm_quiet=1.0,
    storm_limit=5.0,
    startup_files=1_000,
    startup_reps=1,
    poll_files=1_000,
    jobs=3,
    job_files=100,
    reload_reps=1,
    change_timeout=3.0,
    scale_files=2_000,
    scale_limit=30.0,
)


class Bench:
    def __init__(self, workdir: Path, sizes: Sizes, seed: int = 1) -> None:
        self.workdir = workdir
        self.sizes = sizes
        self.random = random.Random(seed)
        self.quick = sizes == QUICK

    def tree(
        self, files: int, name: str = "", files_per_dir: int = trees.FILES_PER_DIR
    ) -> tuple[Path, list[Path]]:
        root = self.workdir / "trees" / (name or f"t{files}")
        return root, trees.build(root, files, files_per_dir)

    def run_dir(self, tool: Tool, label: str) -> Path:
        safe = "".join(c if c.isalnum() else "-" for c in f"{tool.name}-{label}")
        path = self.workdir / "runs" / safe
        if path.exists():
            subprocess.run(["rm", "-rf", str(path)], check=True)
        return path

    def start(self, tool: Tool, tree: Path, files: int, label: str) -> Run:
        warm_up = 0.5 if self.quick else warm_up_seconds(files)
        return tool.start(tree, self.run_dir(tool, label), warm_up)

    def gap(self, tool: Tool, files: int) -> None:
        """Between changes: a peer's new child must finish its set-up before it can see one."""
        if isinstance(tool, Watchd):
            time.sleep(0.3)
        else:
            time.sleep(0.3 if self.quick else 0.5 + files / 40_000)

    def change(self, run: Run, path: Path) -> tuple[float | None, float | None]:
        """Touch *path*; (ms to the old child's stop, ms to the new child's start)."""
        before = run.record.starts()
        old = before[-1].pid
        t0 = time.monotonic_ns()
        trees.touch(path)
        starts = run.record.wait_starts(len(before) + 1, self.sizes.change_timeout)
        if starts is None:
            return None, None
        ended = run.record.ended(old)
        stop_ms = None if ended is None else (ended.ns - t0) / 1e6
        return stop_ms, (starts[len(before)].ns - t0) / 1e6


def latency(bench: Bench, tools: list[Tool]) -> Iterator[Result]:
    for files in bench.sizes.latency_files:
        root, paths = bench.tree(files)
        for tool in tools:
            run = bench.start(tool, root, files, f"latency-{files}")
            try:
                for rep in range(bench.sizes.latency_reps):
                    bench.gap(tool, files)
                    stop_ms, start_ms = bench.change(run, bench.random.choice(paths))
                    yield {
                        "workload": "latency",
                        "tool": tool.name,
                        "debounce": tool.debounce,
                        "files": files,
                        "rep": rep,
                        "stop_ms": stop_ms,
                        "new_child_ms": start_ms,
                    }
            finally:
                run.stop()


def _idle_figures(run: Run, window: float, children: set[int] | None = None) -> tuple[float, float]:
    """(CPU % of one core, peak RSS MB) of the tool's own processes over *window*."""
    if children is None:
        # Django's reloader runs inside the serving child: there the child is the tool.
        in_child = run.tool.watches_in_child
        children = set() if in_child else {stamp.pid for stamp in run.record.starts()}
    pids = tool_processes(run.launched.pid, children)
    before = cpu_seconds(pids)
    time.sleep(window)  # the measurement window itself: nothing happens on purpose
    used = cpu_seconds(pids) - before
    return 100 * used / window, peak_rss_mb(pids)


def idle(bench: Bench, tools: list[Tool]) -> Iterator[Result]:
    for files in bench.sizes.idle_files:
        root, _ = bench.tree(files)
        for tool in tools:
            run = bench.start(tool, root, files, f"idle-{files}")
            try:
                cpu, rss = _idle_figures(run, bench.sizes.idle_window)
                yield {
                    "workload": "idle",
                    "tool": tool.name,
                    "files": files,
                    "window_s": bench.sizes.idle_window,
                    "cpu_percent": cpu,
                    "peak_rss_mb": rss,
                }
            finally:
                run.stop()


def storm(bench: Bench, tools: list[Tool]) -> Iterator[Result]:
    files = bench.sizes.storm_files
    root, paths = bench.tree(files, "storm")
    quiet = bench.sizes.storm_quiet  # after the last restart, how long nothing may happen
    for tool in tools:
        for rep in range(bench.sizes.storm_reps):
            run = bench.start(tool, root, files, f"storm-{rep}")
            try:
                before = len(run.record.starts())
                for path in bench.random.sample(paths, bench.sizes.storm_writes):
                    path.write_bytes(b"storm\n")
                last_write = time.monotonic_ns()
                starts, settled = _settle(run.record, before, quiet, bench.sizes.storm_limit)
                new = starts[before:]
                yield {
                    "workload": "storm",
                    "tool": tool.name,
                    "files": files,
                    "writes": bench.sizes.storm_writes,
                    "rep": rep,
                    "restarts": len(new),
                    "last_write_to_new_child_ms": (new[-1].ns - last_write) / 1e6 if new else None,
                    "tool_alive": run.launched.alive(),
                    "settled": settled,
                }
            finally:
                run.stop()


def _settle(record: Record, before: int, quiet: float, limit: float) -> tuple[list[Any], bool]:
    """The starts once none has come for *quiet* seconds (at least one after *before*),
    and whether that happened within *limit*."""
    deadline = time.monotonic() + limit
    count, since = len(record.starts()), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = len(record.starts())
        if now != count:
            count, since = now, time.monotonic()
        elif count > before and time.monotonic() - since >= quiet:
            return record.starts(), True
    return record.starts(), False


def startup(bench: Bench, tools: list[Tool]) -> Iterator[Result]:
    files = bench.sizes.startup_files
    root, paths = bench.tree(files)
    for tool in tools:
        for rep in range(bench.sizes.startup_reps):
            workdir = bench.run_dir(tool, f"startup-{rep}")
            # No warm-up: the change comes right after READY=1 (watchd) or right after the
            # first child started (a peer, which does not say when it is ready).
            run = tool.start(root, workdir, warm_up=0)
            t0 = time.monotonic_ns()
            ready_ms = (run.ready_ns - run.launched_ns) / 1e6 if isinstance(tool, Watchd) else None
            try:
                trees.touch(bench.random.choice(paths))
                seen = run.record.wait_starts(2, bench.sizes.change_timeout) is not None
                yield {
                    "workload": "startup",
                    "tool": tool.name,
                    "files": files,
                    "rep": rep,
                    "ready_ms": ready_ms,
                    "first_child_ms": (run.first_child_ns - run.launched_ns) / 1e6,
                    "change_after_ready_seen": seen,
                    "change_made_ms_after_launch": (t0 - run.launched_ns) / 1e6,
                }
            finally:
                run.stop()


def poll(bench: Bench, tools: list[Tool], peer_python: Path | None) -> Iterator[Result]:
    files = bench.sizes.poll_files
    root, _ = bench.tree(files)
    yield _watchd_scan_cost(root)
    if peer_python is not None:
        yield _django_scan_cost(root, peer_python)
    for tool in tools:
        if tool.name in {"watchd", "django StatReloader"}:
            subject: Tool = Watchd(backend="poll") if isinstance(tool, Watchd) else tool
            run = bench.start(subject, root, files, "poll-idle")
            try:
                cpu, rss = _idle_figures(run, bench.sizes.idle_window)
            finally:
                run.stop()
            yield {
                "workload": "poll",
                "tool": subject.name,
                "files": files,
                "measure": "idle at a 1s interval",
                "cpu_percent": cpu,
                "peak_rss_mb": rss,
            }


def _watchd_scan_cost(root: Path) -> Result:
    scanner = Scanner([root], PathFilter())
    scanner.rescan()  # the first scan records; later ones compare, as the backend does
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        scanner.rescan()
        best = min(best, time.perf_counter() - started)
    count = scanner.watched_paths()
    return {
        "workload": "poll",
        "tool": "watchd [poll]",
        "files": count,
        "measure": "one scan",
        "scan_ms": best * 1e3,
        "us_per_file": best * 1e6 / count,
    }


def _django_scan_cost(root: Path, python: Path) -> Result:
    out = subprocess.run(
        [str(python), str(HERE / "peer_django.py"), "--scan-cost", str(root)],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=str(HERE)),
    )
    found = json.loads(out.stdout)
    return {
        "workload": "poll",
        "tool": "django StatReloader",
        "files": found["files"],
        "measure": "one snapshot (tick)",
        "scan_ms": found["seconds"] * 1e3,
        "us_per_file": found["seconds"] * 1e6 / found["files"],
    }


def many_jobs(bench: Bench) -> Iterator[Result]:
    tool = Watchd()
    workdir = bench.run_dir(tool, "many-jobs")
    workdir.mkdir(parents=True)
    jobs: dict[str, tuple[Path, Record]] = {}
    first_paths: list[Path] = []
    for index in range(bench.sizes.jobs):
        root, paths = bench.tree(bench.sizes.job_files, f"job{index:03d}")
        jobs[f"job{index:03d}"] = (root, Record(workdir / f"record{index:03d}"))
        first_paths = first_paths or paths
    main = tool.write_config(workdir, jobs)
    first = jobs["job000"][1]
    run = tool.launch(main, workdir, first)
    try:
        for record in (record for _, record in jobs.values()):
            record.wait_starts(1, 120)
        children = _all_child_pids(jobs)
        instances, watches = inotify_usage(tool_processes(run.launched.pid, children))
        cpu, rss = _idle_figures(run, bench.sizes.idle_window, children)
        latencies = []
        for _ in range(3 if bench.quick else 10):
            bench.gap(tool, 0)
            latencies.append(bench.change(run, bench.random.choice(first_paths))[1])
        others_kept = all(len(record.starts()) == 1 for _, record in list(jobs.values())[1:])
        yield {
            "workload": "many_jobs",
            "tool": tool.name,
            "jobs": bench.sizes.jobs,
            "files_per_job": bench.sizes.job_files,
            "ready_ms": (run.ready_ns - run.launched_ns) / 1e6,
            "window_s": bench.sizes.idle_window,
            "peak_rss_mb": rss,
            "cpu_percent": cpu,
            "inotify_instances": instances,
            "inotify_watches": watches,
            "one_job_new_child_ms": latencies,
            "other_jobs_untouched": others_kept,
        }
    finally:
        run.stop()


def _all_child_pids(jobs: dict[str, tuple[Path, Record]]) -> set[int]:
    return {stamp.pid for _, record in jobs.values() for stamp in record.starts()}


def hot_reload(bench: Bench) -> Iterator[Result]:
    tool = Watchd()
    workdir = bench.run_dir(tool, "hot-reload")
    workdir.mkdir(parents=True)
    root, _ = bench.tree(100, "reload")
    jobs = {f"kept{i}": (root, Record(workdir / f"kept{i}")) for i in range(3)}
    main = tool.write_config(workdir, jobs)
    run = tool.launch(main, workdir, jobs["kept0"][1])
    try:
        for _, record in jobs.values():
            record.wait_starts(1, 60)
        kept = {name: record.starts()[0].pid for name, (_, record) in jobs.items()}
        for rep in range(bench.sizes.reload_reps):
            added = Record(workdir / f"added{rep}")
            text = tool_job_file(tool, f"added{rep}", root, added)
            staged = workdir / "jobs.d" / f".added{rep}.tmp"
            staged.write_text(text)
            t0 = time.monotonic_ns()
            staged.rename(workdir / "jobs.d" / f"added{rep}.yaml")  # an atomic save
            starts = added.wait_starts(1, 30)
            unchanged = all(
                [stamp.pid for stamp in jobs[name][1].starts()] == [pid]
                for name, pid in kept.items()
            )
            yield {
                "workload": "hot_reload",
                "tool": tool.name,
                "rep": rep,
                "save_to_new_child_ms": (starts[0].ns - t0) / 1e6 if starts else None,
                "untouched_jobs_kept_pids": unchanged,
            }
    finally:
        run.stop()


def tool_job_file(tool: Watchd, name: str, tree: Path, record: Record) -> str:
    return yaml.safe_dump({"jobs": {name: tool.job(tree, record)}})


def child_startup(bench: Bench) -> Iterator[Result]:
    """How long the child itself takes from spawn to its start stamp: the floor of any restart."""
    workdir = bench.workdir / "runs" / "child-startup"
    workdir.mkdir(parents=True, exist_ok=True)
    for rep in range(3 if bench.quick else 10):
        record = Record(workdir / f"record{rep}")
        t0 = time.monotonic_ns()
        process = subprocess.Popen([sys.executable, str(CHILD), str(record.path)])
        try:
            starts = record.wait_starts(1, 30)
        finally:
            process.terminate()
            process.wait(30)
        if starts:
            yield {"workload": "child_startup", "rep": rep, "ms": (starts[0].ns - t0) / 1e6}


def downtime(bench: Bench, chosen: list[Subject]) -> Iterator[Result]:
    return downtime_of(bench.workdir, QUICK_DOWNTIME if bench.quick else DowntimeSizes(), chosen)


def gunicorn(bench: Bench, chosen: list[GunicornSubject]) -> Iterator[Result]:
    return gunicorn_of(bench.workdir, QUICK_GUNICORN if bench.quick else GunicornSizes(), chosen)


def django_reload(bench: Bench, chosen: list[Reloader]) -> Iterator[Result]:
    return django_reload_of(bench.workdir, QUICK_DJANGO if bench.quick else DjangoSizes(), chosen)


def observe(bench: Bench, supervisord: Path | None) -> Iterator[Result]:
    return observe_of(bench, QUICK_OBSERVE if bench.quick else ObserveSizes(), supervisord)


def scale(bench: Bench, tools: list[Tool]) -> Iterator[Result]:
    """A million files (20 to a directory: 51,668 directories) watched by watchd and by
    watchfiles, one after the other on the same tree."""
    files = bench.sizes.scale_files
    root, paths = bench.tree(files, f"scale-{files}", files_per_dir=trees.SCALE_FILES_PER_DIR)
    directories = trees.directories(files, trees.SCALE_FILES_PER_DIR)
    for tool in tools:
        if tool.name not in {"watchd", "watchfiles"}:
            continue
        run = tool.start(root, bench.run_dir(tool, "scale"), warm_up=0, timeout=600)
        try:
            seen_ns = _first_change_acted_on(run, paths, bench)
            time.sleep(1.0 if bench.quick else 3.0)  # the restart's own work is not idle
            ready_ms = (run.ready_ns - run.launched_ns) / 1e6
            seen_ms = None if seen_ns is None else (seen_ns - run.launched_ns) / 1e6
            children = {stamp.pid for stamp in run.record.starts()}
            pids = tool_processes(run.launched.pid, children)
            _, watches = inotify_usage(pids)
            cpu, peak = _idle_figures(run, bench.sizes.idle_window)
            yield {
                "workload": "scale",
                "tool": tool.name,
                "files": files,
                "directories": directories,
                "ready_ms": ready_ms if isinstance(tool, Watchd) else None,
                "change_acted_on_ms": seen_ms,
                "inotify_watches": watches,
                "window_s": bench.sizes.idle_window,
                "cpu_percent": cpu,
                # utime + stime in clock ticks over the window: the resolution of /proc
                "cpu_ticks": round(cpu * bench.sizes.idle_window * CLOCK_TICKS / 100),
                "peak_rss_mb": peak,
                "rss_mb": current_rss_mb(tool_processes(run.launched.pid, children)),
            }
        finally:
            run.stop()


def _first_change_acted_on(run: Run, paths: list[Path], bench: Bench) -> int | None:
    """From the moment the tool is up (watchd: READY=1; a peer: its first child started),
    touch a file every half second until the tool restarts its child: the time of that new
    start (None if none within the limit). A tool still walking the tree misses them."""
    deadline = time.monotonic() + bench.sizes.scale_limit
    while time.monotonic() < deadline:
        trees.touch(bench.random.choice(paths))
        starts = run.record.wait_starts(2, 0.5)
        if starts is not None:
            return starts[1].ns
    return None


WORKLOADS: dict[str, Callable[..., Iterator[Result]]] = {
    "child_startup": child_startup,
    "latency": latency,
    "idle": idle,
    "storm": storm,
    "startup": startup,
    "poll": poll,
    "many_jobs": many_jobs,
    "hot_reload": hot_reload,
    "downtime": downtime,
    "gunicorn": gunicorn,
    "django_reload": django_reload,
    "scale": scale,
    "observe": observe,
}
