"""The peers' own environment: current releases from PyPI, kept apart from watchd's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".peers-venv"
PACKAGES = [
    "watchfiles",
    "watchdog[watchmedo]",
    "hupper",
    "Django",
    "django-watchfiles",
    "supervisor",
    "circus",
]
DISTRIBUTIONS = [
    "watchfiles",
    "watchdog",
    "hupper",
    "Django",
    "django-watchfiles",
    "supervisor",
    "circus",
]


def ensure() -> tuple[Path | None, dict[str, str], str]:
    """(the venv's python, {distribution: version}, why not) — python is None when it fails."""
    python = VENV / "bin" / "python"
    if not python.exists():
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            return None, {}, f"venv failed: {made.stderr.strip()[-300:]}"
    versions = _versions(python)
    if set(versions) != set(DISTRIBUTIONS):
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--upgrade", *PACKAGES],
            capture_output=True,
            text=True,
            check=False,
        )
        if installed.returncode != 0:
            return None, {}, f"pip install failed: {installed.stderr.strip()[-300:]}"
        versions = _versions(python)
    return python, versions, ""


def _versions(python: Path) -> dict[str, str]:
    script = (
        "import json, importlib.metadata as m\n"
        "found = {}\n"
        f"for name in {DISTRIBUTIONS!r}:\n"
        "    try: found[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(found))"
    )
    result = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return {}
    found: dict[str, str] = json.loads(result.stdout)
    return found


if __name__ == "__main__":
    python, versions, why = ensure()
    if python is None:
        sys.exit(f"bench.peers: {why}")
    print(", ".join(f"{name} {version}" for name, version in versions.items()))
