"""What seeing what watchd does costs: the event history, ``metrics.listen`` and a
``watchctl events -f`` follower, against watchd without them.

- *idle*: CPU and peak RSS of watchd at 100,000 files with nothing changing, without
  either; with ``metrics.listen`` set and a follower attached; and the same daemon
  scraped as Prometheus would (the first scrape, which loads ``prometheus_client``, is
  made before the window: it is a one-off).
- *restart*: change → new child, the two daemons running side by side on trees of the
  same size, changes made to them in turn (so a noisy neighbour costs both the same).
- *history*: watchd's RSS as its history fills to its bound with small events (the event
  bound) and with large ones (the byte bound), then again: it grows once and no further.

Peers: of the tools measured elsewhere only supervisord has an event stream (event
listeners: processes it writes events to, one at a time, with a 10-event buffer each);
when the peers' venv has it, its idle CPU and RSS are measured with and without one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.downtime import free_port
from bench.procs import Launched, cpu_seconds, current_rss_mb, peak_rss_mb, tool_processes
from bench.records import Record
from bench.tools import CHILD, REPO, Run, Watchd, socket_dir

if TYPE_CHECKING:
    from bench.workloads import Bench

Result = dict[str, Any]
OBSERVED = "watchd (metrics.listen, events -f)"
LISTENING = "watchd (metrics.listen)"  # the history's daemon: no follower


@dataclass(frozen=True)
class ObserveSizes:
    idle_files: int = 100_000
    idle_window: float = 30.0
    scrape_every: float = 15.0  # Prometheus' default scrape_interval is 1m; 15s is common
    restart_files: int = 1_000
    restart_reps: int = 20
    fill_jobs: int = 50  # jobs watching one directory: each write is an event for each
    fill: bool = True  # fill the history to its bounds (False: a few events only)
    settle: float = 5.0  # after start (and its first scrape), before measuring
    fill_limit: float = 120.0  # seconds to fill the history, at most, each time


QUICK_OBSERVE = ObserveSizes(
    idle_files=200,
    idle_window=0.5,
    scrape_every=0.25,
    restart_files=200,
    restart_reps=2,
    fill_jobs=3,
    fill=False,
    settle=0.2,
    fill_limit=10.0,
)


class ObservedWatchd(Watchd):
    """watchd with ``metrics.listen`` set; :func:`follow` attaches the follower."""

    def __init__(self, name: str = OBSERVED) -> None:
        super().__init__()
        self.name = name
        self.port = free_port()

    def write_config(self, workdir: Path, jobs: dict[str, tuple[Path, Record]]) -> Path:
        main = super().write_config(workdir, jobs)
        settings = yaml.safe_load(main.read_text())
        settings["metrics"] = {"listen": f"127.0.0.1:{self.port}"}
        main.write_text(yaml.safe_dump(settings))
        return main

    def scrape(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as response:
            text: str = response.read().decode()
            return text


def follow(run: Run, workdir: Path) -> Launched:
    """``watchctl events -f --json`` on *run*'s daemon, its output to a file."""
    argv = [sys.executable, "-m", "watchd.ctl", "--socket", str(_socket(workdir))]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    follower = Launched([*argv, "events", "-f", "--json"], env, workdir, workdir / "events.log")
    deadline = time.monotonic() + 30
    while (workdir / "events.log").stat().st_size == 0:  # the replay: it is attached
        if time.monotonic() > deadline or not follower.alive():
            follower.stop()
            raise RuntimeError(f"watchctl events -f did not start; see {follower.log}")
        time.sleep(0.01)
    return follower


def _socket(workdir: Path) -> Path:
    return socket_dir(workdir) / "ctl.sock"


def observe(bench: Bench, sizes: ObserveSizes, supervisord: Path | None) -> Iterator[Result]:
    yield from _idle(bench, sizes)
    yield from _restarts(bench, sizes)
    yield from _history(bench, sizes)
    if supervisord is not None:
        yield from _supervisord_idle(bench, sizes, supervisord)


# ---- idle ---------------------------------------------------------------------------


def _no_op() -> None:
    pass


def _windows(
    pids: list[set[int]], window: float, every: float | None = None, act: Callable[[], Any] = _no_op
) -> tuple[list[float], int]:
    """(CPU % of one core used by each set of *pids* over the same *window*, times *act*
    ran: every *every* seconds)."""
    before = [cpu_seconds(group) for group in pids]
    started = time.monotonic()
    acts = 0
    while (left := started + window - time.monotonic()) > 0:
        if every is not None and time.monotonic() >= started + acts * every:
            act()
            acts += 1
        next_act = left if every is None else started + acts * every - time.monotonic()
        time.sleep(max(0.0, min(left, next_act)))
    used = [cpu_seconds(group) - was for group, was in zip(pids, before, strict=True)]
    return [100 * seconds / window for seconds in used], acts


def _own(run: Run) -> set[int]:
    return tool_processes(run.launched.pid, {stamp.pid for stamp in run.record.starts()})


def _idle(bench: Bench, sizes: ObserveSizes) -> Iterator[Result]:
    """Both daemons on the same tree at once, measured over the same windows: whatever
    else happens on the machine (a watched root's parent directories see other programs'
    files come and go) reaches both alike."""
    files = sizes.idle_files
    root, _ = bench.tree(files)
    common = {"workload": "observe", "measure": "idle", "files": files}
    window = sizes.idle_window
    plain, observed = Watchd(), ObservedWatchd()
    runs: list[Run] = []
    follower = None
    try:
        for tool in (plain, observed):
            workdir = bench.run_dir(tool, "observe-idle")
            runs.append(tool.start(root, workdir, warm_up=0, timeout=600))
        follower = follow(runs[1], workdir)
        time.sleep(sizes.settle)
        pids = [_own(run) for run in runs]
        before = cpu_seconds({follower.pid})
        cpus, _ = _windows(pids, window)
        follower_cpu = 100 * (cpu_seconds({follower.pid}) - before) / window
        figures = {"window_s": window, "scrapes": 0}
        yield {
            **common,
            **figures,
            "tool": plain.name,
            "cpu_percent": cpus[0],
            "peak_rss_mb": peak_rss_mb(pids[0]),
        }
        yield {
            **common,
            **figures,
            "tool": observed.name,
            "cpu_percent": cpus[1],
            "peak_rss_mb": peak_rss_mb(pids[1]),
            "follower_cpu_percent": follower_cpu,
        }
        observed.scrape()  # loads prometheus_client: once per daemon, not per scrape
        cpus, scrapes = _windows(pids, window, sizes.scrape_every, observed.scrape)
        yield {
            **common,
            "tool": f"{plain.name} (beside the scraped one)",
            "window_s": window,
            "cpu_percent": cpus[0],
            "peak_rss_mb": peak_rss_mb(pids[0]),
            "scrapes": 0,
        }
        yield {
            **common,
            "tool": f"{observed.name}, scraped",
            "window_s": window,
            "cpu_percent": cpus[1],
            "peak_rss_mb": peak_rss_mb(pids[1]),
            "scrapes": scrapes,
            "scrape_every_s": sizes.scrape_every,
        }
    finally:
        if follower is not None:
            follower.stop()
        for run in runs:
            run.stop()


# ---- restart latency ------------------------------------------------------------------


def _restarts(bench: Bench, sizes: ObserveSizes) -> Iterator[Result]:
    files = sizes.restart_files
    plain, observed = Watchd(), ObservedWatchd()
    runs: list[tuple[Watchd, Run, list[Path]]] = []
    follower = None
    try:
        for tool in (plain, observed):
            root, paths = bench.tree(files, f"observe-{tool is observed:d}-{files}")
            workdir = bench.run_dir(tool, "observe-restart")
            runs.append((tool, tool.start(root, workdir, warm_up=0), paths))
            if tool is observed:
                follower = follow(runs[-1][1], workdir)
        for rep in range(sizes.restart_reps):
            for tool, run, paths in runs if rep % 2 == 0 else runs[::-1]:
                bench.gap(tool, files)
                stop_ms, new_ms = bench.change(run, bench.random.choice(paths))
                yield {
                    "workload": "observe",
                    "measure": "restart",
                    "tool": tool.name,
                    "files": files,
                    "rep": rep,
                    "stop_ms": stop_ms,
                    "new_child_ms": new_ms,
                }
    finally:
        if follower is not None:
            follower.stop()
        for _, run, _ in runs:
            run.stop()


# ---- the history's memory -------------------------------------------------------------


class _Gauges:
    def __init__(self, tool: ObservedWatchd) -> None:
        self._tool = tool

    def read(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for family in text_string_to_metric_families(self._tool.scrape()):
            for sample in family.samples:
                if sample.name.startswith(("watchd_event", "watchd_events")):
                    found[sample.name] = sample.value
        return found


# The control: the same daemon whose history keeps one event (its bounds set in the
# process itself, as no config key sets them).
ONE_EVENT = (
    "import sys, time, watchd.observe.history as h;"
    " h.History.__init__.__defaults__ = (1, 1, time.time);"
    " sys.argv = ['watchd', *sys.argv[1:]];"
    " from watchd.cli import main; sys.exit(main())"
)


class OneEventWatchd(ObservedWatchd):
    """watchd with ``metrics.listen`` and a history of one event."""

    def __init__(self) -> None:
        super().__init__("watchd (metrics.listen, history of 1 event)")

    def daemon_argv(self, main: Path) -> list[str]:
        return [sys.executable, "-c", ONE_EVENT, "run", "-c", str(main)]


def _history(bench: Bench, sizes: ObserveSizes) -> Iterator[Result]:
    """The history's cost: the RSS of watchd as its history fills, beside the same daemon,
    given the same writes, whose history keeps one event (what the rest of watchd does
    with those changes costs both the same)."""
    writes: dict[str, int] = {}
    for tool in (ObservedWatchd(LISTENING), OneEventWatchd()):
        yield from _filled(bench, sizes, tool, writes)


def _filled(
    bench: Bench, sizes: ObserveSizes, tool: ObservedWatchd, writes: dict[str, int]
) -> Iterator[Result]:
    """Fill *tool*'s history with small events, twice, then with large ones, twice; with
    *writes* known (the control), make that many writes each time instead."""
    workdir = bench.run_dir(tool, "observe-history")
    workdir.mkdir(parents=True)
    shared = bench.workdir / "trees" / "observe-fill"
    if shared.exists():
        subprocess.run(["rm", "-rf", str(shared)], check=True)
    # Paths of about 3,000 characters for the large events (20 of them: ~60 KB each).
    deep = shared.joinpath(*[f"{level:02d}" + "d" * 240 for level in range(12)])
    deep.mkdir(parents=True)
    records = {
        f"job{n:02d}": (shared, Record(workdir / f"record{n:02d}")) for n in range(sizes.fill_jobs)
    }
    main = tool.write_config(workdir, records)
    jobs = yaml.safe_load((workdir / "jobs.d" / "bench.yaml").read_text())
    for job in jobs["jobs"].values():
        job["on_change"] = "none"
    (workdir / "jobs.d" / "bench.yaml").write_text(yaml.safe_dump(jobs))
    run = tool.launch(main, workdir, records["job00"][1], timeout=300)
    gauges = _Gauges(tool)
    try:
        for _, record in records.values():
            record.wait_starts(1, 120)
        gauges.read()  # prometheus_client loaded before the baseline
        time.sleep(sizes.settle)
        pid = run.launched.pid
        baseline = current_rss_mb({pid})
        counter = iter(range(10**9))

        def small() -> None:
            _write(shared / f"s{next(counter):06d}")
            time.sleep(0.005)

        def large() -> None:
            burst = next(counter)
            for n in range(20):
                _write(deep / f"l{burst:06d}-{n:02d}")
            time.sleep(0.02)

        for kind, write, limit in (("small", small, 20), ("large", large, 2)):
            filled = _fill(gauges, write, sizes, limit, writes.get(f"{kind}1"))
            rss_filled = current_rss_mb({pid})
            again = _fill(gauges, write, sizes, limit, writes.get(f"{kind}2"))
            writes.setdefault(f"{kind}1", filled["writes"])
            writes.setdefault(f"{kind}2", again["writes"])
            yield {
                "workload": "observe",
                "measure": "history",
                "tool": tool.name,
                "events": kind,
                "jobs": sizes.fill_jobs,
                "writes": filled["writes"] + again["writes"],
                "bound_reached": filled["reached"] and again["reached"],
                "history_events": again["held"],
                "history_bytes": again["bytes"],
                "max_events": again["max_events"],
                "max_bytes": again["max_bytes"],
                "recorded": again["total"],
                "rss_mb_before": baseline,
                "rss_mb_filled": rss_filled,
                "rss_mb_filled_twice": current_rss_mb({pid}),
            }
            baseline = current_rss_mb({pid})
    finally:
        run.stop()


def _write(path: Path) -> None:
    """A new file: one change event for each job."""
    path.write_bytes(b"x\n")


def _fill(
    gauges: _Gauges,
    write: Callable[[], None],
    sizes: ObserveSizes,
    quick_writes: int,
    count: int | None = None,
) -> dict[str, Any]:
    """Write until every event held was recorded by this call and the history is at a
    bound (or, when not filling, *quick_writes* times), for ``fill_limit`` at most; or,
    given a *count*, that many times."""
    start = gauges.read()["watchd_events_total"]
    writes = 0
    deadline = time.monotonic() + sizes.fill_limit
    while True:
        for _ in range(10 if sizes.fill else quick_writes):
            write()
            writes += 1
        now = gauges.read()
        if count is not None and writes < count:
            continue
        held, total = now["watchd_event_history_events"], now["watchd_events_total"]
        at_bound = held >= now["watchd_event_history_max_events"] or (
            now["watchd_event_history_bytes"] > now["watchd_event_history_max_bytes"] * 0.95
        )
        done = count is not None or not sizes.fill or (total - start >= held and at_bound)
        if done or time.monotonic() > deadline:
            return {
                "reached": bool(total - start >= held and at_bound),
                "held": int(held),
                "bytes": int(now["watchd_event_history_bytes"]),
                "total": int(total - start),
                "writes": writes,
                "max_events": int(now["watchd_event_history_max_events"]),
                "max_bytes": int(now["watchd_event_history_max_bytes"]),
            }


# ---- supervisord, with and without an event listener ---------------------------------

LISTENER = """\
import sys
while True:
    sys.stdout.write("READY\\n"); sys.stdout.flush()
    header = dict(x.split(":", 1) for x in sys.stdin.readline().split())
    sys.stdin.read(int(header["len"]))
    sys.stdout.write("RESULT 2\\nOK"); sys.stdout.flush()
"""


def _supervisord_idle(bench: Bench, sizes: ObserveSizes, supervisord: Path) -> Iterator[Result]:
    for listening in (False, True):
        workdir = bench.workdir / "runs" / f"observe-supervisord-{int(listening)}"
        if workdir.exists():
            subprocess.run(["rm", "-rf", str(workdir)], check=True)
        workdir.mkdir(parents=True)
        record = Record(workdir / "record")
        conf = workdir / "supervisord.conf"
        text = (
            "[supervisord]\n"
            f"logfile={workdir / 'supervisord.log'}\n"
            f"pidfile={workdir / 'supervisord.pid'}\n"
            "nodaemon=true\n"
            "[program:job]\n"
            f"command={sys.executable} {CHILD} {record.path}\n"
            "autorestart=true\n"
        )
        if listening:
            (workdir / "listener.py").write_text(LISTENER)
            text += (
                "[eventlistener:listener]\n"
                f"command={sys.executable} {workdir / 'listener.py'}\n"
                "events=PROCESS_STATE,TICK_5\n"
            )
        conf.write_text(text)
        env = dict(os.environ)
        launched = Launched([str(supervisord), "-c", str(conf)], env, workdir, workdir / "log")
        try:
            if record.wait_starts(1, 60) is None:
                raise RuntimeError(f"supervisord: no child; see {launched.log}")
            time.sleep(max(sizes.settle, 1.0))
            children = {stamp.pid for stamp in record.starts()}
            pids = tool_processes(launched.pid, children)
            (cpu,), _ = _windows([pids], sizes.idle_window)
            yield {
                "workload": "observe",
                "measure": "idle",
                "tool": "supervisord" + (" (event listener)" if listening else ""),
                "files": None,
                "window_s": sizes.idle_window,
                "cpu_percent": cpu,
                "peak_rss_mb": peak_rss_mb(pids),
                "scrapes": 0,
            }
        finally:
            launched.stop()
