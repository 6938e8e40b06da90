#!/usr/bin/env python3
"""Write watchd(8), watchctl(1) and watchd.yaml(5) from the README and the programs' own
argument parsers, so that a man page cannot say something the README does not.

    packaging/manpages.py OUTDIR [--date YYYY-MM-DD] [--modules DIR]

Each page takes whole sections of README.md (by their `## ` heading) and converts the
Markdown used there (paragraphs, bullet lists, code blocks, tables, `code`, *emphasis*,
**strong**, links) to man(7) requests. A missing heading is an error, not an empty page.
The synopsis and options come from watchd.cli and watchd.ctl, imported from the checkout.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"

# Typography the README uses, in the troff names every man formatter knows.
_GLYPHS = {
    "\N{EM DASH}": r"\(em",
    "\N{EN DASH}": r"\(en",
    "\N{HORIZONTAL ELLIPSIS}": "...",
    "\N{RIGHTWARDS ARROW}": r"\(->",
    "\N{MULTIPLICATION SIGN}": r"\(mu",
    "\N{MICRO SIGN}": r"\(mc",
}
_INLINE = re.compile(
    r"`(?P<code>[^`]+)`"
    r"|\*\*(?P<strong>[^*]+)\*\*"
    r"|\*(?P<em>[^*\s][^*]*)\*"
    r"|\[(?P<text>[^\]]+)\]\((?P<url>[^)]+)\)"
    r"|<(?P<bare>https?://[^>]+)>"
)


def escape(text: str, code: bool = False) -> str:
    """Text as troff prints it literally: backslashes escaped, glyphs named, and in code a
    real ASCII hyphen-minus (which `-` is not, to troff)."""
    text = text.replace("\\", r"\e")
    for glyph, name in _GLYPHS.items():
        text = text.replace(glyph, name)
    if code:
        text = text.replace("-", r"\-")
    return text


def inline(text: str) -> str:
    """One line of Markdown with its inline markup as font changes."""
    out, last = [], 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[last : match.start()]))
        if match["code"] is not None:
            out.append(rf"\fB{escape(match['code'], code=True)}\fR")
        elif match["strong"] is not None:
            out.append(rf"\fB{escape(match['strong'])}\fR")
        elif match["em"] is not None:
            out.append(rf"\fI{escape(match['em'])}\fR")
        elif match["text"] is not None:
            target = match["url"]
            label = escape(match["text"])
            out.append(label if target.startswith("#") else rf"{label} (\fI{escape(target)}\fR)")
        else:
            out.append(rf"\fI{escape(match['bare'], code=True)}\fR")
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)


def _line(text: str) -> str:
    """A text line that cannot be mistaken for a request."""
    return rf"\&{text}" if text.startswith((".", "'")) else text


# ---- Markdown blocks -> man(7) ---------------------------------------------------------


def _cells(row: str) -> list[str]:
    """The cells of one table row; `\\|` is a literal bar inside a cell."""
    parts = re.split(r"(?<!\\)\|", row.strip().strip("|"))
    return [part.strip().replace(r"\|", "|") for part in parts]


def _table(rows: list[str]) -> Iterator[str]:
    """A table as a tagged list: the first column is the tag. A `default` column goes
    next to the tag, as man pages write defaults; other columns follow as paragraphs."""
    header = [cell.lower() for cell in _cells(rows[0])]
    for row in rows[2:]:
        cells = _cells(row)
        tag = inline(cells[0])
        rest = []
        for name, cell in zip(header[1:], cells[1:], strict=False):
            if not cell:
                continue
            if name == "default":
                tag += f" {inline(cell)}" if cell.startswith("(") else f" (default: {inline(cell)})"
            else:
                rest.append(inline(cell))
        yield ".TP"
        yield _line(tag)
        yield from (_line(text) for text in rest) if rest else (r"\&",)


def blocks(markdown: str) -> Iterator[str]:
    """man(7) lines for a run of Markdown blocks."""
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            yield from (".PP", ".RS 4", ".nf")
            yield from (_line(escape(text, code=True)) for text in lines[i + 1 : end])
            yield from (".fi", ".RE")
            i = end + 1
        elif line.startswith("#"):
            yield f".SS {inline(line.lstrip('#').strip())}"
            i += 1
        elif line.startswith("|"):
            end = i
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            yield from _table(lines[i:end])
            i = end
        elif line.startswith("- "):
            item = [line[2:]]
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip():
                item.append(lines[i].strip())
                i += 1
            yield r".IP \(bu 2"
            yield from (_line(inline(text)) for text in item)
        else:
            yield ".PP"
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("```", "|")):
                yield _line(inline(lines[i]))
                i += 1


def sections(markdown: str) -> dict[str, str]:
    """README's `## ` sections by heading (headings inside code blocks do not count)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("## "):
            current = found.setdefault(line[3:].strip(), [])
            continue
        if not in_code and line.startswith("# "):
            current = None
            continue
        if current is not None:
            current.append(line)
    return {heading: "\n".join(body) for heading, body in found.items()}


def section(readme: dict[str, str], heading: str) -> str:
    try:
        return readme[heading]
    except KeyError:
        raise SystemExit(f"manpages: README.md has no section '## {heading}'") from None


def intro(markdown: str) -> str:
    """The paragraph that says what watchd is (the one after the first rule)."""
    after_rule = markdown.split("\n---\n", 1)[1]
    return after_rule.split("\n\n", 1)[0] if after_rule.strip() else ""


# ---- argparse -> SYNOPSIS and OPTIONS ---------------------------------------------------


def _metavar(action: argparse.Action) -> str:
    metavar = action.metavar if isinstance(action.metavar, str) else None
    return escape(metavar or action.dest.upper(), code=True)


def _options(parser: argparse.ArgumentParser) -> Iterator[str]:
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        if action.help == argparse.SUPPRESS:  # hidden: for shell completion
            continue
        names = r", ".join(rf"\fB{escape(name, code=True)}\fR" for name in action.option_strings)
        if action.nargs != 0:
            names += rf" \fI{_metavar(action)}\fR"
        yield ".TP"
        yield names
        yield _line(escape(action.help or "").replace("%%", "%"))


def _positionals(parser: argparse.ArgumentParser) -> str:
    words = []
    for action in parser._actions:
        if action.option_strings:
            continue
        name = rf"\fI{_metavar(action)}\fR"
        if action.nargs in ("*", "?"):
            words.append(f"[{name}...]" if action.nargs == "*" else f"[{name}]")
        elif action.nargs == "+":
            words.append(f"{name}...")
        else:
            words.append(name)
    return " ".join(words)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def synopsis(prog: str, parser: argparse.ArgumentParser) -> list[str]:
    out = [".SH SYNOPSIS"]
    commands = _subcommands(parser)
    for name, sub in commands.items():
        options = " ".join(
            rf"[\fB{escape(a.option_strings[0], code=True)}\fR"
            + (rf" \fI{_metavar(a)}\fR]" if a.nargs != 0 else "]")
            for a in sub._actions
            if a.option_strings
            and not isinstance(a, argparse._HelpAction)
            and a.help != argparse.SUPPRESS
        )
        common = " ".join(
            rf"[\fB{escape(a.option_strings[0], code=True)}\fR \fI{_metavar(a)}\fR]"
            for a in parser._actions
            if a.option_strings and a.nargs != 0 and not isinstance(a, argparse._HelpAction)
        )
        words = [rf"\fB{prog}\fR", common, rf"\fB{name}\fR", options, _positionals(sub)]
        out += [".PP", _line(" ".join(word for word in words if word))]
    out += [".PP", rf"\fB{prog}\fR \fB\-\-version\fR"] if "version" in str(parser._actions) else []
    return out


def commands_and_options(parser: argparse.ArgumentParser) -> list[str]:
    out = [".SH COMMANDS"]
    for name, sub in _subcommands(parser).items():
        out += [".TP", rf"\fB{name}\fR", _line(escape(_help_of(parser, name)))]
        sub_options = list(_options(sub))
        if sub_options:
            out += [".RS", *sub_options, ".RE"]
    out += [".SH OPTIONS", *_options(parser)]
    return out


# ---- the pages ------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    section: int
    summary: str
    body: list[str]

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.section}"

    def render(self, version: str, date: str) -> str:
        head = [
            f'.TH "{self.name.upper()}" "{self.section}" "{date}" "watchd {version}" '
            f'"{_MANUALS[self.section]}"',
            ".SH NAME",
            rf"{escape(self.name, code=True)} \- {self.summary}",
        ]
        return "\n".join([*head, *self.body]) + "\n"


_MANUALS = {1: "User Commands", 5: "File Formats", 8: "System Administration"}


def _see_also(*names: str) -> list[str]:
    return [
        ".SH SEE ALSO",
        ",\n".join(rf"\fB{n.split('(')[0]}\fR({n.split('(')[1]}" for n in names),
    ]


def _from_readme(readme: dict[str, str], headings: Iterable[str], level: str = ".SH") -> list[str]:
    out = []
    for heading in headings:
        out.append(f'{level} "{inline(heading).upper() if level == ".SH" else inline(heading)}"')
        out.extend(blocks(section(readme, heading)))
    return out


def pages(markdown: str) -> list[Page]:
    cli = importlib.import_module("watchd.cli")
    ctl = importlib.import_module("watchd.ctl")

    readme = sections(markdown)
    watchd_body = [
        *synopsis("watchd", cli.build_parser()),
        ".SH DESCRIPTION",
        *blocks(intro(markdown)),
        *commands_and_options(cli.build_parser()),
        *_from_readme(
            readme,
            [
                "How it behaves",
                "Running under systemd",
                "Running as your own user",
                "In a container",
            ],
        ),
        ".SH FILES",
        ".TP",
        r"\fI/etc/watchd/watchd.yaml\fR",
        r"The main file (run as root); see \fBwatchd.yaml\fR(5).",
        ".TP",
        r"\fI~/.config/watchd/watchd.yaml\fR",
        r"The main file when not run as root (\fI$XDG_CONFIG_HOME/watchd/watchd.yaml\fR).",
        ".TP",
        r"\fI/etc/watchd/jobs.d/\fR",
        "The job files of the package's main file.",
        ".SH ENVIRONMENT",
        ".TP",
        r"\fBWATCHD_CONFIG\fR",
        r"The main file, when \fB\-c\fR is not given.",
        ".TP",
        r"\fBNOTIFY_SOCKET\fR",
        "Set by systemd: watchd reports readiness, reloads, stopping and its status there.",
        ".SH EXIT STATUS",
        ".TP",
        "0",
        r"Stopped by \fBSIGTERM\fR or \fBSIGINT\fR after every job stopped cleanly; "
        r"\fBcheck\fR: the config is valid.",
        ".TP",
        "N",
        r"\fBrun\fR: a job did not stop cleanly; N is its exit status, or 128 + the signal "
        "that ended it (see IN A CONTAINER).",
        ".TP",
        "1",
        r"\fBcheck\fR: the config has errors.",
        ".TP",
        "78",
        r"\fBrun\fR: the config was refused at start-up (\fBEX_CONFIG\fR).",
        *_see_also("watchctl(1)", "watchd.yaml(5)", "systemd.service(5)", "inotify(7)"),
    ]
    watchctl_body = [
        *synopsis("watchctl", ctl.build_parser()),
        ".SH DESCRIPTION",
        *blocks(section(readme, "watchctl")),
        *commands_and_options(ctl.build_parser()),
        *_see_also("watchd(8)", "watchd.yaml(5)"),
    ]
    config_body = [
        ".SH SYNOPSIS",
        r"\fI/etc/watchd/watchd.yaml\fR, \fI/etc/watchd/jobs.d/*.yaml\fR",
        ".br",
        r"\fI~/.config/watchd/watchd.yaml\fR, \fI~/.config/watchd/jobs.d/*.yaml\fR",
        ".SH DESCRIPTION",
        *blocks(section(readme, "Configuration")),
        *_see_also("watchd(8)", "watchctl(1)"),
    ]
    return [
        Page(
            "watchd", 8, "supervise commands and restart them when their files change", watchd_body
        ),
        Page("watchctl", 1, "control a running watchd", watchctl_body),
        Page("watchd.yaml", 5, "watchd's main file and job files", config_body),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write watchd's man pages.")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--date", default=time.strftime("%Y-%m-%d", time.gmtime()))
    parser.add_argument(
        "--modules", type=Path, default=REPO, help="import watchd from here (default: the checkout)"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.modules))
    version = importlib.import_module("watchd").__version__

    args.outdir.mkdir(parents=True, exist_ok=True)
    for page in pages(README.read_text(encoding="utf-8")):
        (args.outdir / page.filename).write_text(page.render(version, args.date), "utf-8")
        print(args.outdir / page.filename)
    return 0


if __name__ == "__main__":
    sys.exit(main())
