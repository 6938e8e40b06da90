"""``watchctl``: ask a running watchd what it is doing, and tell it what to do."""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from watchd.control.client import ControlClient, Unreachable, socket_path
from watchd.control.protocol import Command, ProtocolError, Request
from watchd.control.status import JobStatus, TriggerRecord
from watchd.durations import format_duration, parse_duration
from watchd.show.colour import Palette, wants_colour
from watchd.show.events import event_line
from watchd.show.logs import LogLines
from watchd.show.screen import Screen
from watchd.supervise.states import StatusWord
from watchd.text import counted

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUNNING, EXIT_UNKNOWN_JOB = 0, 1, 2, 3, 4
WATCH_INTERVAL, MIN_INTERVAL = 2.0, 0.1  # seconds, for status --watch
NAMES_TIMEOUT = 1.0  # seconds a completing shell waits for job names
WATCH_TIMEOUT = 5.0  # seconds a refresh waits for watchd before saying it does not answer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="watchctl", description="Control a running watchd.")
    parser.add_argument(
        "-s",
        "--socket",
        help="control socket (default: $WATCHD_SOCKET, else your own watchd's"
        " $XDG_RUNTIME_DIR/watchd/control.sock if it is listening, else /run/watchd/control.sock)",
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        metavar="WHEN",
        help="colour states: auto (the default: on a terminal, unless NO_COLOR is set),"
        " always or never",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status = commands.add_parser("status", help="show jobs (exit 3 if one shown is not running)")
    status.add_argument("jobs", nargs="*", metavar="JOB")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    # For shell completion: job names, one a line; nothing and exit 1 when none are known.
    status.add_argument("--names", action="store_true", help=argparse.SUPPRESS)
    status.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="show the table again every interval, in place on a terminal, until Ctrl-C",
    )
    status.add_argument(
        "--interval",
        type=_interval,
        metavar="S",
        help=f"seconds between refreshes (default {WATCH_INTERVAL:g}; implies --watch)",
    )
    for name, text in (("start", "start jobs"), ("stop", "stop jobs"), ("restart", "restart jobs")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("jobs", nargs="+", metavar="JOB")
    for name, text in (
        ("hold", "collect changes without acting on them (every job if none is named)"),
        ("release", "act once on the changes collected while held"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("jobs", nargs="*", metavar="JOB")
    commands.add_parser("reload", help="re-read the config now")
    logs = commands.add_parser(
        "logs", help="show jobs' recent output; several jobs interleaved in time order"
    )
    logs.add_argument("jobs", nargs="*", metavar="JOB", help="these jobs (default: every job)")
    logs.add_argument(
        "-n", "--lines", type=int, default=50, help="how many lines, of all together (default 50)"
    )
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument(
        "-t",
        "--timestamps",
        action="store_true",
        help="time and job name before each line (always so for several jobs, or all)",
    )
    events = commands.add_parser("events", help="show what happened: state changes, restarts, …")
    events.add_argument("jobs", nargs="*", metavar="JOB", help="only these jobs' events")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    events.add_argument(
        "--since", type=int, metavar="SEQ", help="only events after this seq (resume from it)"
    )
    events.add_argument("-n", "--lines", type=int, help="only the newest N events of the history")
    commands.add_parser("metrics", help="print the metrics in the Prometheus text format")
    return parser


def _interval(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if seconds < MIN_INTERVAL:
        raise argparse.ArgumentTypeError(f"expected at least {MIN_INTERVAL:g}s, got {text!r}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for option, key in (("-n", "lines"), ("--since", "since")):
        value = getattr(args, key, None)
        if value is not None and value < 0:
            print(f"watchctl: {option} must be 0 or more", file=sys.stderr)
            return EXIT_USAGE
    request = Request(
        Command(args.command),
        tuple(getattr(args, "jobs", ())),
        getattr(args, "lines", None),
        getattr(args, "follow", False),
        getattr(args, "since", None),
    )
    if args.command == "status" and args.names:
        return _names(socket_path(args.socket))
    client = ControlClient(socket_path(args.socket))
    palette = Palette(wants_colour(args.color, sys.stdout))
    try:
        return _run(args, client, request, palette)
    except (Unreachable, ProtocolError, OSError) as error:
        print(f"watchctl: {error}", file=sys.stderr)
        return EXIT_FAILED
    except StopIteration:
        print("watchctl: watchd closed the connection without a reply", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _run(
    args: argparse.Namespace, client: ControlClient, request: Request, palette: Palette
) -> int:
    if args.command == "logs":
        names = list(dict.fromkeys(args.jobs))
        stamped = args.timestamps or len(names) != 1
        if not names:  # the daemon sends every job's lines; their names line the columns up
            jobs = client.request(Request(Command.STATUS)).get("jobs", [])
            names = [str(job["name"]) for job in jobs]
        return _logs(client, request, LogLines(names, stamped, palette))
    if args.command == "metrics":
        return _logs(client, request, LogLines([], False, palette))
    if args.command == "events":
        return _events(client, request, palette, as_json=args.json)
    if args.command == "status" and (args.watch or args.interval is not None):
        if args.json:
            print(
                "watchctl: --watch shows the table; for a stream use: watchctl events -f --json",
                file=sys.stderr,
            )
            return EXIT_USAGE
        return _watch_status(client, request, args.interval or WATCH_INTERVAL, palette)
    reply = client.request(request)
    if not reply.get("ok"):
        print(f"watchctl: {reply.get('error', 'request failed')}", file=sys.stderr)
        return EXIT_UNKNOWN_JOB if reply.get("unknown_jobs") else EXIT_FAILED
    if args.command == "status":
        return _print_status(reply, as_json=args.json, palette=palette)
    if args.command == "reload":
        print(f"reloaded: {reply.get('summary', '')}")
    else:
        print(format_table(_jobs(reply), palette))
    return EXIT_OK


def _names(path: Path) -> int:
    """Job names for a completing shell: quick, and silent when watchd is not there."""
    try:
        reply = ControlClient(path, timeout=NAMES_TIMEOUT).request(Request(Command.STATUS))
        names = [str(job["name"]) for job in reply["jobs"]]
    except Exception:  # whatever went wrong, the shell just offers no names
        return EXIT_FAILED
    print("\n".join(names))
    return EXIT_OK


def _events(client: ControlClient, request: Request, palette: Palette, as_json: bool) -> int:
    try:
        for message in client.stream(request):
            if not message.get("ok", True):
                print(f"watchctl: {message.get('error')}", file=sys.stderr)
                return EXIT_UNKNOWN_JOB if message.get("unknown_jobs") else EXIT_FAILED
            batch = message.get("events", [])
            if "event" in message:
                batch = [message["event"]]
            for event in batch:
                print(json.dumps(event) if as_json else event_line(event, palette))
            sys.stdout.flush()
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK


def _logs(client: ControlClient, request: Request, shown: LogLines) -> int:
    try:
        for message in client.stream(request):
            if not message.get("ok", True):
                print(f"watchctl: {message.get('error')}", file=sys.stderr)
                return EXIT_UNKNOWN_JOB if message.get("unknown_jobs") else EXIT_FAILED
            if "lines" in message:  # a page of the tail: "at" and "job" beside "lines"
                lines = message["lines"]
                stamps, jobs = message.get("at") or [], message.get("job") or []
                for text, at, job in itertools.zip_longest(
                    lines, stamps[: len(lines)], jobs[: len(lines)]
                ):
                    print(shown.line(text, at, job))
            if "line" in message:
                print(
                    shown.line(message["line"], message.get("at"), message.get("job")), flush=True
                )
            if "gap" in message:
                missed = counted(message["gap"], "line")
                print(f"watchctl: {missed} not shown (this reader fell behind)", file=sys.stderr)
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK


def _print_status(reply: dict[str, Any], as_json: bool, palette: Palette) -> int:
    jobs = _jobs(reply)
    if as_json:
        body = {"jobs": [job.to_wire() for job in jobs], "config_error": reply.get("config_error")}
        print(json.dumps(body, indent=2))
    else:
        print(_status_text(reply, jobs, palette))
    # As supervisorctl and the LSB: 3 when any job shown (named, or all) is not running.
    if any(job.state is not StatusWord.RUNNING for job in jobs):
        return EXIT_NOT_RUNNING
    return EXIT_OK


def _status_text(reply: dict[str, Any], jobs: list[JobStatus], palette: Palette) -> str:
    lines = []
    if reply.get("config_error"):
        lines += ["config error (the last good config is running):", reply["config_error"], ""]
    lines.append(format_table(jobs, palette) if jobs else "no jobs")
    return "\n".join(lines + containment_notes(jobs))


def _watch_status(
    client: ControlClient, request: Request, interval: float, palette: Palette
) -> int:
    """The status table every *interval* until Ctrl-C (exit 0), through watchd going away
    and coming back (said in place of the table). Unknown jobs at the start exit 4."""
    client = ControlClient(client.path, timeout=max(interval, WATCH_TIMEOUT))
    screen = Screen(sys.stdout, sys.stdout.isatty())
    every = format_duration(interval)
    down_since: str | None = None
    first = True
    signal.signal(signal.SIGTERM, _terminated)  # the terminal is put back on the way out
    try:
        while True:
            due = time.monotonic() + interval
            header = f"Every {every}: watchctl status {' '.join(request.jobs)}".rstrip()
            header += f"    {time.strftime('%Y-%m-%d %H:%M:%S')}"
            try:
                reply = client.request(request)
                if not reply.get("ok"):
                    if first and reply.get("unknown_jobs"):
                        print(f"watchctl: {reply.get('error')}", file=sys.stderr)
                        return EXIT_UNKNOWN_JOB
                    raise ProtocolError(str(reply.get("error", "request failed")))
                body = _status_text(reply, _jobs(reply), palette)
                down_since = None
            except (Unreachable, ProtocolError, OSError, StopIteration) as error:
                down_since = down_since or time.strftime("%H:%M:%S")
                why = str(error) or "watchd closed the connection without a reply"
                body = palette.bad(f"watchctl: {why}") + (
                    f"\n(since {down_since}; trying again every {every})"
                )
            screen.show(f"{header}\n\n{body}")
            first = False
            time.sleep(max(due - time.monotonic(), 0))
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        screen.close()


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _jobs(reply: dict[str, Any]) -> list[JobStatus]:
    jobs = reply.get("jobs", [])
    if not isinstance(jobs, list):
        raise ProtocolError('malformed reply from watchd: "jobs" must be a list')
    return [JobStatus.from_wire(job) for job in jobs]


def format_table(jobs: Sequence[JobStatus], palette: Palette | None = None) -> str:
    palette = palette or Palette(False)
    header = (
        "JOB",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS",
        "MEM",
        "CPU",
        "LAST TRIGGER",
        "WATCH",
        "STATUS",
    )
    rows = [header] + [_row(job) for job in jobs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for number, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        if number:  # the state word in its colour, padded as if it had none
            word, space, rest = row[1].partition(" ")
            cells[1] = palette.state(word) + space + rest + " " * (widths[1] - len(row[1]))
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _row(job: JobStatus) -> tuple[str, ...]:
    watch = "-"
    if job.backend:
        watch = f"{job.backend}, {counted(job.watched_paths, 'path')}"
    state = job.state.value
    if job.held:
        state += f" (held by {_holder(job.held_by)})"
    return (
        job.name,
        state,
        str(job.pid) if job.pid else "-",
        format_duration(job.uptime) if job.uptime is not None else "-",
        str(job.restarts),
        _size(job.memory_bytes),
        "-" if job.cpu_seconds is None else format_duration(job.cpu_seconds),
        _trigger(job.last_trigger),
        watch,
        job.status_text or "-",  # the child's own STATUS= line
    )


def containment_notes(jobs: Sequence[JobStatus]) -> list[str]:
    """Below the table: jobs not contained by a cgroup, and limits that are not enforced."""
    notes = []
    fallback = [job for job in jobs if job.containment == "process-group"]
    for reason in sorted({str(job.containment_reason) for job in fallback}):
        names = [job.name for job in fallback if str(job.containment_reason) == reason]
        notes.append(
            f"containment: process group only ({reason}) for {', '.join(names)}: "
            "a process that leaves its group survives a stop"
        )
    for job in jobs:
        notes += [f"{job.name}: {warning}" for warning in job.limit_warnings]
    return notes


def _size(value: int | None) -> str:
    """Bytes the way ``ps`` and ``top`` show them: ``812K``, ``41.5M``."""
    if value is None:
        return "-"
    if value < 1024:
        return f"{value}B"
    size = value / 1024
    for unit in ("K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "K" else f"{size:.1f}{unit}"
        size /= 1024
    return "-"


def _holder(held_by: str | None) -> str:
    """``watchctl``, or the lock's last two path components (``.git/index.lock``)."""
    if not held_by or "/" not in held_by:
        return held_by or "?"
    return "/".join(held_by.split("/")[-2:])


def _trigger(trigger: TriggerRecord | None) -> str:
    if trigger is None:
        return "-"
    detail = trigger.detail
    if len(detail) > 48:
        detail = "…" + detail[-47:]
    return f"{trigger.kind}: {detail} ({_when(trigger.at)})"


def _when(stamp: str) -> str:
    """``14:02:11`` today, ``Nov 23 14:02`` before."""
    try:
        moment = time.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return stamp
    if time.strftime("%Y-%m-%d", moment) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", moment)
    return time.strftime("%b %d %H:%M", moment)


if __name__ == "__main__":
    sys.exit(main())
