"""The man pages say what the README says, list every config key, and render cleanly."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from watchd import cli, ctl
from watchd.config.jobs import JOB_KEYS, WATCH_VALUES
from watchd.config.loader import CONTROL_KEYS, MAIN_KEYS, METRICS_KEYS

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "packaging" / "manpages.py"


def table_keys(markdown: str, title: str) -> set[str]:
    """The keys in the first column of the README table right after *title*."""
    after = markdown.split(title, 1)[1].lstrip("\n")
    rows = [line for line in after.splitlines() if line.startswith("|")][2:]
    end = after.index("\n\n") if "\n\n" in after else len(after)
    rows = [line for line in after[:end].splitlines() if line.startswith("|")][2:]
    keys: set[str] = set()
    for row in rows:
        keys |= set(re.findall(r"`([a-z_.]+)`", row.split("|")[1]))
    return keys


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    outdir = tmp_path_factory.mktemp("man")
    subprocess.run([sys.executable, str(GENERATOR), str(outdir)], check=True, capture_output=True)
    return {path.name: path for path in outdir.iterdir()}


def render(page: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("man") is None:
        pytest.skip("man is not installed (apt-get install man-db)")
    return subprocess.run(
        ["man", "--warnings", "-E", "UTF-8", "-l", str(page)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8", "MAN_KEEP_FORMATTING": ""},
    )


def plain(page: Path) -> str:
    result = render(page)
    assert result.returncode == 0, result.stderr
    return re.sub(r".\x08", "", result.stdout)


def test_the_readme_tables_list_exactly_the_loaders_keys() -> None:
    readme = (REPO / "README.md").read_text()
    main = {f"control.{key}" for key in CONTROL_KEYS} | {f"metrics.{key}" for key in METRICS_KEYS}
    main |= set(MAIN_KEYS) - {"control", "metrics"}
    job = {f"watch.{key}" for key in WATCH_VALUES} | set(JOB_KEYS) - {"watch"}
    assert table_keys(readme, "The main file's keys, with their defaults:") == main
    assert table_keys(readme, "Every job key, with its default:") == job


def test_each_page_renders_without_a_warning(pages: dict[str, Path]) -> None:
    assert sorted(pages) == ["watchctl.1", "watchd.8", "watchd.yaml.5"]
    for page in pages.values():
        result = render(page)
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", f"{page.name}: {result.stderr}"


def test_watchd_yaml_5_lists_every_key_with_its_default(pages: dict[str, Path]) -> None:
    text = plain(pages["watchd.yaml.5"])
    for key in (*JOB_KEYS, *(f"watch.{key}" for key in WATCH_VALUES), "control.socket"):
        if key != "watch":
            assert re.search(rf"^ {{7}}(\S+, )*{re.escape(key)}\b", text, re.M), key
    assert "debounce (default: 100ms)" in text
    assert "stop_timeout (default: 10s)" in text


def test_the_command_pages_show_every_command_and_option(pages: dict[str, Path]) -> None:
    for page, parser in (("watchd.8", cli.build_parser()), ("watchctl.1", ctl.build_parser())):
        text = plain(pages[page])
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert option in text, (page, option)
            commands = action.choices if isinstance(action, argparse._SubParsersAction) else {}
            for command in commands:
                assert re.search(rf"^ {{7}}{command}\b", text, re.M), (page, command)
    watchctl = plain(pages["watchctl.1"])
    assert "Exit status: 0 done; 1 the daemon is unreachable" in " ".join(watchctl.split())


def test_a_readme_without_a_section_a_page_needs_is_refused(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text().replace("## How it behaves", "## Behaviour")
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "packaging", copy / "packaging")
    (copy / "README.md").write_text(readme)
    result = subprocess.run(
        [
            sys.executable,
            str(copy / "packaging/manpages.py"),
            "--modules",
            str(REPO),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "README.md has no section '## How it behaves'" in result.stderr
