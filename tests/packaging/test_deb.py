"""The .deb as a Debian administrator inspects it: lintian, its metadata, its files."""

from __future__ import annotations

import gzip
import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.helpers.package import MAINTAINER, build_deb, skip_unless_buildable

ELF = b"\x7fELF"


def field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def contents(deb: Path, tmp_path: Path) -> Path:
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "--extract", str(deb), str(root)], check=True)
    return root


def test_lintian_finds_no_error_and_no_unexplained_warning(deb: Path) -> None:
    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed (apt-get install lintian)")
    result = subprocess.run(
        ["lintian", "--show-overrides", str(deb)], capture_output=True, text=True, check=False
    )
    tags = [line for line in result.stdout.splitlines() if re.match(r"^[EWIPO]: ", line)]
    # Errors and warnings lintian still prints; an overridden one shows as "O:".
    assert [tag for tag in tags if tag[0] in "EW"] == [], result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    overrides = (Path(__file__).parents[2] / "packaging/deb/lintian-overrides").read_text()
    # Each override says why, in the comment right above it.
    lines = overrides.splitlines()
    tagged = [i for i, line in enumerate(lines) if line.startswith("watchd: ")]
    assert tagged
    assert all(i > 0 and lines[i - 1].startswith("# ") for i in tagged), overrides


def test_control_fields_name_the_maintainer_and_the_real_dependencies(deb: Path) -> None:
    assert field(deb, "Maintainer") == MAINTAINER
    assert field(deb, "Architecture") == "all"  # nothing compiled is shipped
    depends = [part.strip() for part in field(deb, "Depends").split(",")]
    assert "python3 (>= 3.11~)" in depends
    # PyYAML is Debian's (its libyaml gets Debian's security updates), not a bundled copy.
    assert "python3-yaml (>= 6.0)" in depends
    assert re.fullmatch(r"\d+\.\d+\.\d+-\d+", field(deb, "Version"))


def test_the_package_ships_a_changelog_copyright_and_no_byte_code(
    deb: Path, tmp_path: Path
) -> None:
    root = contents(deb, tmp_path)
    doc = root / "usr/share/doc/watchd"
    changelog = gzip.decompress((doc / "changelog.Debian.gz").read_bytes()).decode()
    version = field(deb, "Version")
    assert changelog.startswith(f"watchd ({version}) unstable; urgency=medium\n")
    assert f" -- {MAINTAINER}  " in changelog
    copyright_file = (doc / "copyright").read_text()
    assert copyright_file.startswith(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
    )
    private = root / "usr/share/watchd"
    bundled = {info.name.split("-")[0] for info in private.glob("*.dist-info")} - {"watchd"}
    assert bundled == {"inotify_simple", "sdnotify", "pathspec"}
    for name in bundled:
        assert f"usr/share/watchd/{name}" in copyright_file
    assert "License: MPL-2.0\n On Debian systems the full text is in" in copyright_file
    files = [path for path in root.rglob("*") if path.is_file()]
    assert [path for path in files if path.read_bytes()[:4] == ELF] == []
    assert [path for path in root.rglob("__pycache__")] == []
    assert not (private / "yaml").exists()


def test_the_programs_run_from_the_private_directory_with_the_system_python(
    deb: Path, tmp_path: Path
) -> None:
    root = contents(deb, tmp_path)
    script = root / "usr/bin/watchctl"
    assert script.read_text().startswith("#!/usr/bin/python3 -I\n")
    text = script.read_text().replace("/usr/share/watchd", str(root / "usr/share/watchd"))
    result = subprocess.run(
        ["/usr/bin/python3", "-I", "-B", "-c", text, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: watchctl" in result.stdout


def test_a_maintainer_that_is_no_person_is_refused(tmp_path: Path) -> None:
    skip_unless_buildable()
    result = build_deb(tmp_path, "--maintainer", "watchd <root@localhost>")
    assert result.returncode == 1
    assert 'maintainer "watchd <root@localhost>" is not a person' in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_package_holds_unit_files_man_pages_and_examples(deb: Path) -> None:
    listing = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(listing)) as archive:
        names = {name.lstrip(".") for name in archive.getnames()}
    for path in (
        "/lib/systemd/system/watchd.service",
        "/usr/lib/systemd/user/watchd.service",
        "/usr/share/man/man8/watchd.8.gz",
        "/usr/share/man/man1/watchctl.1.gz",
        "/usr/share/man/man5/watchd.yaml.5.gz",
        "/usr/share/doc/watchd/examples/user.yaml",
        "/usr/share/doc/watchd/examples/hardening-looser.conf",
        "/usr/share/doc/watchd/examples/hardening-stricter.conf",
        "/usr/share/doc/watchd/watchd.schema.json",
        "/usr/share/python3/runtime.d/watchd.rtupdate",
    ):
        assert path in names
    for program in ("watchctl", "watchd"):
        assert f"/usr/share/bash-completion/completions/{program}" in names
        assert f"/usr/share/zsh/vendor-completions/_{program}" in names
        assert f"/usr/share/fish/vendor_completions.d/{program}.fish" in names


def test_the_packaged_bash_completion_loads_and_offers_the_commands(
    deb: Path, tmp_path: Path
) -> None:
    root = contents(deb, tmp_path)
    script = root / "usr/share/bash-completion/completions/watchctl"
    program = f"source {script}; COMP_WORDS=(watchctl re); COMP_CWORD=1; _watchctl; "
    program += 'printf "%s\\n" "${COMPREPLY[@]}"'
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["restart", "release", "reload"]
