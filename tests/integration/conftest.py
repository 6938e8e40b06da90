"""An in-process daemon on the real kernel: real inotify, real children, real signals."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.wait import wait_for
from watchd.config.loader import load_config
from watchd.daemon import Daemon


def write_config(directory: Path, jobs: dict[str, Any], socket: Path, **main: Any) -> Path:
    (directory / "jobs.d").mkdir(exist_ok=True)
    settings: dict[str, Any] = {
        "log_level": "debug",
        "jobs_dir": "jobs.d",
        "control": {"socket": str(socket)},
        **main,
    }
    path = directory / "watchd.yaml"
    path.write_text(yaml.safe_dump(settings))
    (directory / "jobs.d" / "jobs.yaml").write_text(yaml.safe_dump({"jobs": jobs}))
    return path


@asynccontextmanager
async def daemon_running(directory: Path, jobs: dict[str, Any]) -> AsyncIterator[Daemon]:
    # Unix socket paths are limited to 108 bytes: keep this one short.
    with tempfile.TemporaryDirectory(prefix="wd", dir="/tmp") as short:
        socket = Path(short) / "control.sock"
        daemon = Daemon(load_config(write_config(directory, jobs, socket)))
        task = asyncio.get_running_loop().create_task(daemon.run())
        try:
            await wait_for(daemon.ready.wait(), "the daemon to be ready")
            yield daemon
        finally:
            daemon.request_stop()
            assert await wait_for(task, "the daemon to stop", 60) == 0
