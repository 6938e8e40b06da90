"""Django's own reloader tests (``tests/utils_tests/test_autoreload.py`` from the installed
Django's source release) pass against WatchdReloader, with inotify and with polling."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.reloader.harness import REPO, environment

django = pytest.importorskip("django")

ROUNDS = 3  # each mode, so a timing that holds only now and then shows up as a failure
# Three rounds of Django's suite (and a download of its sdist): 10-20 s on a loaded machine.
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def django_tests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``tests`` directory of the installed Django's sdist, fetched from the index."""
    where = tmp_path_factory.mktemp("django-sdist")
    fetched = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--disable-pip-version-check",
            "-q",
            "-d",
            str(where),
            f"django=={django.__version__}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    archives = list(where.glob("*.tar.gz"))
    if fetched.returncode != 0 or not archives:
        pytest.skip(f"cannot fetch Django {django.__version__}'s sdist: {fetched.stderr[-300:]}")
    prefix = archives[0].name.removesuffix(".tar.gz") + "/tests/utils_tests/"
    with tarfile.open(archives[0]) as archive:
        members = [member for member in archive.getmembers() if member.name.startswith(prefix)]
        archive.extractall(where, members, filter="data")
    return where / prefix.removesuffix("/utils_tests/")


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_djangos_reloader_tests_pass(django_tests: Path, tmp_path: Path, mode: str) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "tests.reloader.django_suite", str(django_tests), mode, str(ROUNDS)],
        cwd=REPO,
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    report = ran.stdout + ran.stderr
    assert ran.returncode == 0, report
    assert report.count(".test_glob_recursive) ... ok") == ROUNDS
    assert report.count("Ran 7 tests") == ROUNDS
