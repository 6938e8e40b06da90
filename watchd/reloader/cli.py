"""``watchd-reload`` (``python -m watchd.reloader``): the reloader from the shell."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from watchd.durations import parse_duration
from watchd.reloader.api import bind_sockets, command_spec, run_with_reloader, serve_command
from watchd.reloader.child import watch_new_modules
from watchd.reloader.watching import DEFAULT_DEBOUNCE, WatchOptions
from watchd.watch.base import Backend

USAGE = """\
watchd-reload [OPTIONS] MODULE:FUNCTION [ARG ...]
       watchd-reload [OPTIONS] -- COMMAND [ARG ...]"""

DESCRIPTION = """\
Run MODULE:FUNCTION (called like a console-script entry point, with sys.argv set to the
arguments that follow) and restart it when the file of any module it imported changes, or
run COMMAND and restart it when a file under the --watch paths changes. Either restarts at
once when the program exits with status 3."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="watchd-reload", usage=USAGE, description=DESCRIPTION)
    parser.add_argument(
        "-w",
        "--watch",
        action="append",
        default=[],
        metavar="PATH",
        help="also watch this file, or directory (recursively); repeatable. "
        "For a COMMAND the default is the working directory",
    )
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="PATTERN",
        help="gitignore-style pattern a change in a watched directory must match; repeatable",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="gitignore-style pattern to ignore (editor temp files, .git/ and __pycache__/ "
        "always are); repeatable",
    )
    parser.add_argument("--backend", choices=[backend.value for backend in Backend], default="auto")
    parser.add_argument(
        "--debounce",
        type=parse_duration,
        default=DEFAULT_DEBOUNCE,
        metavar="DURATION",
        help="quiet time after a change before restarting (default: 50ms)",
    )
    parser.add_argument(
        "--socket",
        action="append",
        default=[],
        metavar="ADDR",
        help="bind this socket once (127.0.0.1:8000, :8000, unix:PATH) and pass it to every "
        "run as fd 3, 4, … with LISTEN_FDS, so no connection is refused during a restart; "
        "repeatable",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only report problems")
    parser.add_argument("target", nargs="?", metavar="MODULE:FUNCTION")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    else:
        sys.argv[1:] = argv  # the child is this program run again with these arguments
    head, separator, tail = _split(list(argv))
    parser = build_parser()
    parsed = parser.parse_args(head)
    _setup_logging(parsed.quiet)
    options = WatchOptions.build(
        parsed.watch, parsed.include, parsed.backend, parsed.debounce, parsed.exclude
    )
    if parsed.target is None:
        if not tail:
            parser.error("give MODULE:FUNCTION, or -- COMMAND")
        held = bind_sockets(parsed.socket, os.path.basename(tail[0]))
        try:
            return serve_command(tail, command_spec(options), options, held)
        finally:
            if held is not None:
                held.close()
    args = [*parsed.args, *([separator, *tail] if separator else [])]
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as ``python -m`` would: find the app from here
    _check_target(parser, parsed.target)
    run_with_reloader(
        call_entry_point,
        parsed.target,
        args,
        extra_files=options.extra_files,
        extra_patterns=options.extra_patterns,
        watch_backend=options.backend,
        debounce=options.debounce,
        sockets=parsed.socket,
    )


def call_entry_point(target: str, args: Sequence[str]) -> NoReturn:
    """Import ``module:function`` and call it as a console script would."""
    module_name, _, attribute = target.partition(":")
    found: object = importlib.import_module(module_name)
    watch_new_modules()  # edits made from now on count, though the app was imported late
    for part in attribute.split("."):
        found = getattr(found, part)
    if not callable(found):
        raise SystemExit(f"watchd-reload: {target} is not callable")
    sys.argv = [target, *args]
    sys.exit(found())


def _split(argv: list[str]) -> tuple[list[str], str, list[str]]:
    """Split at the first ``--``: options (and MODULE:FUNCTION and its arguments) before it,
    a command (or more arguments for MODULE:FUNCTION) after it."""
    if "--" not in argv:
        return argv, "", []
    at = argv.index("--")
    return argv[:at], "--", argv[at + 1 :]


def _check_target(parser: argparse.ArgumentParser, target: str) -> None:
    """Refuse a target that cannot exist; a module that fails to import is left to the
    child, where the failure is reported and retried after the fix."""
    module_name, colon, attribute = target.partition(":")
    if not module_name or not colon or not attribute:
        parser.error(f"expected MODULE:FUNCTION, got {target!r}")
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return
    if found is None:
        parser.error(f"no module named {module_name!r}")


def _setup_logging(quiet: bool) -> None:
    logger = logging.getLogger("watchd.reloader")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
