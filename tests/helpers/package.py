"""Building the .deb the way an operator does: `packaging/build-deb`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_DEB = REPO / "packaging" / "build-deb"
SYSTEM_PYTHON = Path("/usr/bin/python3")
MAINTAINER = "Test Maintainer <maintainer@watchd.example.org>"


def build_deb(outdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUILD_DEB), "-o", str(outdir), "--maintainer", MAINTAINER, *args],
        capture_output=True,
        text=True,
        check=False,
    )


def skip_unless_buildable() -> None:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"the package runs on {SYSTEM_PYTHON}, which this machine lacks")
    probe = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import ensurepip, venv, yaml"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(
            f"build-deb needs {SYSTEM_PYTHON} with venv and yaml: python3-venv python3-yaml"
        )


def built_deb(outdir: Path) -> Path:
    skip_unless_buildable()
    result = build_deb(outdir)
    assert result.returncode == 0, f"build-deb failed:\n{result.stdout}\n{result.stderr}"
    (package,) = outdir.glob("watchd_*.deb")
    return package
