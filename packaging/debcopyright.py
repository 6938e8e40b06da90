#!/usr/bin/env python3
"""Write the machine-readable debian/copyright of the package from what it bundles.

    packaging/debcopyright.py /path/to/stage/usr/share/watchd

watchd's own stanza, then one per bundled distribution (its *.dist-info): the files it
installed, its copyright holders and its license, taken from its metadata and license file.
A license Debian keeps in /usr/share/common-licenses is referred to; any other is quoted.
The license files themselves are then removed from the dist-info directories: the
copyright file is where Debian looks for them.
"""

from __future__ import annotations

import email.parser
import re
import sys
from pathlib import Path

COMMON = Path("/usr/share/common-licenses")
# Trove classifiers of the bundled packages that name one license unambiguously.
CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
}
WATCHD_YEAR = "2026"
MIT = """\
Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify,
merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
permit persons to whom the Software is furnished to do so, subject to the following
conditions:

The above copyright notice and this permission notice shall be included in all copies
or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A
PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR
THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""
_COPYRIGHT_LINE = re.compile(r"^\s*Copyright\s*(?:\(c\)|©)?\s*(.+?)\s*$", re.IGNORECASE)


def field(text: str) -> str:
    """Text as a continuation of a deb822 field: indented, blank lines as ' .'."""
    lines = text.strip("\n").splitlines()
    return "\n".join(f" {line.rstrip()}" if line.strip() else " ." for line in lines)


def _license_id(metadata: email.message.Message) -> str:
    if metadata["License-Expression"]:
        return str(metadata["License-Expression"]).strip()
    for classifier in metadata.get_all("Classifier") or []:
        if classifier in CLASSIFIERS:
            return CLASSIFIERS[classifier]
    raise SystemExit(f"debcopyright: no license id for {metadata['Name']}; add its classifier")


def _holders(metadata: email.message.Message, license_text: str) -> str:
    found = [m[1] for line in license_text.splitlines() if (m := _COPYRIGHT_LINE.match(line))]
    if found:
        return "\n ".join(found)
    author = metadata["Author"] or re.sub(r"\s*<[^>]*>", "", metadata["Author-email"] or "")
    if not author:
        raise SystemExit(f"debcopyright: no copyright holder for {metadata['Name']}")
    return author.strip().strip('"')


def stanzas(share: Path) -> tuple[list[str], dict[str, str]]:
    files, licenses = [], {"MIT": MIT}
    for info in sorted(share.glob("*.dist-info")):
        metadata = email.parser.Parser().parsestr((info / "METADATA").read_text("utf-8"))
        if metadata["Name"] == "watchd":
            continue
        license_files = sorted(p for p in info.rglob("*") if p.is_file() and "licenses" in p.parts)
        text = "\n".join(p.read_text("utf-8") for p in license_files)
        identifier = _license_id(metadata)
        tops = sorted(
            {
                line.split(",", 1)[0].split("/", 1)[0]
                for line in (info / "RECORD").read_text("utf-8").splitlines()
                if line and not line.startswith(info.name)
            }
        )
        paths = " ".join(
            f"usr/share/watchd/{top}{'/*' if (share / top).is_dir() else ''}" for top in tops
        )
        files.append(
            f"Files: {paths} usr/share/watchd/{info.name}/*\n"
            f"Copyright: {_holders(metadata, text)}\n"
            f"License: {identifier}\n"
            f"Comment: {metadata['Name']} {metadata['Version']}, bundled: Debian 12 lacks it or has"
            " an older version."
        )
        if identifier not in licenses:
            if (COMMON / identifier).exists():
                licenses[identifier] = (
                    f"On Debian systems the full text is in {COMMON / identifier}."
                )
            else:
                body = "\n".join(
                    line for line in text.splitlines() if not _COPYRIGHT_LINE.match(line)
                )
                licenses[identifier] = body.strip("\n")
        for path in license_files:
            path.unlink()
        for directory in sorted({p.parent for p in license_files}, key=lambda p: -len(p.parts)):
            if directory != info and not any(directory.iterdir()):
                directory.rmdir()
    return files, licenses


def main(argv: list[str]) -> int:
    files, licenses = stanzas(Path(argv[1]))
    out = [
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Upstream-Name: watchd",
        f"Files: *\nCopyright: {WATCHD_YEAR} the watchd authors\nLicense: MIT",
        *files,
        *(f"License: {name}\n{field(text)}" for name, text in licenses.items()),
    ]
    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
