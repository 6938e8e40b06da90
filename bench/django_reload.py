"""Django's runserver on a generated 200-module project under three reloaders: Django's
own ``StatReloader``, ``django-watchfiles`` (a peer, from the peers' venv) and watchd's
``WatchdReloader``. Saved view → new response, saved template → new response, the idle
CPU of runserver (its parent and its serving child, where the reloader runs), and how many
reloads one ``git checkout`` of 100 modules costs."""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import django_project
from bench.downtime import free_port
from bench.procs import Launched, cpu_seconds, descendants

Result = dict[str, Any]
WATCHING = "Watching for file changes with"
SERVE_TIMEOUT = 60.0


@dataclass(frozen=True)
class DjangoSizes:
    modules: int = 200
    saves: int = 10
    # Before each save, runserver must be quiet: its processes used less than quiet_cpu of
    # a core over quiet_window, so the reloader has set up its watching (django-watchfiles
    # sets up again after the first request, which takes seconds).
    quiet_window: float = 0.5
    quiet_cpu: float = 0.05
    ready_limit: float = 60.0
    idle_window: float = 30.0
    checkout_modules: int = 100
    # Once the checkout's view is served and runserver is quiet, this long with the same
    # serving process means no second reload: a reloader that saw a change ends its
    # server within its tick (Django's is 1 s) or debounce.
    checkout_quiet: float = 3.0


QUICK_DJANGO = DjangoSizes(
    modules=40, saves=1, quiet_window=0.3, idle_window=0.5, checkout_modules=10, checkout_quiet=1.0
)


@dataclass(frozen=True)
class Reloader:
    name: str  # the tool, as the report names it
    python: Path
    apps: tuple[str, ...]  # what INSTALLED_APPS gets first


ORDER = ("watchd (WatchdReloader)", "django StatReloader", "django-watchfiles")


def reloaders(peer_python: Path | None, wanted: set[str]) -> list[Reloader]:
    found = []
    if "watchd" in wanted:
        found.append(Reloader(ORDER[0], Path(sys.executable), ("watchd.contrib.django",)))
    if peer_python is not None and "django" in wanted:
        found.append(Reloader(ORDER[1], peer_python, ()))
    if peer_python is not None and "django-watchfiles" in wanted:
        found.append(Reloader(ORDER[2], peer_python, ("django_watchfiles",)))
    return found


class Runserver:
    """``manage.py runserver`` (with its reloader) on the project, its output in a file."""

    def __init__(self, reloader: Reloader, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "runserver.log"
        # No PYTHONPATH: a reloader that watches sys.path's folders (django-watchfiles
        # does) would watch this checkout; watchd's venv finds watchd by its own install.
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        env.update(
            PYTHONDONTWRITEBYTECODE="1",  # a same-size edit within a second is a stale .pyc
            PYTHONUNBUFFERED="1",
        )
        argv = [str(reloader.python), "manage.py", "runserver", f"127.0.0.1:{self.port}"]
        self.launched = Launched(argv, env, root, self.log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def servers_started(self) -> int:
        return self.output().count(WATCHING)

    def get(self, path: str) -> str | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                body: bytes = response.read()
                return body.decode()
        except (urllib.error.URLError, http.client.HTTPException, OSError):
            # Refused, reset or cut short: a server on its way down or not up yet.
            return None

    def wait_for(self, path: str, expected: str, timeout: float = SERVE_TIMEOUT) -> float | None:
        """Poll *path* until its body contains *expected*; the monotonic time then, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.get(path)
            if body is not None and expected in body:
                return time.monotonic()
            if not self.launched.alive():
                return None
            time.sleep(0.005)
        return None

    def stop(self) -> None:
        self.launched.stop()


@dataclass
class Run:
    """One reloader's runserver on its own copy of the project, and what it measured."""

    reloader: Reloader
    server: Runserver
    root: Path
    apps: list[str]
    views: list[float | None] = field(default_factory=list)
    templates: list[float | None] = field(default_factory=list)
    busy: list[float | None] = field(default_factory=list)

    @property
    def app(self) -> str:
        return self.apps[len(self.apps) // 2]

    def base(self, sizes: DjangoSizes) -> Result:
        return {"workload": "django_reload", "tool": self.reloader.name, "modules": sizes.modules}


def django_reload(workdir: Path, sizes: DjangoSizes, chosen: list[Reloader]) -> Iterator[Result]:
    """Every reloader's runserver up at once, each save made to one server at a time, the
    servers taking turns (in a rotating order): the machine's load, which drifts over a
    run, then weighs on all of them alike."""
    runs: list[Run] = []
    try:
        for reloader in chosen:
            safe = "".join(c if c.isalnum() else "-" for c in reloader.name)
            root = workdir / "runs" / f"django-reload-{safe}"
            if root.exists():
                shutil.rmtree(root)
            apps = django_project.build(root, sizes.modules, list(reloader.apps))
            _git(root, "init", "-q")
            _git(root, "add", "-A")
            _git(root, "commit", "-qm", "project")
            runs.append(Run(reloader, Runserver(reloader, root), root, apps))
        yield from _measure(runs, sizes)
    finally:
        for run in runs:
            run.server.stop()


def _measure(runs: list[Run], sizes: DjangoSizes) -> Iterator[Result]:
    for run in runs:
        if run.server.wait_for(f"/{run.app}/", "v0") is None:
            raise RuntimeError(
                f"{run.reloader.name}: runserver never answered; see {run.server.log}"
            )
    for run in runs:
        _wait_quiet(run.server, sizes)
    for save in range(1, sizes.saves + 1):
        turn = save % len(runs)
        for run in runs[turn:] + runs[:turn]:
            _saves(run, save, sizes)
    for run in runs:
        yield {
            **run.base(sizes),
            "measure": "save",
            "view_ms": run.views,
            "template_ms": run.templates,
            "busy_after_view_ms": run.busy,
        }

    # One window for all: nothing changes on purpose.
    pids = [descendants(run.server.launched.pid) for run in runs]
    before = [cpu_seconds(group) for group in pids]
    time.sleep(sizes.idle_window)
    for run, group, used in zip(runs, pids, before, strict=True):
        yield {
            **run.base(sizes),
            "measure": "idle",
            "window_s": sizes.idle_window,
            "cpu_percent": 100 * (cpu_seconds(group) - used) / sizes.idle_window,
        }

    for run in runs:
        yield {
            **run.base(sizes),
            "measure": "checkout",
            **_checkout(run.server, run.root, run.apps, sizes),
        }


def _saves(run: Run, save: int, sizes: DjangoSizes) -> None:
    """Save the view, then the template, each once the server is quiet."""
    server, root, app = run.server, run.root, run.app
    started = time.monotonic()
    django_project.write_view(root, app, f"v{save}")
    served = server.wait_for(f"/{app}/", f"v{save}")
    run.views.append(None if served is None else (served - started) * 1e3)
    quiet = _wait_quiet(server, sizes)
    run.busy.append(None if served is None or quiet is None else (quiet - served) * 1e3)
    # The new server renders the page once, so the template is in Django's cache: the
    # save below is then seen only if the reloader tells Django to reset the cache.
    server.wait_for(f"/{app}/page/", f"t{save - 1}")
    started = time.monotonic()
    django_project.write_template(root, app, f"t{save}")
    served = server.wait_for(f"/{app}/page/", f"t{save}")
    run.templates.append(None if served is None else (served - started) * 1e3)
    _wait_quiet(server, sizes)


def _checkout(server: Runserver, root: Path, apps: list[str], sizes: DjangoSizes) -> Result:
    """Commit a branch that changes *checkout_modules* modules (a view among them), go back,
    then check it out; count the servers runserver started until the view's new text was
    served and the serving process stayed the same for *checkout_quiet* seconds."""
    app = apps[len(apps) // 2]
    _git(root, "checkout", "-qb", "other")
    changed = django_project.helper_files(root, apps)[: sizes.checkout_modules - 1]
    for path in changed:
        path.write_text(path.read_text() + "\nCHANGED = True\n")
    django_project.write_view(root, app, "checked-out")
    _git(root, "commit", "-qam", "change many modules")
    _git(root, "checkout", "-q", "-")  # back to the first commit: the server reloads
    server.wait_for(f"/{app}/", "v0")
    _settle(server, sizes)
    before = server.servers_started()
    started = time.monotonic()
    _git(root, "checkout", "-q", "other")
    served = server.wait_for(f"/{app}/", "checked-out")
    _settle(server, sizes)
    return {
        "checkout_modules": len(changed) + 1,
        "reloads": server.servers_started() - before,
        "checkout_to_new_response_ms": None if served is None else (served - started) * 1e3,
    }


def _wait_quiet(server: Runserver, sizes: DjangoSizes) -> float | None:
    """Wait until runserver's processes used less than *quiet_cpu* of a core over one
    *quiet_window*: the reloader's set-up is over. The monotonic time when that window
    began (set-up ended within it), or None after *ready_limit*."""
    deadline = time.monotonic() + sizes.ready_limit
    pids = descendants(server.launched.pid)
    since, used = time.monotonic(), cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(sizes.quiet_window)
        now_pids = descendants(server.launched.pid)
        now, now_used = time.monotonic(), cpu_seconds(now_pids)
        if now_pids == pids and (now_used - used) / (now - since) < sizes.quiet_cpu:
            return since
        pids, since, used = now_pids, now, now_used
    return None


def _settle(server: Runserver, sizes: DjangoSizes, limit: float = 120.0) -> None:
    """Wait until runserver is quiet and its serving process has stayed the same for
    *checkout_quiet* seconds: a reload in progress, if any, has started its server."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        _wait_quiet(server, sizes)
        pids = descendants(server.launched.pid)
        steady = time.monotonic() + sizes.checkout_quiet
        while time.monotonic() < steady and descendants(server.launched.pid) >= pids:
            time.sleep(0.05)
        if time.monotonic() >= steady:
            return


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", *args],
        cwd=root,
        check=True,
        stdout=subprocess.DEVNULL,
    )
