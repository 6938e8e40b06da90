"""``run_with_reloader`` and the two kinds of parent: one that re-runs this program, one
that runs a command."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from watchd.reloader import report
from watchd.reloader.child import CHILD_ENV, is_serving_child, serve_child
from watchd.reloader.exiting import RELOAD_STATUS
from watchd.reloader.modules import ModuleScanner, source_dirs
from watchd.reloader.parent import Parent, child_arguments
from watchd.reloader.sockets import ParentSockets, SocketSpec
from watchd.reloader.watching import (
    DEFAULT_DEBOUNCE,
    POLL_INTERVAL,
    WatchOptions,
    WatchThread,
    file_specs,
    source_dir_spec,
)
from watchd.watch.base import Backend, WatchSpec

log = logging.getLogger("watchd.reloader")

StrPath = str | os.PathLike[str]


def run_with_reloader(
    main: Callable[..., object],
    *args: Any,
    extra_files: Sequence[StrPath] = (),
    extra_patterns: Sequence[str] = (),
    watch_backend: Backend | str = Backend.AUTO,
    debounce: float = DEFAULT_DEBOUNCE,
    sockets: Sequence[SocketSpec] = (),
    **kwargs: Any,
) -> NoReturn:
    """Run ``main(*args, **kwargs)`` in a child process and restart it when its code changes.

    Django's contract: this process becomes a parent that re-spawns the program (same
    interpreter, same arguments) while it exits with status 3. The child, marked by
    ``WATCHD_RELOADER_CHILD=true`` (see :func:`is_serving_child`), runs ``main`` in its main
    thread and watches the files of every imported module, modules imported later included,
    plus ``extra_files`` (files, or directories watched recursively, where a change must
    match one of the gitignore-style ``extra_patterns`` if any are given); on a change it
    exits 3. ``sys.exit(N)`` in ``main`` ends both processes with N. An exception (a syntax
    error in an edited module) ends the child; the parent then waits for the next change
    and runs it again. SIGTERM and SIGINT to the parent reach the child; the parent waits
    for it and exits with its status.

    ``sockets`` (addresses such as ``"127.0.0.1:8000"``, ``":8000"`` or ``"unix:PATH"``,
    mappings like a job's ``sockets`` entries, or sockets the program bound itself) are
    bound once, in the parent, and passed to every child as fds 3, 4, … with
    ``LISTEN_FDS``, ``LISTEN_FDNAMES`` and ``LISTEN_PID``; the child serves them (see
    :func:`inherited_sockets`), and a client that connects during a reload waits for the
    next child instead of being refused. A socket that cannot be bound ends the program
    with status 1 and the reason. Without ``sockets``, sockets passed to this program the
    same way (by watchd's daemon or systemd) are passed on to each child.
    """
    options = WatchOptions.build(extra_files, extra_patterns, watch_backend, debounce)
    if is_serving_child():
        serve_child(main, args, kwargs, options)
    held = bind_sockets(sockets, program_name())
    try:
        raise SystemExit(serve_parent(options, held))
    finally:
        if held is not None:
            held.close()


def bind_sockets(sockets: Sequence[SocketSpec], name: str) -> ParentSockets | None:
    """The parent's sockets: those given, else those this process was given itself (run by
    watchd's daemon, say), else None; a bad one ends the program, saying why."""
    try:
        held = ParentSockets(sockets, name) if sockets else ParentSockets.inherited()
    except (ValueError, OSError) as error:
        raise SystemExit(f"watchd.reloader: {error}") from None
    if held is not None:
        log.info("watchd.reloader: passing %s to every run", ", ".join(held.addresses()))
    return held


def program_name() -> str:
    """The default LISTEN_FDNAMES entry: the program's module or script name."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is not None:
        return str(spec.parent if spec.name.endswith("__main__") and spec.parent else spec.name)
    return Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "python"


def serve_parent(options: WatchOptions, sockets: ParentSockets | None = None) -> int:
    """Re-run this program as the serving child until it ends; return its last status."""
    argv = child_arguments()
    report_path = report.create()
    env = {**os.environ, CHILD_ENV: "true", report.REPORT_ENV: report_path}
    parent = Parent(sockets=sockets)
    try:
        while True:
            ended = parent.run(argv, env, restart_on_change=False)
            if ended.stop_signal is not None:
                return ended.status
            if ended.status == RELOAD_STATUS:
                continue
            last = report.read(report_path)
            if last.is_from(ended.pid) and not last.failed:
                return ended.status  # the program ended itself: pass its status on
            if not _wait_for_fix(parent, options, last, ended.status):
                return ended.status
    finally:
        report.remove(report_path)


def _wait_for_fix(parent: Parent, options: WatchOptions, last: report.Report, status: int) -> bool:
    """After a failure, watch what the failed child had loaded, the file its error named,
    and new ``*.py`` files beside the program's own modules (a module it was about to
    import for the first time); True once one changes, False on a stop signal."""
    files = last.watch_files() | ModuleScanner().scan()
    specs = [
        *file_specs(files, options.backend),
        source_dir_spec(source_dirs(files)),
        *options.extra_specs(),
    ]
    watcher = WatchThread(parent.on_change, backend=options.backend, debounce=options.debounce)
    watcher.start(specs)
    named = f"{', '.join(sorted(last.error_files))} or " if last.error_files else ""
    log.warning(
        "watchd.reloader: the program failed (exit status %d); waiting for a change to "
        "%sany of its %d files",
        status,
        named,
        len(files),
    )
    try:
        changed = parent.wait_for_change()
    finally:
        watcher.stop()
    if changed:
        log.info("watchd.reloader: %s changed, trying again.", parent.changed_paths[0])
    return changed


def command_spec(options: WatchOptions) -> WatchSpec:
    """What ``-- command`` mode watches: the given paths (default: the working directory)."""
    return WatchSpec(
        options.extra_files or (Path.cwd(),), options.directory_filter(), POLL_INTERVAL
    )


def serve_command(
    command: Sequence[str],
    spec: WatchSpec,
    options: WatchOptions,
    sockets: ParentSockets | None = None,
) -> int:
    """Run *command*, restart it when *spec* sees a change or it exits 3; after any other
    exit, wait for a change and run it again. Return its last status once stopped."""
    parent = Parent(sockets=sockets)
    watcher = WatchThread(parent.on_change, backend=options.backend, debounce=options.debounce)
    watcher.start([spec])
    log.info(
        "watchd.reloader: watching %s with %s",
        ", ".join(str(root) for root in spec.roots),
        watcher.backend,
    )
    env = {key: value for key, value in os.environ.items() if key != report.REPORT_ENV}
    env[CHILD_ENV] = "true"
    status = 0
    try:
        while True:
            try:
                ended = parent.run(command, env, restart_on_change=True)
            except OSError as error:
                log.error("watchd.reloader: cannot run %s: %s", command[0], error.strerror)
                return 126 if isinstance(error, PermissionError) else 127
            status = ended.status
            if ended.stop_signal is not None:
                return status
            if ended.by_change:
                log.info("watchd.reloader: %s changed, restarting.", parent.changed_paths[0])
            elif status != RELOAD_STATUS:
                log.warning(
                    "watchd.reloader: %s exited with status %d; waiting for a change",
                    command[0],
                    status,
                )
                if not parent.wait_for_change():
                    return status
    finally:
        watcher.stop()
