"""The Markdown report: one table per workload, ratios against watchd, and the targets."""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

Result = dict[str, Any]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "–"
    return f"{value / base:,.1f}×"


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


PEER_ORDER = (
    "watchfiles",
    "watchmedo",
    "hupper",
    "django",
    "django-watchfiles",
    "supervisord",
    "circus",
)


def _rank(value: Any) -> tuple[int, Any]:
    """Sizes in order; watchd (and its variants) before the peers, the peers in a fixed order."""
    if isinstance(value, str):
        first = value.split()[0]
        return (0 if first == "watchd" else 1 + PEER_ORDER.index(first), value)
    return (0, value)


def _grouped(
    results: list[Result], workload: str, *keys: str
) -> dict[tuple[Any, ...], list[Result]]:
    groups: dict[tuple[Any, ...], list[Result]] = defaultdict(list)
    for result in results:
        if result["workload"] == workload:
            groups[tuple(result.get(key) for key in keys)].append(result)
    return dict(sorted(groups.items(), key=lambda item: tuple(_rank(v) for v in item[0])))


def latency(results: list[Result]) -> list[str]:
    groups = _grouped(results, "latency", "files", "tool")
    base: dict[int, float] = {}
    rows = []
    for (files, tool), group in groups.items():
        stops = [r["stop_ms"] for r in group if r["stop_ms"] is not None]
        starts = [r["new_child_ms"] for r in group if r["new_child_ms"] is not None]
        p50 = statistics.median(starts) if starts else None
        if tool == "watchd" and p50 is not None:
            base[files] = p50
        rows.append((files, tool, group[0]["debounce"], stops, starts, len(group), p50))
    lines = _table(
        [
            "tool",
            "debounce",
            "files",
            "→ stop p50",
            "p90",
            "max",
            "→ new child p50",
            "p90",
            "max",
            "missed",
            "new child p50 vs watchd",
        ],
        [
            [
                tool,
                debounce,
                f"{files:,}",
                *(_ms(quantile(stops, q)) if stops else "–" for q in (0.5, 0.9, 1.0)),
                *(_ms(quantile(starts, q)) if starts else "–" for q in (0.5, 0.9, 1.0)),
                f"{reps - len(starts)}/{reps}",
                _ratio(p50, base.get(files)),
            ]
            for files, tool, debounce, stops, starts, reps, p50 in rows
        ],
    )
    return lines


def _cpu(result: Result) -> str:
    """CPU %, or "< resolution" when not one clock tick was used in the whole window."""
    if result["cpu_percent"] == 0:
        return f"< {_resolution(result):.3f}"
    return f"{result['cpu_percent']:.3f}"


def _resolution(result: Result) -> float:
    """One clock tick over the window, in % of a core: the smallest CPU use that shows."""
    return 100 / (CLOCK_TICKS * float(result["window_s"]))


def _cpu_ratio(result: Result, base: Result | None) -> str:
    if base is None or result is base:
        return "–"
    if base["cpu_percent"] == 0:
        if result["cpu_percent"] == 0:
            return "–"
        return f"> {result['cpu_percent'] / _resolution(base):,.0f}×"
    return _ratio(result["cpu_percent"], base["cpu_percent"])


def idle(results: list[Result]) -> list[str]:
    groups = _grouped(results, "idle", "files", "tool")
    base = {files: g[0] for (files, tool), g in groups.items() if tool == "watchd"}
    return _table(
        ["tool", "files", "CPU (% of one core)", "peak RSS (MB)", "CPU vs watchd"],
        [
            [
                tool,
                f"{files:,}",
                _cpu(g[0]),
                f"{g[0]['peak_rss_mb']:.1f}",
                _cpu_ratio(g[0], base.get(files)),
            ]
            for (files, tool), g in groups.items()
        ],
    )


def storm(results: list[Result]) -> list[str]:
    groups = _grouped(results, "storm", "tool")
    return _table(
        [
            "tool",
            "files / writes",
            "restarts per repetition",
            "last write → new child (ms)",
            "tool survived",
        ],
        [
            [
                tool,
                f"{g[0]['files']:,} / {g[0]['writes']:,}",
                ", ".join(
                    str(r["restarts"]) if r.get("settled", True) else f"{r['restarts']} (unsettled)"
                    for r in g
                ),
                ", ".join(_ms(r["last_write_to_new_child_ms"]) for r in g),
                "yes" if all(r["tool_alive"] for r in g) else "no",
            ]
            for (tool,), g in groups.items()
        ],
    )


def startup(results: list[Result]) -> list[str]:
    groups = _grouped(results, "startup", "tool")

    def median(g: list[Result], key: str) -> str:
        values = [r[key] for r in g if r[key] is not None]
        return _ms(statistics.median(values)) if values else "–"

    return _table(
        [
            "tool",
            "files",
            "launch → ready (ms)",
            "launch → first child (ms)",
            "change right after ready seen",
        ],
        [
            [
                tool,
                f"{g[0]['files']:,}",
                median(g, "ready_ms"),
                median(g, "first_child_ms"),
                f"{sum(r['change_after_ready_seen'] for r in g)}/{len(g)}",
            ]
            for (tool,), g in groups.items()
        ],
    )


def poll(results: list[Result]) -> list[str]:
    scans = [r for r in results if r["workload"] == "poll" and "us_per_file" in r]
    idles = {r["tool"]: r for r in results if r["workload"] == "poll" and "cpu_percent" in r}
    base = next((r["us_per_file"] for r in scans if r["tool"].startswith("watchd")), None)
    return _table(
        ["tool", "paths", "one scan (ms)", "µs per path", "vs watchd", "idle CPU at 1s interval"],
        [
            [
                r["tool"],
                f"{r['files']:,}",
                _ms(r["scan_ms"]),
                f"{r['us_per_file']:.2f}",
                _ratio(r["us_per_file"], base),
                f"{idles[r['tool']]['cpu_percent']:.1f} %" if r["tool"] in idles else "–",
            ]
            for r in scans
        ],
    )


def many_jobs(results: list[Result]) -> list[str]:
    rows = [r for r in results if r["workload"] == "many_jobs"]
    return _table(
        [
            "jobs × files",
            "ready (ms)",
            "peak RSS (MB)",
            "idle CPU (%)",
            "inotify instances",
            "inotify watches",
            "one job → new child p50 (ms)",
            "other jobs untouched",
        ],
        [
            [
                f"{r['jobs']} × {r['files_per_job']:,}",
                _ms(r["ready_ms"]),
                f"{r['peak_rss_mb']:.1f}",
                _cpu(r) if "window_s" in r else f"{r['cpu_percent']:.3f}",
                str(r["inotify_instances"]),
                f"{r['inotify_watches']:,}",
                _ms(statistics.median([v for v in r["one_job_new_child_ms"] if v is not None])),
                "yes" if r["other_jobs_untouched"] else "no",
            ]
            for r in rows
        ],
    )


def hot_reload(results: list[Result]) -> list[str]:
    rows = [r for r in results if r["workload"] == "hot_reload"]
    times = [r["save_to_new_child_ms"] for r in rows if r["save_to_new_child_ms"] is not None]
    if not rows:
        return []
    return _table(
        ["saves", "save → added job's child (ms) p50", "max", "untouched jobs kept their PIDs"],
        [
            [
                str(len(rows)),
                _ms(statistics.median(times)) if times else "–",
                _ms(max(times)) if times else "–",
                "yes" if all(r["untouched_jobs_kept_pids"] for r in rows) else "no",
            ]
        ],
    )


def _failures(r: Result) -> str:
    return ", ".join(f"{n:,} {kind}" for kind, n in sorted(r["failures"].items())) or "–"


def downtime(results: list[Result]) -> list[str]:
    rows = [r for r in results if r["workload"] == "downtime"]
    rows.sort(key=lambda r: _rank(r["tool"]))

    def latencies(r: Result, kind: str) -> str:
        return f"{_ms(r[f'{kind}_p50_ms'])} / {_ms(r[f'{kind}_p99_ms'])}"

    def restart_ms(r: Result) -> str:
        done = [v for v in r["change_to_new_server_ms"] if v is not None]
        if not done:
            return "–"
        return f"{_ms(statistics.median(done))} / {_ms(max(done))}"

    return _table(
        [
            "tool",
            "restarted by",
            "restarts",
            "clients",
            "requests (during restarts)",
            "failed",
            "how they failed",
            "latency p50 / p99 steady (ms)",
            "p50 / p99 during restarts",
            "trigger → new server p50 / max (ms)",
        ],
        [
            [
                r["tool"],
                r["how"],
                str(r["restarts"]),
                str(r["concurrency"]),
                f"{r['requests']:,} ({r['requests_during_restarts']:,})",
                f"{r['failed']:,}",
                _failures(r),
                latencies(r, "steady"),
                latencies(r, "restart"),
                restart_ms(r),
            ]
            for r in rows
        ],
    )


def gunicorn(results: list[Result]) -> list[str]:
    rows = sorted(
        (r for r in results if r["workload"] == "gunicorn"), key=lambda r: _rank(r["tool"])
    )

    def restarts(r: Result) -> str:
        done = [v for v in r["restart_ms"] if v is not None]
        if not done:
            return "–"
        text = " / ".join(_ms(quantile(done, q)) for q in (0.5, 0.9, 1.0))
        return text + (f" ({r['missed']} missed)" if r["missed"] else "")

    return _table(
        [
            "tool",
            "restarted by",
            "restarts",
            "clients",
            "requests",
            "failed",
            "how they failed",
            "trigger → new master's first answer p50 / p90 / max (ms)",
            "restarts longer than the graceful timeout",
        ],
        [
            [
                r["tool"],
                r["how"],
                str(r["restarts"]),
                str(r["concurrency"]),
                f"{r['requests']:,}",
                f"{r['failed']:,}",
                _failures(r),
                restarts(r),
                f"{r['over_graceful_timeout']}/{r['restarts']} (over {r['graceful_timeout_s']} s)",
            ]
            for r in rows
        ],
    )


def django_reload(results: list[Result]) -> list[str]:
    rows = [r for r in results if r["workload"] == "django_reload"]
    by_tool: dict[str, dict[str, Result]] = defaultdict(dict)
    for r in rows:
        by_tool[r["tool"]][r["measure"]] = r

    def spread(values: list[float | None]) -> str:
        done = [v for v in values if v is not None]
        if not done:
            return "–"
        missed = len(values) - len(done)
        text = f"{_ms(statistics.median(done))} / {_ms(quantile(done, 0.9))}"
        return text + (f" ({missed} missed)" if missed else "")

    return _table(
        [
            "reloader",
            "modules",
            "saved view → new response p50 / p90 (ms)",
            "set-up after answering p50 / p90 (ms)",
            "saved template → new response p50 / p90 (ms)",
            "idle CPU (% of one core)",
            "servers started by one checkout (→ new response, ms)",
        ],
        [
            [
                tool,
                str(m["save"]["modules"]) if "save" in m else "–",
                spread(m["save"]["view_ms"]) if "save" in m else "–",
                spread(m["save"].get("busy_after_view_ms", [])) if "save" in m else "–",
                spread(m["save"]["template_ms"]) if "save" in m else "–",
                _cpu(m["idle"]) if "idle" in m else "–",
                _checkout(m["checkout"]) if "checkout" in m else "–",
            ]
            for tool, m in sorted(by_tool.items(), key=lambda item: _rank(item[0]))
        ],
    )


def _checkout(record: Result) -> str:
    served = record.get("checkout_to_new_response_ms")
    after = "not served" if served is None else _ms(served)
    return f"{record['reloads']} for {record['checkout_modules']} modules ({after})"


def scale(results: list[Result]) -> list[str]:
    rows = _grouped(results, "scale", "tool")
    return _table(
        [
            "tool",
            "files / directories",
            "launch → ready (ms)",
            "launch → first change acted on (ms)",
            "inotify watches",
            "peak RSS (MB)",
            "RSS after idle (MB)",
            "idle CPU (% of one core)",
            "idle CPU (clock ticks)",
        ],
        [
            [
                tool,
                f"{g[0]['files']:,} / {g[0]['directories']:,}",
                _ms(g[0]["ready_ms"]),
                _ms(g[0]["change_acted_on_ms"]),
                f"{g[0]['inotify_watches']:,}",
                f"{g[0]['peak_rss_mb']:.1f}",
                f"{g[0]['rss_mb']:.1f}",
                _cpu(g[0]),
                str(g[0].get("cpu_ticks", "–")),
            ]
            for (tool,), g in rows.items()
        ],
    )


def observe(results: list[Result]) -> list[str]:
    rows = [r for r in results if r["workload"] == "observe"]
    idles = sorted((r for r in rows if r["measure"] == "idle"), key=lambda r: _rank(r["tool"]))
    lines = _table(
        ["idle", "files", "CPU (% of one core)", "peak RSS (MB)", "scrapes", "follower CPU (%)"],
        [
            [
                r["tool"],
                "–" if r["files"] is None else f"{r['files']:,}",
                _cpu(r),
                f"{r['peak_rss_mb']:.1f}",
                str(r["scrapes"]) + (f" (every {r['scrape_every_s']:g} s)" if r["scrapes"] else ""),
                f"{r['follower_cpu_percent']:.3f}" if "follower_cpu_percent" in r else "–",
            ]
            for r in idles
        ],
    )
    restarts: dict[str, list[Result]] = defaultdict(list)
    for r in rows:
        if r["measure"] == "restart":
            restarts[r["tool"]].append(r)
    base = None
    rows_out = []
    for tool, group in sorted(restarts.items(), key=lambda item: _rank(item[0])):
        starts = [r["new_child_ms"] for r in group if r["new_child_ms"] is not None]
        p50 = statistics.median(starts) if starts else None
        base = p50 if tool == "watchd" else base
        rows_out.append(
            [
                tool,
                f"{group[0]['files']:,}",
                *(_ms(quantile(starts, q)) if starts else "–" for q in (0.5, 0.9, 1.0)),
                f"{len(group) - len(starts)}/{len(group)}",
                _ratio(p50, base) if tool != "watchd" else "–",
            ]
        )
    lines += _table(
        ["restart", "files", "→ new child p50 (ms)", "p90", "max", "missed", "p50 vs watchd"],
        rows_out,
    )
    history = [r for r in rows if r["measure"] == "history"]
    lines += _table(
        [
            "history filled with",
            "daemon",
            "jobs",
            "held: events / bytes",
            "bound (events / bytes)",
            "RSS before → filled → filled again (MB)",
            "growth (MB)",
        ],
        [
            [
                f"{r['events']} events" + ("" if r["bound_reached"] else " (bound not reached)"),
                r["tool"],
                str(r["jobs"]),
                f"{r['history_events']:,} / {r['history_bytes']:,}",
                f"{r['max_events']:,} / {r['max_bytes']:,}",
                f"{r['rss_mb_before']:.1f} → {r['rss_mb_filled']:.1f} →"
                f" {r['rss_mb_filled_twice']:.1f}",
                f"{r['rss_mb_filled'] - r['rss_mb_before']:+.1f}, then"
                f" {r['rss_mb_filled_twice'] - r['rss_mb_filled']:+.1f}",
            ]
            for r in sorted(history, key=lambda r: (r["events"] != "small", r["tool"]))
        ],
    )
    return lines


SECTIONS: list[tuple[str, str, Callable[[list[Result]], list[str]]]] = [
    ("latency", "1. Latency: a one-byte append to a random watched file", latency),
    ("idle", "2. Idle cost: nothing changes for the whole window", idle),
    ("storm", "3. Storm: thousands of files rewritten as fast as possible", storm),
    ("startup", "4. Startup", startup),
    ("poll", "5. Poll backend against StatReloader", poll),
    ("many_jobs", "6. Many jobs in one daemon", many_jobs),
    ("hot_reload", "7. Hot reload: a new job file saved into jobs_dir", hot_reload),
    ("downtime", "8. Downtime: restarts of a server under continuous load", downtime),
    ("django_reload", "9. Django: runserver's reloaders on a 200-module project", django_reload),
    ("scale", "10. A million files: memory and readiness", scale),
    ("observe", "11. Seeing what it does: the cost of the event history and metrics", observe),
    ("gunicorn", "12. gunicorn restarted under load: who gets the stop signal", gunicorn),
]


def render(results: list[Result], header: list[str], notes: dict[str, str]) -> str:
    lines = [*header, ""]
    for key, title, section in SECTIONS:
        if any(r["workload"] == key for r in results):
            lines += [f"### {title}", ""]
            if key in notes:
                lines += [notes[key], ""]
            lines += section(results)
    return "\n".join(lines)
