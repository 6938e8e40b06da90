#!/usr/bin/env python3
"""Split watchd's requirements (pyproject.toml) into Debian packages and bundled ones.

    packaging/debdeps.py pyproject.toml

prints, for build-deb to eval, `debian_depends` (the Depends entries for what Debian
provides, with the same lower bounds) and `bundled` (a bash array of the requirements
to install into /usr/share/watchd). Only pure Python requirements may be bundled:
build-deb refuses a package with compiled code.
"""

from __future__ import annotations

import re
import shlex
import sys
import tomllib

# PyPI name (normalised) -> Debian package. PyYAML's wheel links libyaml in statically;
# Debian's python3-yaml uses Debian's libyaml and gets its security updates.
# prometheus_client: Debian's (0.16 in Debian 12) serves watchd's needs, and a bundled
# copy would bring its own shebangs and a license to quote.
FROM_DEBIAN = {"pyyaml": "python3-yaml", "prometheus-client": "python3-prometheus-client"}

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$")


def split(requirements: list[str]) -> tuple[list[str], list[str]]:
    depends, bundled = [], []
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"debdeps: cannot read requirement {requirement!r}")
        name, spec = re.sub(r"[-_.]+", "-", match[1]).lower(), match[2].strip()
        if name not in FROM_DEBIAN:
            bundled.append(requirement)
            continue
        bounds = re.fullmatch(r"(?:>=\s*([0-9][0-9.]*))?", spec)
        if bounds is None:
            raise SystemExit(f"debdeps: only a lower bound maps to Depends: {requirement!r}")
        package = FROM_DEBIAN[name]
        depends.append(f"{package} (>= {bounds[1]})" if bounds[1] else package)
    return depends, bundled


def main(argv: list[str]) -> int:
    with open(argv[1], "rb") as file:
        project = tomllib.load(file)["project"]
    depends, bundled = split(project.get("dependencies", []))
    print(f"debian_depends={shlex.quote(', '.join(depends))}")
    print(f"bundled=({' '.join(shlex.quote(item) for item in bundled)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
