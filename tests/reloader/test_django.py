"""``manage.py runserver`` with watchd.contrib.django, on a real project made per test."""

from __future__ import annotations

import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.reloader.harness import Program, write_module

pytest.importorskip("django")

MANAGE = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_proj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

SETTINGS = """\
SECRET_KEY = "not secret: a test project"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "site_proj.urls"
INSTALLED_APPS = {apps!r}
MIDDLEWARE = []
DATABASES = {{}}
USE_TZ = True
# Readiness, for the test to wait on: watchd's reloader says when its watches are armed;
# StatReloader, when its first pass has seen a file.
LOGGING = {{
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {{"console": {{"class": "logging.StreamHandler"}}}},
    "loggers": {{
        "watchd.reloader": {{"handlers": ["console"], "level": "DEBUG", "propagate": False}},
        "django.utils.autoreload": {{
            "handlers": ["console"], "level": "DEBUG", "propagate": False
        }},
    }},
}}
"""

URLS = """\
from django.urls import path

from site_proj import views

urlpatterns = [path("", views.version)]
"""

VIEW = """\
from django.http import HttpResponse


def version(request):
    return HttpResponse("{version}")
"""


def make_project(directory: Path, apps: list[str]) -> None:
    package = directory / "site_proj"
    package.mkdir()
    (directory / "manage.py").write_text(MANAGE)
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(SETTINGS.format(apps=apps))
    (package / "urls.py").write_text(URLS)
    write_module(package / "views.py", VIEW.format(version="v1"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body: bytes = response.read()
            return body.decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def runserver(directory: Path, programs: list[Program], apps: list[str]) -> tuple[Program, str]:
    make_project(directory, apps)
    port = free_port()
    program = Program(directory, [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"])
    programs.append(program)
    url = f"http://127.0.0.1:{port}/"
    program.wait(lambda: fetch(url) == "v1", "the server to answer v1", 60)
    return program, url


def armed_marker(reloader: str, directory: Path) -> str:
    """The output line that says the serving process's reloader will see an edit."""
    if reloader == "WatchdReloader":
        return "watchd.reloader: watching"
    return f"{directory / 'site_proj' / 'views.py'} first seen with mtime"


def serve_new_version(program: Program, directory: Path, url: str, version: str) -> float:
    """Edit the view; return the seconds until the new response is served."""
    started = time.monotonic()
    write_module(directory / "site_proj" / "views.py", VIEW.format(version=version))
    program.wait(lambda: fetch(url) == version, f"the server to answer {version}", 60)
    return time.monotonic() - started


@pytest.mark.parametrize("reloader", ["WatchdReloader", "StatReloader"])
def test_runserver_serves_the_edited_view(
    tmp_path: Path, programs: list[Program], reloader: str
) -> None:
    apps = ["watchd.contrib.django"] if reloader == "WatchdReloader" else []
    program, url = runserver(tmp_path, programs, apps)
    program.wait_output(f"Watching for file changes with {reloader}")
    marker = armed_marker(reloader, tmp_path)

    elapsed = []
    for serving, version in enumerate(["v2", "v3", "v4"], start=1):
        program.wait_output(marker, count=serving)
        elapsed.append(serve_new_version(program, tmp_path, url, version))

    program.check_running()
    assert max(elapsed) < 30  # sanity only: timings are for the benchmark suite
    print(f"{reloader}: edit to new response in " + ", ".join(f"{s:.3f}s" for s in elapsed))


def test_runserver_recovers_from_a_syntax_error_in_a_view(
    tmp_path: Path, programs: list[Program]
) -> None:
    program, url = runserver(tmp_path, programs, ["watchd.contrib.django"])
    views = tmp_path / "site_proj" / "views.py"
    program.wait_output("watchd.reloader: watching")

    write_module(views, VIEW.format(version="v2") + "\nnot python at all\n")

    program.wait_output("SyntaxError")
    # runserver's own handling: the serving process stays and watches the broken file.
    program.wait_output(f"watching {views}, which failed to load")
    program.check_running()
    assert serve_new_version(program, tmp_path, url, "v3") < 30


def test_a_broken_models_module_still_reloads_with_watchd(
    tmp_path: Path, programs: list[Program]
) -> None:
    """An error in models.py stops django.setup() before any AppConfig.ready() runs;
    runserver must still use WatchdReloader and reload once the model is fixed."""
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "__init__.py").write_text("")
    write_module(shop / "models.py", "raise RuntimeError('broken model')\n")
    make_project(tmp_path, ["watchd.contrib.django", "shop"])
    port = free_port()
    program = Program(tmp_path, [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"])
    programs.append(program)

    program.wait_output("RuntimeError: broken model")
    program.wait_output("Watching for file changes with WatchdReloader")
    assert "StatReloader" not in program.output()
    program.wait_output("watchd.reloader: watching")
    write_module(shop / "models.py", "")

    url = f"http://127.0.0.1:{port}/"
    program.wait(lambda: fetch(url) == "v1", "the server to answer v1", 60)


def test_a_reload_runs_the_servers_atexit_functions(
    tmp_path: Path, programs: list[Program]
) -> None:
    """The serving process ends quickly on a reload, but what it registered with atexit
    (flushing a log, writing coverage data) still runs, as with Django's sys.exit(3)."""
    exits = tmp_path / "exits.txt"
    program, url = runserver(tmp_path, programs, ["watchd.contrib.django"])
    urls = tmp_path / "site_proj" / "urls.py"
    program.wait_output("watchd.reloader: watching")
    write_module(
        urls,
        f"import atexit, os\n{URLS}\n"
        f"atexit.register(lambda: open({str(exits)!r}, 'a').write(f'{{os.getpid()}}\\n'))\n",
    )
    program.wait_output("watchd.reloader: watching", count=2)  # the server with the new urls

    assert serve_new_version(program, tmp_path, url, "v2") < 30
    program.wait(lambda: exits.exists() and exits.read_text().count("\n") == 1, "one atexit run")
