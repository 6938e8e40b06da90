"""The system unit as `systemd-analyze security --offline` rates it, with and without the
packaged drop-ins; no running systemd needed (tests/systemd/ rates the installed unit)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "packaging" / "watchd.service"
EXAMPLES = REPO / "packaging" / "examples"
TARGET = 6.0
# The systemd whose ratings the README and the comments state; others weigh differently.
MEASURED_WITH = 252
OVERALL = re.compile(r"Overall exposure level for watchd\.service: (\d+\.\d)")


def rating(dropin: str | None, root: Path) -> float:
    """The unit's offline rating, with the example drop-in *dropin* if given."""
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(UNIT, unit_dir / "watchd.service")
    if dropin is not None:
        (unit_dir / "watchd.service.d").mkdir(exist_ok=True)
        shutil.copy(EXAMPLES / dropin, unit_dir / "watchd.service.d" / dropin)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--root={root}", "watchd.service"],
        capture_output=True,
        text=True,
        check=False,
    )
    found = OVERALL.search(result.stdout)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


def systemd_version() -> int:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    output = subprocess.run(
        ["systemd-analyze", "--version"], capture_output=True, text=True, check=True
    ).stdout
    found = re.match(r"systemd (\d+)", output)
    assert found, output
    return int(found.group(1))


def test_the_unit_is_rated_at_most_the_target(tmp_path: Path) -> None:
    systemd_version()
    assert rating(None, tmp_path) <= TARGET


def test_the_ratings_the_readme_and_the_drop_ins_state_are_the_measured_ones(
    tmp_path: Path,
) -> None:
    if systemd_version() != MEASURED_WITH:
        pytest.skip(f"the stated ratings are systemd {MEASURED_WITH}'s")
    hardened = rating(None, tmp_path / "unit")
    looser = rating("hardening-looser.conf", tmp_path / "looser")
    stricter = rating("hardening-stricter.conf", tmp_path / "stricter")
    assert stricter < hardened < looser
    readme = (REPO / "README.md").read_text()
    assert f"rates it **{hardened} MEDIUM**" in readme
    assert f"`hardening-looser.conf` undoes all of the above ({looser})" in readme
    assert f"`hardening-stricter.conf` ({stricter})" in readme
    assert f"rates this {hardened} (" in UNIT.read_text()
    looser_text = (EXAMPLES / "hardening-looser.conf").read_text()
    stricter_text = (EXAMPLES / "hardening-stricter.conf").read_text()
    assert f"{looser} instead of {hardened})" in looser_text
    assert f"{stricter} instead of {hardened}." in stricter_text
