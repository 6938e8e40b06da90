"""`pip install watchd` from the wheel and from the sdist that `python -m build` makes,
each into a fresh venv: the commands run, the schema and example config come along."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What a source tree needs to build from: MANIFEST.in adds config/ to the sdist.
SOURCES = ("pyproject.toml", "README.md", "MANIFEST.in", "watchd", "config")
DATA = {"watchd.schema.json": "config/watchd.schema.json", "watchd.yaml": "config/watchd.yaml"}
# Two venvs, pip and an isolated build on a loaded machine.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel built (the wheel from the sdist) from a copy of the tree."""
    pytest.importorskip("build", reason="python -m build needs the build package ([test] extra)")
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(path, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy(path, source / name)
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(root / "dist"), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return root / "dist"


def installed(artifact: Path, where: Path) -> Path:
    """A fresh venv with *artifact* installed by pip; its bin directory."""
    venv.create(where, with_pip=True)
    result = subprocess.run(
        [str(where / "bin" / "python"), "-m", "pip", "install", "-q", str(artifact)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return where / "bin"


@pytest.mark.parametrize("kind", ["whl", "tar.gz"])
def test_the_built_package_installs_with_its_commands_and_its_data(
    dist: Path, tmp_path: Path, kind: str
) -> None:
    (artifact,) = dist.glob(f"watchd-*.{kind}")
    bin_dir = installed(artifact, tmp_path / "venv")

    version = subprocess.run(
        [str(bin_dir / "watchd"), "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == "watchd 0.1.0"
    help_text = subprocess.run(
        [str(bin_dir / "watchctl"), "--help"], capture_output=True, text=True, check=True
    )
    assert help_text.stdout.startswith("usage: watchctl")
    for name, original in DATA.items():
        shipped = subprocess.run(
            [
                str(bin_dir / "python"),
                "-c",
                "import importlib.resources, sys; "
                "print((importlib.resources.files('watchd') / 'data' / sys.argv[1]).read_text(),"
                " end='')",
                name,
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,  # not the checkout: only the installed watchd is importable
        )
        assert shipped.stdout == (REPO / original).read_text(), name
