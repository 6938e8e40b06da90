"""Every reloader program a test starts is stopped, with its whole process group."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reloader.harness import Program

Launch = Callable[..., Program]


@pytest.fixture
def programs() -> Iterator[list[Program]]:
    started: list[Program] = []
    yield started
    for program in started:
        program.close()


@pytest.fixture
def launch_app(tmp_path: Path, programs: list[Program]) -> Launch:
    """Start ``app.py ARGS`` (see harness.APP) under the reloader in *tmp_path*."""

    def launch(*args: str, **env: str) -> Program:
        program = Program.app(tmp_path, *args, **env)
        programs.append(program)
        return program

    return launch
