"""``python -m bench all [--quick] [--tools …] [--out DIR]``: measure, then report.

Writes ``results.jsonl`` (one record per measurement) and ``REPORT.md`` to ``--out``
(default ``bench/results``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import peers, report, targets
from bench.django_reload import DjangoSizes
from bench.django_reload import reloaders as django_reloaders
from bench.downtime import subjects as downtime_subjects
from bench.gunicorn_restart import GunicornSizes
from bench.gunicorn_restart import subjects as gunicorn_subjects
from bench.records import Record
from bench.tools import Tool, Watchd
from bench.tools import peers as peer_tools
from bench.workloads import QUICK, WORKLOADS, Bench, Sizes

HERE = Path(__file__).resolve().parent
TOOL_NAMES = ("watchd", *report.PEER_ORDER)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "workloads",
        nargs="+",
        choices=["all", "report", *WORKLOADS],
        help="what to measure; `report` only renders REPORT.md again from --out",
    )
    parser.add_argument("--quick", action="store_true", help="every workload once, small sizes")
    parser.add_argument(
        "--tools", default=",".join(TOOL_NAMES), help=f"comma-separated, of {','.join(TOOL_NAMES)}"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the records already in --out, replacing those of the workloads and tools"
        " measured now",
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("/tmp/watchd-bench"), help="trees and runs go here"
    )
    return parser


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return (
        f"{os.cpu_count()} × {cpu}; Linux {platform.release()}; Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workloads == ["report"]:
        return _render_again(args.out)
    wanted = set(args.tools.split(","))
    names = list(WORKLOADS) if "all" in args.workloads else ["child_startup", *args.workloads]
    sizes: Sizes = QUICK if args.quick else Sizes()
    python: Path | None = None
    versions: dict[str, str] = {}
    if wanted - {"watchd"}:
        python, versions, why = peers.ensure()
        if python is None:
            print(f"bench: peers unavailable ({why}); measuring watchd alone", file=sys.stderr)
    tools: list[Tool] = []
    if "watchd" in wanted:
        tools.append(Watchd())
    chosen = [t for t in peer_tools(python) if t.name.split()[0] in wanted]
    # watchd at its default, at watchfiles' 50 ms quiet step, and with no debounce at all.
    variants = [Watchd("50ms"), Watchd("0ms")] if "watchd" in wanted else []
    latency_tools: list[Tool] = [*tools, *variants, *chosen]
    tools += chosen

    args.out.mkdir(parents=True, exist_ok=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.workdir, sizes)
    results_path = args.out / "results.jsonl"
    started = time.monotonic()

    produce = _producer(
        bench,
        wanted,
        python=python,
        tools=tools,
        latency_tools=latency_tools,
        peers_chosen=bool(chosen),
    )
    results = _measure(names, produce, args.out / "new.jsonl")
    elapsed = time.monotonic() - started
    header = _header(
        args=args, argv=argv, tools=tools, versions=versions, sizes=sizes, elapsed=elapsed
    )
    meta_path = args.out / "header.json"
    if args.merge and results_path.exists() and meta_path.exists():
        results = _merged(results_path, results)
        command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
        header = [*json.loads(meta_path.read_text()), f"Re-measured later: `{command}`.", ""]
    meta_path.write_text(json.dumps(header))
    with open(results_path, "w") as out:
        out.writelines(json.dumps(result) + "\n" for result in results)
    (args.out / "new.jsonl").unlink()
    _write_report(args.out, results, header, sizes)
    print(f"bench: {len(results)} records in {results_path}; report in {args.out / 'REPORT.md'}")
    return 0


def _producer(
    bench: Bench,
    wanted: set[str],
    *,
    python: Path | None,
    tools: list[Tool],
    latency_tools: list[Tool],
    peers_chosen: bool,
) -> Callable[[str], Iterator[dict[str, Any]]]:
    """Each workload's records, by name, for the tools wanted."""

    def produce(name: str) -> Iterator[dict[str, Any]]:
        workload = WORKLOADS[name]
        if name in ("child_startup", "many_jobs", "hot_reload"):
            return workload(bench) if "watchd" in wanted else iter(())
        if name == "latency":
            return workload(bench, latency_tools)
        if name == "poll":
            return workload(bench, tools, python if peers_chosen else None)
        if name == "downtime":
            return workload(bench, downtime_subjects(python, wanted))
        if name == "gunicorn":
            return workload(bench, gunicorn_subjects(python, wanted))
        if name == "django_reload":
            return workload(bench, django_reloaders(python, wanted))
        if name == "observe":
            return workload(bench, _supervisord(python, wanted)) if "watchd" in wanted else iter(())
        return workload(bench, tools)

    return produce


def _supervisord(python: Path | None, wanted: set[str]) -> Path | None:
    """The peers' supervisord, when it is wanted and there."""
    if python is None or "supervisord" not in wanted:
        return None
    found = python.parent / "supervisord"
    return found if found.exists() else None


def _render_again(out: Path) -> int:
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    header = json.loads((out / "header.json").read_text())
    _write_report(out, results, header, Sizes())
    return 0


def _write_report(
    out: Path, results: list[dict[str, Any]], header: list[str], sizes: Sizes
) -> None:
    text = report.render(results, header, _notes(sizes))
    verdicts = targets.check(results)
    if verdicts:
        text += "\n### Targets\n\n" + "\n".join(targets.render(verdicts))
    (out / "REPORT.md").write_text(text)


def _measure(
    names: list[str], produce: Callable[[str], Iterator[dict[str, Any]]], scratch: Path
) -> list[dict[str, Any]]:
    """Every record of every workload, also written to *scratch* as it comes (for a look)."""
    results = []
    with open(scratch, "w") as out:
        for name in names:
            print(f"bench: {name}", file=sys.stderr, flush=True)
            for result in produce(name):
                results.append(result)
                out.write(json.dumps(result) + "\n")
                out.flush()
    return results


def _merged(path: Path, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records in *path*, those of the (workload, tool) pairs in *new* replaced by it."""
    replaced = {(r["workload"], r.get("tool")) for r in new}
    old = [json.loads(line) for line in path.read_text().splitlines()]
    kept = [r for r in old if (r["workload"], r.get("tool")) not in replaced]
    return [*kept, *new]


def _header(
    *,
    args: argparse.Namespace,
    argv: list[str] | None,
    tools: list[Tool],
    versions: dict[str, str],
    sizes: Sizes,
    elapsed: float,
) -> list[str]:
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    sample_tree, sample_dir = Path("TREE"), args.workdir / "runs" / "example"
    record = Record.__new__(Record)
    record.path = Path("RECORD")
    lines = [
        f"Measured with `{command}` in {elapsed / 60:.1f} min on: {machine()}.",
        "",
        "Peers (current PyPI releases, in their own venv): "
        + (", ".join(f"{k} {v}" for k, v in versions.items()) or "none"),
        "",
        "How each tool was run (TREE is the watched tree, RECORD the child's stamp file):",
        "",
    ]
    for tool in tools:
        shown = "watchd run -c watchd.yaml (job: command child.py RECORD, watch.paths [TREE])"
        if not isinstance(tool, Watchd):
            shown = tool.command_line(sample_tree, record, sample_dir)
            shown = shown.replace(str(HERE) + "/", "bench/")
            shown = shown.replace(str(peers.VENV), ".peers-venv")
        lines.append(f"- **{tool.name}** (debounce: {tool.debounce}): `{shown}`")
    lines += [
        "",
        "Every time stamp comes from the child itself (`bench/child.py` writes"
        " `start|signal|exit <pid> <CLOCK_MONOTONIC ns>`). A peer does not say when it is"
        " ready, so after its first child starts it gets a warm-up of"
        f" {'0.5 s' if sizes.latency_reps < 20 else '2 s + 1 s per 10,000 files (at most 15 s)'};"
        " watchd is measured from its `READY=1`.",
        "",
    ]
    return lines


def _notes(sizes: Sizes) -> dict[str, str]:
    return {
        "latency": (
            f"{sizes.latency_reps} changes per tool and size. *→ stop*: the change to the old"
            " child's stop signal (Django's child is ended by `sys.exit(3)`, stamped at exit);"
            " *→ new child*: the change to the new child's start. Between changes a peer gets"
            " time for its new child to set up its watching again; a change it did not act on"
            " within 10 s counts as missed."
        ),
        "idle": (
            "CPU: utime+stime of every process of the tool (the supervised child excluded, but"
            " for Django, whose reloader runs inside the serving child) over"
            f" {sizes.idle_window:g} s with nothing changing, after readiness (and warm-up)."
            " Peak RSS: the sum of VmHWM over the same processes."
        ),
        "storm": (
            f"{sizes.storm_writes:,} of {sizes.storm_files:,} files rewritten back to back; a"
            f" run ends once no new child has started for {sizes.storm_quiet:g} s; *unsettled*:"
            f" the tool was still short of that {sizes.storm_limit:g} s after the storm."
        ),
        "startup": (
            "launch → ready: to watchd's `READY=1` (peers do not say). Then one file is"
            " touched at once (peers: right after their first child started) and the tool"
            " must restart the child within 10 s."
        ),
        "poll": (
            "The cost of one pass over the tree: watchd's poll scanner (a scan that compares"
            " with the previous one) and one `StatReloader.snapshot_files()` pass, best of 3."
            " Then the idle CPU of watchd with `backend: poll` and of Django's reloader."
        ),
        "many_jobs": "One daemon; each job watches its own tree. Latency: one job's file.",
        "hot_reload": "A job file written and renamed into `jobs_dir` while 3 jobs run.",
        "downtime": (
            "One HTTP server (`bench/server.py`: the standard library's threading server,"
            " 0.3 s of start-up, a graceful stop on SIGTERM/SIGINT) under every tool, a load"
            " generator (`bench/loadgen.py`: asyncio clients, one new connection per request,"
            " back to back) running throughout; after a steady spell the server is restarted"
            " again and again, each time once the previous new server has answered. *failed*:"
            " every request that did not get a 200 (refused, reset, timed out after 10 s);"
            " *during restarts*: requests started between a restart's trigger and the first"
            " answer of the new server; *trigger → new server*: that time."
        ),
        "django_reload": (
            f"`manage.py runserver` on a generated project of {DjangoSizes().modules} modules"
            " (`bench/django_project.py`: the project package and 14 apps of views, urls and"
            " helpers, all imported at start, and a template per app), one copy per reloader,"
            " the servers up together and taking turns, save by save, in a rotating order (a"
            " drifting load weighs on all alike). *saved view*: an"
            " editor's save (a new file renamed over the old) to the first response with the"
            " new text; *saved template*: the same for a template the server has rendered"
            " since it started (no restart: Django clears its template cache when the reloader"
            " reports the file). Before each save runserver must be quiet (under"
            f" {DjangoSizes().quiet_cpu:.0%} of a core over {DjangoSizes().quiet_window:g} s):"
            " the reloader has set up its watching; *set-up after answering*: from the new"
            " server's first answer to the start of that quiet window. *idle CPU*:"
            " runserver's parent and serving child (where the reloader runs) over"
            f" {DjangoSizes().idle_window:g} s with nothing changing. *checkout*: servers"
            f" started by one `git checkout` that changes {DjangoSizes().checkout_modules}"
            " modules, counted once the new view is served, runserver is quiet and its"
            f" serving process has stayed the same for {DjangoSizes().checkout_quiet:g} s."
            " WatchdReloader runs on watchd's venv, the others on the peers' (the"
            " same Django release)."
        ),
        "observe": (
            "watchd without `metrics.listen` and without an events follower, against watchd"
            " with `metrics.listen` set and `watchctl events -f --json` attached (its output"
            " to a file). *idle*: CPU and peak RSS of each watchd (the follower's own CPU"
            " beside it), nothing changing, the two on the same tree at once and measured"
            " over the same windows; *scraped*: the same daemon fetched at `/metrics` every"
            " few seconds as Prometheus would (the first fetch, which loads"
            " `prometheus_client`, made before the window). *restart*: change → new child,"
            " both daemons running at once on trees of the same size, changed in turn."
            " *history*: watchd's RSS as its history fills to its bound with small change"
            " events (one path each: the event bound) and with large ones (20 paths of 3,000"
            " characters: the byte bound), then fills again; 1 write is an event for each"
            " job watching the directory. Beside it, given the same writes, the same daemon"
            " with a history of 1 event: what the rest of watchd does with those changes"
            " (paths of 3,000 characters for 50 jobs) costs both the same. supervisord, the"
            " one peer with an event stream (event listeners), idles with and without a"
            " listener subscribed to PROCESS_STATE and TICK_5; no other peer has events or"
            " metrics."
        ),
        "gunicorn": (
            "gunicorn (the release installed beside watchd, for every tool) with"
            f" {GunicornSizes().workers} sync workers and a small WSGI app that answers"
            " `MASTERPID WORKERPID`, under `bench/loadgen.py`'s clients, restarted again and"
            " again, each time once every worker of the new master has answered (a worker"
            " still booting loses a SIGTERM, whoever sends it). `--graceful-timeout` is set"
            " small, so that a restart held up by a worker that missed its master's SIGTERM"
            " shows as one longer than it. watchd's rows hold the socket (`sockets`) and"
            " restart stop-first on a saved file, signalling the whole job (`kill_mode:"
            " group`, the default) or the master alone (`kill_mode: mixed`, as gunicorn's own"
            " systemd unit). *failed*: every request without its 200 (refused, reset, an"
            " empty answer: *closed*, timed out after 10 s); *trigger → new master's first"
            " answer*: from the save or `supervisorctl restart` to the first answer of a"
            " worker booted by the new master."
        ),
        "scale": (
            f"{sizes.scale_files:,} files, 20 to a directory; watchd and watchfiles one after"
            " the other on the same tree. *first change acted on*: from launch, once the tool"
            " is up (watchd: `READY=1`; watchfiles: its first child started), a file is touched"
            " every 0.5 s until the child is restarted; a tool still setting up its watches"
            " misses them. Peak RSS (VmHWM) and CPU over"
            f" {sizes.idle_window:g} s of idle after that."
        ),
    }


if __name__ == "__main__":
    sys.exit(main())
