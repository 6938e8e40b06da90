"""``watchd run|check``: the daemon's own command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from watchd import __version__, lean  # lean first: asyncio without TLS
from watchd.config.loader import load_config
from watchd.config.nodes import shown
from watchd.control.socketfile import SocketPathError
from watchd.daemon import Daemon
from watchd.errors import ConfigError
from watchd.log import setup_logging, shutdown_logging
from watchd.paths import default_config
from watchd.rlimits import raise_open_files_limit
from watchd.supervise import pid1
from watchd.supervise.containment import check_warnings
from watchd.text import counted

# sysexits' EX_CONFIG: the unit's RestartPreventExitStatus= stops a restart loop on it.
EXIT_CONFIG = 78


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="watchd", description="Supervise commands and restart them when their files change."
    )
    parser.add_argument("--version", action="version", version=f"watchd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (
        ("run", "run in the foreground (what the systemd unit runs)"),
        ("check", "validate the config and job files, start nothing"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument(
            "-c",
            "--config",
            type=Path,
            default=Path(os.environ.get("WATCHD_CONFIG") or default_config()),
            help="main config file (default: $WATCHD_CONFIG, else /etc/watchd/watchd.yaml"
            " as root, ~/.config/watchd/watchd.yaml as anyone else)",
        )
    return parser


def check(config_path: Path) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as error:
        print(error, file=sys.stderr)
        count = len(error.issues)
        print(f"{count} error{'s' if count != 1 else ''}; config refused", file=sys.stderr)
        return 1
    for job in config.jobs:
        for warning in check_warnings(job):
            print(warning, file=sys.stderr)
    jobs, files = len(config.jobs), len(config.files)
    print(f"{shown(config.path)}: ok ({counted(jobs, 'job')} in {counted(files, 'file')})")
    return 0


def run(config_path: Path) -> int:
    if pid1.is_init():
        pid1.stop_before_start()
    try:
        config = load_config(config_path)
    except ConfigError as error:
        print(error, file=sys.stderr)
        print("watchd: config refused; not starting", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.log_level)
    raise_open_files_limit()

    async def serve() -> int:
        return await Daemon(config).run()

    try:
        return lean.asyncio_run(serve())
    except SocketPathError as error:
        print(f"watchd: {error}; not starting", file=sys.stderr)
        return 1
    finally:
        shutdown_logging()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check":
        return check(args.config)
    return run(args.config)


if __name__ == "__main__":
    sys.exit(main())
