"""Django's run_with_reloader with its StatReloader, watching a tree as a project would.

    python peer_django.py RECORD TREE          the reloading program
    python peer_django.py --scan-cost TREE     µs per file of one StatReloader snapshot

The tree is added through the ``autoreload_started`` signal (``watch_dir(tree, "**/*")``),
the way Django's own template and locale directories are.
"""

from __future__ import annotations

import atexit
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import django
from child import stamp  # type: ignore[import-not-found,unused-ignore]
from django.conf import settings
from django.utils import autoreload

settings.configure(INSTALLED_APPS=[], DEBUG=True)


def scan_cost(tree: str) -> None:
    reloader = autoreload.StatReloader()
    reloader.watch_dir(Path(tree), "**/*")
    files = 0
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        files = sum(1 for _ in reloader.snapshot_files())
        best = min(best, time.perf_counter() - started)
    print(json.dumps({"files": files, "seconds": best}))


def main() -> None:
    record, tree = sys.argv[1], sys.argv[2]

    def watch_tree(sender: autoreload.BaseReloader, **kwargs: Any) -> None:
        sender.watch_dir(Path(tree), "**/*")

    autoreload.autoreload_started.connect(watch_tree)

    def serve() -> None:
        django.setup()
        atexit.register(stamp, record, "exit")  # the reloader ends the child with sys.exit(3)
        stamp(record, "start")
        threading.Event().wait()

    autoreload.run_with_reloader(serve)


if __name__ == "__main__":
    if sys.argv[1] == "--scan-cost":
        scan_cost(sys.argv[2])
    else:
        main()
