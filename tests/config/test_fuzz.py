"""Hypothesis writes hostile main and job files; the loader gives a usable config or
FILE:LINE:COL errors, never an exception of its own. The long run: ``python -m
tests.config.fuzz --seconds 600``."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, seed, settings

from tests.config.fuzz import Files, config_files, load_and_check

SEED = 20261201


@pytest.fixture
def shallow_stack() -> Iterator[None]:
    """Python's default recursion limit, whatever the test runner set."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(old)


@pytest.mark.timeout(300)  # a fixed number of examples, however loaded the machine
@pytest.mark.usefixtures("shallow_stack")
@seed(SEED)
@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(files=config_files())
def test_any_config_files_load_or_are_refused_with_their_place(
    files: Files, tmp_path_factory: pytest.TempPathFactory
) -> None:
    load_and_check(tmp_path_factory.mktemp("fuzz"), files)
