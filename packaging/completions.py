#!/usr/bin/env python3
"""Write the bash, zsh and fish completion of watchctl and watchd from the programs' own
argument parsers, so that completion offers exactly the commands and options there are.

    packaging/completions.py OUTDIR [--modules DIR]

writes OUTDIR/bash/{watchctl,watchd}, OUTDIR/zsh/{_watchctl,_watchd} and
OUTDIR/fish/{watchctl,watchd}.fish. Job names are completed from the running daemon, with
the words' own ``--socket`` if given (``--socket S`` or ``--socket=S``): ``watchctl
[--socket S] status --names``, which prints nothing when no daemon answers within a second.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEADER = "{comment} {shell} completion for {prog}: written by packaging/completions.py from\n"
HEADER += "{comment} {prog}'s own options; do not edit.\n"


@dataclass(frozen=True)
class Option:
    names: tuple[str, ...]
    help: str
    value: str | None  # None: a flag; "file", "choice" or "text"
    choices: tuple[str, ...] = ()
    metavar: str = "VALUE"


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    options: tuple[Option, ...]
    jobs: bool  # its arguments are job names


@dataclass(frozen=True)
class Program:
    name: str
    options: tuple[Option, ...]  # those before the command
    commands: tuple[Command, ...]
    socket: tuple[str, ...]  # the option naming the control socket (watchctl)

    def valued(self, options: tuple[Option, ...]) -> list[str]:
        return [name for option in options if option.value for name in option.names]


def _options(parser: argparse.ArgumentParser) -> tuple[Option, ...]:
    found = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        value: str | None = None
        if action.nargs != 0:
            value = "text"
            if action.choices:
                value = "choice"
            elif action.type is Path or action.dest == "socket":
                value = "file"
        help_text = (action.help or "").replace("%%", "%")
        choices = tuple(str(choice) for choice in action.choices or ())
        metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
        names = tuple(action.option_strings)
        found.append(Option(names, _first_clause(help_text), value, choices, metavar))
    return tuple(found)


def _first_clause(text: str) -> str:
    """A help text cut to what fits a completion menu: up to its first ``(``, ``:`` or ``;``."""
    return re.split(r" \(|[;:] ", text, maxsplit=1)[0].strip()


def program(name: str, parser: argparse.ArgumentParser) -> Program:
    commands: list[Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for command, sub in action.choices.items():
                jobs = any(a.metavar == "JOB" for a in sub._actions if not a.option_strings)
                commands.append(
                    Command(command, _first_clause(helps[command]), _options(sub), jobs)
                )
    options = _options(parser)
    socket = next((o.names for o in options if "--socket" in o.names), ())
    return Program(name, options, tuple(commands), socket)


def _words(items: list[str] | tuple[str, ...]) -> str:
    return " ".join(items)


def _long(names: list[str] | tuple[str, ...]) -> list[str]:
    """The long ones: only they take their value after an ``=`` (``--socket=PATH``)."""
    return [name for name in names if name.startswith("--")]


# ---- bash ------------------------------------------------------------------------------


def bash(prog: Program) -> str:
    fn = f"_{prog.name}"
    # What follows an option that takes a value: a file, one of its choices, or anything.
    actions: dict[str, list[str]] = {}
    for option in (*prog.options, *(o for c in prog.commands for o in c.options)):
        if option.value == "file":
            action = 'COMPREPLY=($(compgen -f -- "$cur"))'
        elif option.value == "choice":
            action = f'COMPREPLY=($(compgen -W "{_words(option.choices)}" -- "$cur"))'
        elif option.value == "text":
            action = "COMPREPLY=()"
        else:
            continue
        taking = actions.setdefault(action, [])
        taking += [name for name in option.names if name not in taking]
    value_cases = [
        f"        {'|'.join(taking)}) {action}; return ;;" for action, taking in actions.items()
    ]
    command_cases = []
    for command in prog.commands:
        opts = _words([n for o in command.options for n in o.names])
        jobs = "; jobs=1" if command.jobs else ""
        command_cases.append(f'        {command.name}) opts="{opts}"{jobs} ;;')
    skip = "|".join(n for n in prog.valued(prog.options) if n not in prog.socket)
    socket = "|".join(prog.socket)
    job_names = ""
    if any(command.jobs for command in prog.commands):
        job_names = """
    if ((jobs)); then
        COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" ${socket:+--socket "$socket"} \\
            status --names 2>/dev/null)" -- "$cur"))
    fi"""
    first_options = _words([name for option in prog.options for name in option.names])
    commands = _words([command.name for command in prog.commands])
    # An option's value is the next word; bash makes "--opt=value" three: "--opt" "=" "value".
    value = "((i++)); [[ ${COMP_WORDS[i]} == = ]] && ((i++))"
    before = ""
    if prog.socket:
        joined = "|".join(f"{name}=*" for name in _long(prog.socket))
        before += f"            {joined}) socket=${{COMP_WORDS[i]#*=}} ;;\n"
        before += f"            {socket}) {value}; socket=${{COMP_WORDS[i]}} ;;\n"
    if skip:
        before += f"            {skip}) {value} ;;\n"
    return f"""{HEADER.format(comment="#", shell="bash", prog=prog.name)}
{fn}() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD - 1]}}
    local command="" socket="" opts="" jobs=0 i
    # Completing "--opt=" or "--opt=val": the value, as if it were a word of its own.
    if [[ $cur == = ]]; then
        cur=""
    elif [[ $prev == = ]]; then
        prev=${{COMP_WORDS[COMP_CWORD - 2]}}
    fi
    # The command is the first word that is neither an option nor an option's value.
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${{COMP_WORDS[i]}} in
{before}            -*) ;;
            *) command=${{COMP_WORDS[i]}}; break ;;
        esac
    done
    case $prev in
{chr(10).join(value_cases)}
    esac
    if [[ -z $command ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "{first_options}" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "{commands}" -- "$cur"))
        fi
        return
    fi
    case $command in
{chr(10).join(command_cases)}
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi{job_names}
}}
complete -F {fn} {prog.name}
"""


# ---- zsh -------------------------------------------------------------------------------


def _zsh_text(text: str) -> str:
    """Text inside a single-quoted _arguments spec or _describe entry."""
    return text.replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]")


def _zsh_spec(option: Option) -> str:
    names = option.names
    help_text = _zsh_text(option.help)
    value = ""
    if option.value == "file":
        value = ":file:_files"
    elif option.value == "choice":
        value = f":{option.metavar.lower()}:({' '.join(option.choices)})"
    elif option.value == "text":
        value = f":{option.metavar.lower()}: "
    # "--name=": the value may follow in the same word after "=", or as the next word.
    spelled = [f"{name}=" if value and name.startswith("--") else name for name in names]
    if len(names) == 1:
        return f"'{spelled[0]}[{help_text}]{value}'"
    return f"'({' '.join(names)})'{{{','.join(spelled)}}}'[{help_text}]{value}'"


def zsh(prog: Program) -> str:
    fn = f"_{prog.name}"
    specs = " \\\n        ".join(_zsh_spec(option) for option in prog.options)
    commands = "\n        ".join(f"'{c.name}:{_zsh_text(c.help)}'" for c in prog.commands)
    cases = []
    for command in prog.commands:
        args = [_zsh_spec(option) for option in command.options]
        if command.jobs:
            args.append(f"'*:job:{fn}_jobs'")
        cases.append(f"            {command.name}) _arguments {' '.join(args)} ;;")
    lookups = ""  # the first given of the socket option's names: ${opt_args[-s]:-…}
    for name in reversed(prog.socket):
        lookups = f"${{opt_args[{name}]{':-' + lookups if lookups else ''}}}"
    socket_line = f"\n            local socket={lookups}" if prog.socket else ""
    jobs_fn = ""
    if any(command.jobs for command in prog.commands):
        # $socket: set by the caller from the options before the command.
        jobs_fn = f"""
{fn}_jobs() {{
    local -a jobs
    jobs=(${{(f)"$(_call_program jobs $service ${{socket:+--socket $socket}} \\
        status --names 2>/dev/null)"}})
    compadd -a jobs
}}
"""
    return f"""#compdef {prog.name}
{HEADER.format(comment="#", shell="zsh", prog=prog.name)}{jobs_fn}
{fn}() {{
    local curcontext=$curcontext state line ret=1
    typeset -A opt_args
    _arguments -C \\
        {specs} \\
        '1:command:->command' \\
        '*::argument:->argument' && ret=0
    case $state in
        command)
            local -a commands=(
        {commands}
            )
            _describe -t commands '{prog.name} command' commands && ret=0 ;;
        argument){socket_line}
            curcontext=${{curcontext%:*:*}}:{prog.name}-$words[1]:
            case $words[1] in
{chr(10).join(cases)}
            esac ;;
    esac
    return ret
}}

{fn} "$@"
"""


# ---- fish ------------------------------------------------------------------------------


def _fish_text(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_option(prog: str, condition: str, option: Option) -> str:
    parts = [f"complete -c {prog} -n {condition}"]
    for name in option.names:
        parts.append(f"-l {name[2:]}" if name.startswith("--") else f"-s {name[1:]}")
    if option.value == "file":
        parts.append("-r -F")
    elif option.value == "choice":
        parts.append(f"-x -a {_fish_text(' '.join(option.choices))}")
    elif option.value == "text":
        parts.append("-x")
    parts.append(f"-d {_fish_text(option.help)}")
    return " ".join(parts)


def fish(prog: Program) -> str:
    fn = f"__{prog.name}"
    skip = " ".join(prog.valued(prog.options))
    lines = [
        HEADER.format(comment="#", shell="fish", prog=prog.name),
        "# The command: the first word that is neither an option nor an option's value.",
        f"function {fn}_command",
        "    set -l words (commandline -opc)",
        "    set -e words[1]",
        "    while set -q words[1]",
        f"        if contains -- $words[1] {skip}" if skip else "        if false",
        "            set -e words[1]",
        "        else if not string match -q -- '-*' $words[1]",
        "            echo $words[1]",
        "            return 0",
        "        end",
        "        set -e words[1]",
        "    end",
        "    return 1",
        "end",
        "",
        f"function {fn}_command_is",
        f"    set -l command ({fn}_command)",
        '    test "$command" = "$argv[1]"',
        "end",
        "",
    ]
    if any(command.jobs for command in prog.commands):
        socket = " ".join(prog.socket)
        lines += [
            f"function {fn}_jobs",
            "    set -l words (commandline -opc)",
            "    set -l socket",
            "    for i in (seq (count $words))",
            f"        if contains -- $words[$i] {socket}; and set -q words[(math $i + 1)]",
            "            set socket --socket $words[(math $i + 1)]",
            *(
                line
                for name in _long(prog.socket)
                for line in (
                    f"        else if string match -q -- '{name}=*' $words[$i]",
                    f"            set socket --socket (string replace -- '{name}=' '' $words[$i])",
                )
            ),
            "        end",
            "    end",
            f"    command {prog.name} $socket status --names 2>/dev/null",
            "end",
            "",
        ]
    lines.append(f"complete -c {prog.name} -f")
    first = f"'not {fn}_command'"
    for option in prog.options:
        lines.append(_fish_option(prog.name, first, option))
    for command in prog.commands:
        lines.append(
            f"complete -c {prog.name} -n {first} -a {command.name} -d {_fish_text(command.help)}"
        )
    for command in prog.commands:
        condition = f"'{fn}_command_is {command.name}'"
        for option in command.options:
            lines.append(_fish_option(prog.name, condition, option))
        if command.jobs:
            lines.append(f"complete -c {prog.name} -n {condition} -a '({fn}_jobs)'")
    return "\n".join(lines) + "\n"


# ---- the files -------------------------------------------------------------------------

FILES = {"bash": ("{}", bash), "zsh": ("_{}", zsh), "fish": ("{}.fish", fish)}


def programs() -> list[Program]:
    cli, ctl = importlib.import_module("watchd.cli"), importlib.import_module("watchd.ctl")
    return [program("watchctl", ctl.build_parser()), program("watchd", cli.build_parser())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write watchctl's and watchd's completion.")
    parser.add_argument("outdir", type=Path)
    parser.add_argument(
        "--modules", type=Path, default=REPO, help="import watchd from here (default: the checkout)"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.modules))
    for prog in programs():
        for shell, (filename, write) in FILES.items():
            path = args.outdir / shell / filename.format(prog.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(write(prog), "utf-8")
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
