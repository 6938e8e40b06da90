"""The targets watchd must reach, checked against the measured figures."""

from __future__ import annotations

import os
import statistics
from typing import Any

Result = dict[str, Any]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
Verdict = tuple[str, str, bool | None]  # target, measured, met (None: not measured)


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _of(results: list[Result], workload: str, **match: Any) -> list[Result]:
    return [
        r
        for r in results
        if r["workload"] == workload and all(r.get(k) == v for k, v in match.items())
    ]


def check(results: list[Result]) -> list[Verdict]:
    verdicts: list[Verdict] = []
    child = _median([r["ms"] for r in _of(results, "child_startup")])
    latency = _of(results, "latency", tool="watchd")
    if latency:
        files = max(r["files"] for r in latency)
        at = [r for r in latency if r["files"] == files]
        stop = _median([r["stop_ms"] for r in at])
        new = _median([r["new_child_ms"] for r in at])
        if stop is not None:
            verdicts.append(
                (
                    f"change → stop signal p50 ≤ debounce + 5 ms (105 ms) at {files:,} files",
                    f"{stop:.1f} ms",
                    stop <= 105,
                )
            )
        if new is not None and child is not None:
            limit = 100 + child + 20
            verdicts.append(
                (
                    f"change → new child p50 ≤ debounce + child start-up ({child:.0f} ms) + 20 ms",
                    f"{new:.1f} ms (limit {limit:.0f} ms)",
                    new <= limit,
                )
            )
    idle = {r["files"]: r for r in _of(results, "idle", tool="watchd")}
    if idle:
        top = max(idle)
        cpu = idle[top]["cpu_percent"]
        verdicts.append((f"idle CPU at {top:,} files < 0.1 % of a core", f"{cpu:.3f} %", cpu < 0.1))
        spread = max(r["cpu_percent"] for r in idle.values())
        verdicts.append(
            (
                "idle CPU flat from the smallest to the largest tree",
                ", ".join(f"{f:,}: {r['cpu_percent']:.3f} %" for f, r in sorted(idle.items())),
                spread < 0.1,
            )
        )
        rss = idle[top]["peak_rss_mb"]
        verdicts.append((f"peak RSS at {top:,} files ≤ 40 MB", f"{rss:.1f} MB", rss <= 40))
    storm = _of(results, "storm", tool="watchd")
    if storm:
        counts = [r["restarts"] for r in storm]
        verdicts.append(
            ("storm: exactly 1 restart every repetition", str(counts), all(c == 1 for c in counts))
        )
    startup = _of(results, "startup", tool="watchd")
    if startup:
        ready = max(r["ready_ms"] for r in startup)
        seen = all(r["change_after_ready_seen"] for r in startup)
        verdicts.append(
            (
                f"ready within 1 s at {startup[0]['files']:,} files (worst)",
                f"{ready:.0f} ms",
                ready <= 1000,
            )
        )
        verdicts.append(
            (
                "a change right after ready is always seen",
                f"{sum(r['change_after_ready_seen'] for r in startup)}/{len(startup)}",
                seen,
            )
        )
    scans = {r["tool"]: r for r in _of(results, "poll") if "us_per_file" in r}
    if "watchd [poll]" in scans and "django StatReloader" in scans:
        ratio = scans["django StatReloader"]["us_per_file"] / scans["watchd [poll]"]["us_per_file"]
        verdicts.append(
            ("poll: ≥ 5× cheaper per file than StatReloader", f"{ratio:.1f}×", ratio >= 5)
        )
    for r in _of(results, "many_jobs"):
        verdicts.append(
            (
                f"{r['jobs']} jobs: peak RSS ≤ 80 MB and one inotify instance",
                f"{r['peak_rss_mb']:.1f} MB, {r['inotify_instances']} instance(s)",
                r["peak_rss_mb"] <= 80 and r["inotify_instances"] == 1,
            )
        )
    for r in _of(results, "downtime"):
        if r["tool"].startswith("watchd") and "held socket" in r["tool"]:
            verdicts.append(
                (
                    f"{r['tool']}: 0 failed requests of at least 10,000 (50 clients) during 50"
                    " restarts",
                    f"{r['failed']:,} of {r['requests']:,} ({r['concurrency']} clients,"
                    f" {r['restarts']} restarts)",
                    r["failed"] == 0
                    and r["requests"] >= 10_000
                    and r["concurrency"] >= 50
                    and r["restarts"] >= 50,
                )
            )
        if r["tool"].startswith("watchd (overlap") and r["restart_p99_ms"] is not None:
            ratio = r["restart_p99_ms"] / r["steady_p99_ms"]
            verdicts.append(
                (
                    f"{r['tool']}: p99 during restarts ≤ 2× steady",
                    f"{r['restart_p99_ms']:.0f} ms against {r['steady_p99_ms']:.0f} ms"
                    f" ({ratio:.2f}×)",
                    ratio <= 2,
                )
            )
    verdicts += _scale(results)
    verdicts += _observe(results)
    return verdicts


OBSERVED = "watchd (metrics.listen, events -f)"
LISTENING = "watchd (metrics.listen)"


def _observe(results: list[Result]) -> list[Verdict]:
    verdicts: list[Verdict] = []
    idle = {r["tool"]: r for r in _of(results, "observe", measure="idle")}
    if OBSERVED in idle:
        ours = idle[OBSERVED]
        resolution = 100 / (CLOCK_TICKS * float(ours["window_s"]))
        without = idle.get("watchd")
        verdicts.append(
            (
                f"idle CPU at {ours['files']:,} files with metrics.listen and an events follower"
                f" below one clock tick in {ours['window_s']:g} s",
                f"{ours['cpu_percent']:.3f} %"
                + ("" if without is None else f" (without: {without['cpu_percent']:.3f} %)"),
                ours["cpu_percent"] < resolution / 2,
            )
        )
    starts: dict[str, list[float]] = {}
    for r in _of(results, "observe", measure="restart"):
        if r["new_child_ms"] is not None:
            starts.setdefault(r["tool"], []).append(r["new_child_ms"])
    if "watchd" in starts and OBSERVED in starts:
        p50, p50_ours = statistics.median(starts["watchd"]), statistics.median(starts[OBSERVED])
        # Noise: half the p10-p90 spread of every restart measured, both kinds; 5 ms at least.
        pooled = sorted(starts["watchd"] + starts[OBSERVED])
        p10, p90 = (pooled[round(q * (len(pooled) - 1))] for q in (0.1, 0.9))
        noise = max(5.0, (p90 - p10) / 2)
        verdicts.append(
            (
                "change → new child p50 with metrics.listen and a follower within noise of without",
                f"{p50_ours:.1f} ms against {p50:.1f} ms (noise ±{noise:.1f} ms)",
                abs(p50_ours - p50) <= noise,
            )
        )
    control = {
        r["events"]: r for r in _of(results, "observe", measure="history") if r["tool"] != LISTENING
    }
    for r in _of(results, "observe", measure="history", tool=LISTENING):
        if not r["bound_reached"]:
            continue
        again = r["rss_mb_filled_twice"] - r["rss_mb_filled"]
        verdicts.append(
            (
                f"history of {r['events']} events at its bound ({r['max_events']:,} events,"
                f" {r['max_bytes'] / 2**20:g} MiB): RSS grows ≤ 1 MB more when filled again",
                f"{r['rss_mb_filled'] - r['rss_mb_before']:+.1f} MB, then {again:+.1f} MB",
                again <= 1.0,
            )
        )
        other = control.get(r["events"])
        if other is not None:
            cost = r["rss_mb_filled_twice"] - other["rss_mb_filled_twice"]
            bound = r["max_bytes"] / 2**20
            verdicts.append(
                (
                    f"history of {r['events']} events: RSS beyond a 1-event history's, after the"
                    f" same writes, ≤ its byte bound + 1 MB ({bound + 1:g} MiB)",
                    f"{cost:+.1f} MB",
                    cost <= bound + 1,
                )
            )
    return verdicts


def _scale(results: list[Result]) -> list[Verdict]:
    verdicts: list[Verdict] = []
    scale = {r["tool"]: r for r in _of(results, "scale")}
    if "watchd" in scale:
        ours, theirs = scale["watchd"], scale.get("watchfiles")
        files = ours["files"]
        verdicts.append(
            (
                f"peak RSS at {files:,} files ({ours['directories']:,} directories) ≤ 40 MB",
                f"{ours['peak_rss_mb']:.1f} MB"
                + ("" if theirs is None else f" (watchfiles {theirs['peak_rss_mb']:.1f} MB)"),
                ours["peak_rss_mb"] <= 40,
            )
        )
        if theirs is not None and theirs["change_acted_on_ms"] is not None:
            verdicts.append(
                (
                    f"ready at {files:,} files ≤ watchfiles' first change acted on",
                    f"{ours['ready_ms']:,.0f} ms"
                    f" (watchfiles {theirs['change_acted_on_ms']:,.0f} ms)",
                    ours["ready_ms"] <= theirs["change_acted_on_ms"],
                )
            )
        resolution = 100 / (CLOCK_TICKS * float(ours["window_s"]))
        ticks = ours.get("cpu_ticks", round(ours["cpu_percent"] / resolution))
        verdicts.append(
            (
                f"idle CPU at {files:,} files below one clock tick in {ours['window_s']:g} s",
                f"{ticks} tick(s) of 1/{CLOCK_TICKS} s ({ours['cpu_percent']:.3f} %)",
                ticks == 0,
            )
        )
    return verdicts


def render(verdicts: list[Verdict]) -> list[str]:
    lines = ["| target | measured | met |", "|---|---|---|"]
    for target, measured, met in verdicts:
        lines.append(f"| {target} | {measured} | {'yes' if met else 'NO'} |")
    return [*lines, ""]
