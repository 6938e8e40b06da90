"""runserver on a socket watchd holds: under the daemon with ``--noreload``, and with its
own reloader (each serving child takes the socket from runserver's parent). A real load
client is never refused while saved views are reloaded."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import Daemon, running_daemon
from tests.helpers.load import Load, get
from tests.helpers.wait import wait_until
from tests.reloader.harness import environment, write_module
from tests.reloader.test_django import VIEW, make_project

pytest.importorskip("django")

SAVES = 5
CLIENTS = 4
# Five reloads of a Django project under load: up to 30 s on a loaded machine.
pytestmark = pytest.mark.timeout(180)


def runserver_job(project: Path, *options: str, **settings: Any) -> dict[str, Any]:
    env = environment(project)
    return {
        # The address runserver is told is not the one it serves: it serves watchd's socket.
        "command": [sys.executable, "manage.py", "runserver", *options, "127.0.0.1:1"],
        "cwd": str(project),
        "env": {key: env[key] for key in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")},
        "sockets": [{"tcp": "127.0.0.1:0", "name": "http"}],
        "stop_timeout": "10s",
        "debounce": "20ms",
        **settings,
    }


def answer(port: int) -> str | None:
    try:
        return get("127.0.0.1", port, 5)
    except OSError:
        return None


def save_views_under_load(daemon: Daemon, project: Path, armed: str | None) -> Load:
    """Save a new view SAVES times under load; before each save, wait for *armed* (the
    line a reloading runserver prints once its watches are set) to have come once more."""
    port = int(daemon.job("web")["sockets"][0].rsplit(":", 1)[1])
    wait_until(lambda: answer(port) == "v1", "runserver to answer v1", 60)
    with Load(port, clients=CLIENTS) as load:
        for save in range(2, SAVES + 2):
            if armed is not None:
                daemon.wait_log(armed, 60, count=save - 1)
            write_module(project / "site_proj" / "views.py", VIEW.format(version=f"v{save}"))
            wait_until(lambda: load.served_by[f"v{save}"] > 0, f"v{save} served", 60)  # noqa: B023
    return load


@pytest.mark.parametrize("reloader", ["daemon", "runserver"])
def test_runserver_on_a_held_socket_refuses_no_connection(tmp_path: Path, reloader: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    make_project(project, ["watchd.contrib.django"])
    armed = None
    if reloader == "daemon":  # watchd restarts runserver --noreload on a save
        job = runserver_job(project, "--noreload", watch={"paths": [str(project)]})
    else:  # runserver's own reloader restarts its serving child; watchd holds the socket
        job = runserver_job(project, on_change="none")
        armed = "watchd.reloader: watching"
    with running_daemon(tmp_path) as daemon:
        daemon.write_jobs("web.yaml", {"web": job})
        daemon.start()
        load = save_views_under_load(daemon, project, armed)
        restarts = daemon.job("web")["restarts"]
    # Connections made between two servers wait in the held socket's backlog. (runserver
    # ends at once on a reload, so the requests it was answering right then, one per client
    # at most, are cut: resets.)
    assert load.errors["ConnectionRefusedError"] == 0, load.errors
    assert load.failures <= SAVES * CLIENTS, load.errors
    assert load.ok > SAVES
    if reloader == "runserver":  # each serving child was runserver's, the job never restarted
        assert daemon.log().count("Watching for file changes with WatchdReloader") == SAVES + 1
        assert restarts == 0
    else:
        assert restarts >= SAVES
