"""Restart a Python program when its code changes: Django's ``run_with_reloader``, on inotify.

::

    from watchd.reloader import is_serving_child, run_with_reloader

    def main(port: int) -> None:
        if is_serving_child():
            start_metrics_thread()  # once, in the process that serves
        serve(port)

    if __name__ == "__main__":
        run_with_reloader(main, 8000, extra_files=["config.toml"])

The process that calls :func:`run_with_reloader` becomes a parent that runs the program
again as a child while the child exits with status 3. The child runs ``main`` in its main
thread and exits 3 as soon as the file of any module it imported (or an extra file)
changes. ``WATCHD_RELOADER_CHILD=true`` is set in the child's environment only; test it
with :func:`is_serving_child`.

From the shell (``watchd-reload`` is the same program)::

    python -m watchd.reloader myapp.server:main --port 8000
    python -m watchd.reloader --watch src --include '*.py' -- gunicorn myapp:app

The first form calls ``myapp.server:main()`` like a console-script entry point (with
``sys.argv`` set to the arguments that follow) under the reloader. The second runs any
command; the parent watches the ``--watch`` paths (default: the working directory) and
restarts the command when they change or when it exits 3.

Environment: ``WATCHD_RELOADER_CHILD`` (``true`` in the serving child) and
``WATCHD_RELOADER_REPORT`` (a file through which the child tells the parent what it had
loaded and why it ended).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watchd.reloader.api import run_with_reloader
    from watchd.reloader.child import CHILD_ENV, is_serving_child
    from watchd.reloader.cli import main
    from watchd.reloader.exiting import RELOAD_STATUS
    from watchd.reloader.report import REPORT_ENV
    from watchd.reloader.sockets import inherited_sockets

# Loaded when first used: a program that needs only the watching (Django's runserver, whose
# every start waits for its imports) does not pay for the parent, the command line and the
# socket configuration it would never run.
_WHERE = {
    "CHILD_ENV": "watchd.reloader.child",
    "RELOAD_STATUS": "watchd.reloader.exiting",
    "REPORT_ENV": "watchd.reloader.report",
    "inherited_sockets": "watchd.reloader.sockets",
    "is_serving_child": "watchd.reloader.child",
    "main": "watchd.reloader.cli",
    "run_with_reloader": "watchd.reloader.api",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CHILD_ENV",
    "RELOAD_STATUS",
    "REPORT_ENV",
    "inherited_sockets",
    "is_serving_child",
    "main",
    "run_with_reloader",
]
