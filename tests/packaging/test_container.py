"""The container image's recipe: what packaging/Dockerfile copies exists, the config it
installs is valid, and its entry point runs watchd on that config. (Building the image
needs a container engine; tests/integration/test_pid1.py runs watchd as PID 1 without.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "packaging" / "Dockerfile"


def instructions(keyword: str) -> list[str]:
    return re.findall(rf"^{keyword} (.+)$", DOCKERFILE.read_text(), re.MULTILINE)


def test_everything_the_dockerfile_copies_is_in_the_checkout() -> None:
    copied = [line.split()[:-1] for line in instructions("COPY")]
    assert copied
    for sources in copied:
        for source in sources:
            assert (REPO / source).exists(), source


def test_the_image_config_is_valid_and_the_entry_point_runs_it() -> None:
    (entrypoint,) = instructions("ENTRYPOINT")
    argv = json.loads(entrypoint)
    assert argv[:2] == ["watchd", "run"]
    (config,) = [line.split()[-1] for line in instructions("COPY") if "container.yaml" in line]
    assert argv[argv.index("-c") + 1] == config
    result = subprocess.run(
        [sys.executable, "-m", "watchd", "check", "-c", str(REPO / "packaging/container.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert instructions("STOPSIGNAL") == ["SIGTERM"]
