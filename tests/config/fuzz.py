"""Config-loader fuzzing: Hypothesis writes hostile main and job files, the oracle checks
that the loader gives a valid config or FILE:LINE:COL errors, and never raises.

``python -m tests.config.fuzz --seconds 600`` runs it for longer than the suite does and
prints inputs per second and each class of failure (exception type and where it was raised).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed
from hypothesis import strategies as st

from watchd.config.jobs import JOB_KEYS, WATCH_VALUES
from watchd.config.loader import CONTROL_KEYS, LOADER_FAULT, MAIN_KEYS, load_config
from watchd.config.model import DaemonConfig, JobConfig
from watchd.errors import ConfigError

# Scalars as written in YAML, chosen to hit every value parser's edges.
HOSTILE_SCALARS = [
    "~",
    "''",
    "0",
    "-1",
    "3",
    "9223372036854775808",
    "1" * 4301,
    str(2**1024 + 1),
    "0x" + "f" * 300,
    "1e400",
    "-1e400",
    ".nan",
    ".inf",
    "-.inf",
    "9" * 400 + "s",
    "1e308",
    "10s",
    "250ms",
    "soon",
    "yes",
    "no",
    "0660",
    "SIGHUP",
    "signal HUP",
    "signal 99",
    "signal",
    "restart",
    "none",
    "log",
    "null",
    "poll",
    "echo 'unterminated",
    'echo "two words" three',
    "'~nosuchuser-here/x'",
    "~root/x",
    "/nonexistent/dir",
    '"\\0"',
    '"a\\0b"',
    '"\\ud800"',
    '"\\udcff x"',
    '"\\x01\\x7f"',
    '"\\u200b\\u2028"',
    '"\\e[31m"',
    "x" * 70,
    "y" * 5000,
    "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system ''",
    "!!bool maybe",
    "!!timestamp xyz",
    "!!timestamp 2001-12-14",
    "!!int 12x",
    "!!int " + "7" * 5000,
    "!!float abc",
    "!!float 1e999",
    "!!binary '!!!'",
    "!!binary aGVsbG8=",
    "!!null x",
    "!!str 5",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!pairs [a: 1]",
    "!!map x",
    "!!seq x",
    "!local x",
    "!<tag:example.com,2000:x> y",
    "&anchor 5",
    "*anchor",
    "*missing",
    "[a, b]",
    "[]",
    "{}",
    "{a: 1}",
    "[[[]]]",
    "<<",
]

KEYS = [*JOB_KEYS, *WATCH_VALUES, *MAIN_KEYS, *CONTROL_KEYS, "jobs", "<<", "~", "1", "[a]"]


def _double_quoted(text: str) -> str:
    """*text* as a YAML double-quoted scalar; JSON escapes are YAML escapes (lone
    surrogates come out as ``\\udXXX``, which YAML reads back as lone surrogates)."""
    return json.dumps(text)


scalar_text = st.one_of(
    st.sampled_from(HOSTILE_SCALARS),
    st.text(max_size=20).map(_double_quoted),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),  # raw, may break YAML
    st.integers().map(str),
    st.floats().map(repr),
    st.from_regex(r"[0-9.]{1,8}(ms|s|m|h)?", fullmatch=True),
)


def _deep(depth: int, kind: str) -> str:
    if kind == "flow-list":
        return "[" * depth + "]" * depth
    if kind == "flow-map":
        return "{a: " * depth + "1" + "}" * depth
    return "\n      " + "- " * depth + "x"  # a block sequence in a block sequence in …


deep_value = st.builds(
    _deep, st.integers(1, 3000), st.sampled_from(["flow-list", "flow-map", "block"])
)


def _flow(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    return str(value)


def _key(text: str) -> str:
    return text if text in KEYS else _double_quoted(text)


value_tree = st.recursive(
    scalar_text,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
).map(_flow)

job_value = st.one_of(value_tree, deep_value)
key_text = st.one_of(st.sampled_from(KEYS), st.text(max_size=12))


@st.composite
def job_mapping(draw: st.DrawFn) -> str:
    """A job's block mapping (indented by four), mostly real keys, sometimes wrong ones."""
    lines = []
    keys = draw(st.lists(st.one_of(st.sampled_from(JOB_KEYS), key_text), max_size=6))
    if draw(st.booleans()):
        keys.insert(0, "command")
    for key in keys:
        if key == "watch" and draw(st.booleans()):
            watch = draw(st.dictionaries(st.sampled_from(list(WATCH_VALUES)), job_value))
            lines.append(f"    watch: {_flow(watch)}")
        else:
            lines.append(f"    {_key(key)}: {draw(job_value)}")
    return "\n".join(lines)


@st.composite
def nearly_valid_job(draw: st.DrawFn) -> str:
    """A job that loads but for a hostile value or two, so every value parser is reached."""
    lines = {"command": "app --flag 'a b'"}
    for key in draw(st.lists(st.sampled_from(JOB_KEYS), min_size=1, max_size=3, unique=True)):
        if key in ("watch", "env"):
            sub = draw(st.sampled_from([*WATCH_VALUES] if key == "watch" else ["A", "B_1"]))
            lines[key] = _flow({sub: draw(scalar_text)})
        else:
            lines[key] = draw(st.one_of(scalar_text, value_tree))
    return "\n".join(f"    {key}: {value}" for key, value in lines.items())


job_name = st.one_of(
    st.sampled_from(["web", "a", "x" * 64, "x" * 65, "a.b@c", "-bad", "1"]),
    st.text(max_size=70),
)


@st.composite
def job_file(draw: st.DrawFn) -> str:
    mappings = st.one_of(job_mapping(), nearly_valid_job())
    jobs = draw(st.lists(st.tuples(job_name, mappings), max_size=3))
    body = "\n".join(f"  {_key(name)}:\n{mapping}" for name, mapping in jobs)
    return f"jobs:\n{body}\n"


@st.composite
def main_file(draw: st.DrawFn) -> str:
    lines = ["control: {socket: ctl.sock}"]
    for key in draw(st.lists(st.sampled_from(["log_level", "jobs_dir", "control"]), max_size=3)):
        lines.append(f"{key}: {draw(job_value)}")
    if draw(st.booleans()):
        lines.append(f"defaults:\n{draw(job_mapping())}")
    return "\n".join(lines) + "\n"


def _corrupt(text: str, draw: st.DrawFn) -> bytes:
    """*text* with random bytes spliced in (or, sometimes, random bytes only)."""
    raw = text.encode("utf-8", "surrogatepass")
    how = draw(st.sampled_from(["asis", "insert", "replace", "bytes", "latin-1"]))
    if how == "asis":
        return raw
    if how == "bytes":
        return draw(st.binary(max_size=200))
    if how == "latin-1":
        return text.encode("latin-1", "replace") + "é".encode("latin-1")
    at = draw(st.integers(0, len(raw)))
    junk = draw(st.binary(min_size=1, max_size=8))
    end = at if how == "insert" else min(len(raw), at + len(junk))
    return raw[:at] + junk + raw[end:]


@dataclass
class Files:
    main: bytes
    jobs: bytes


@st.composite
def config_files(draw: st.DrawFn) -> Files:
    return Files(_corrupt(draw(main_file()), draw), _corrupt(draw(job_file()), draw))


# ---- the oracle ------------------------------------------------------------------------


def check_loaded(config: DaemonConfig) -> None:
    """What a running daemon needs of a config the loader accepted."""
    for job in config.jobs:
        check_job(job)


def _expect(condition: object, kind: str, detail: object = "") -> None:
    """An oracle failure of one *kind* (its class when counting), with what was seen."""
    if not condition:
        raise AssertionError(f"{kind} | {detail!r}"[:2000])


def _encodable(text: str) -> bool:
    try:
        os.fsencode(text)
    except UnicodeError:
        return False
    return "\0" not in text


def check_job(job: JobConfig) -> None:
    _expect(job.name.isprintable(), "job name not printable", job.name)
    for name in job.__dataclass_fields__:
        value = getattr(job, name)
        if isinstance(value, float):
            _expect(math.isfinite(value) and value >= 0, "duration not finite", (name, value))
    poll = job.watch.poll_interval
    _expect(math.isfinite(poll) and poll > 0, "poll_interval not finite", poll)
    commands = [job.command] if job.before_restart is None else [job.command, job.before_restart]
    for argv in commands:
        _expect(argv, "empty command")
        _expect(all(_encodable(arg) for arg in argv), "command cannot be exec'd", argv[:3])
    for key, value in job.env:
        _expect(_encodable(key) and _encodable(value), "env cannot be exec'd", key)
    for path in (job.cwd, *job.watch.paths):
        if path is not None:
            _expect(path.is_absolute(), "path not absolute", path)
            _expect(_encodable(str(path)), "path cannot be used", path)
    try:
        deque(maxlen=job.log_lines)  # what the job's output buffer is made of
    except (OverflowError, ValueError) as error:
        raise AssertionError(f"log_lines unusable | {error}") from None
    _expect(1 <= job.start_limit_burst <= sys.maxsize, "start_limit_burst", job.start_limit_burst)


def check_refused(error: ConfigError) -> None:
    _expect(error.issues, "ConfigError without issues")
    text = str(error)
    try:
        text.encode("utf-8")
    except UnicodeError:
        raise AssertionError(f"error text not printable (lone surrogate) | {text!r}") from None
    for line in text.splitlines():
        _expect(line.isprintable(), "error line with control characters", line)
    for issue in error.issues:
        _expect(issue.line >= 1 and issue.column >= 1, "issue without LINE:COL", str(issue))
        # The loader's last resort for a fault of its own: a bug, even though it is reported.
        _expect(not issue.message.startswith(LOADER_FAULT), "loader fault", issue.message)


def load_and_check(directory: Path, files: Files) -> None:
    """Write *files* into *directory* and load them: a valid config or clear errors."""
    main = directory / "watchd.yaml"
    jobs_dir = directory / "jobs.d"
    jobs_dir.mkdir(exist_ok=True)
    main.write_bytes(files.main)
    (jobs_dir / "fuzz.yaml").write_bytes(files.jobs)
    try:
        config = load_config(main)
    except ConfigError as error:
        check_refused(error)
    else:
        check_loaded(config)


# ---- running it ------------------------------------------------------------------------


@dataclass
class Outcome:
    inputs: int = 0
    seconds: float = 0.0
    classes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, Files] = field(default_factory=dict)

    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0


def failure_class(error: BaseException) -> str:
    """What kind of failure: its type and the innermost frame that raised it."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if "/watchd/" in frame.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    if isinstance(error, AssertionError):
        return f"oracle: {str(error).split(' | ')[0]}"
    return f"{type(error).__name__} at {where}"


def run(seconds: float, seed: int, examples_per_round: int = 200, shrink: bool = False) -> Outcome:
    """Fuzz for *seconds*, round after round of Hypothesis examples from seeds *seed*,
    *seed* + 1, …; record every failure's class instead of stopping at the first."""
    outcome = Outcome()
    deadline = time.monotonic() + seconds
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="watchd-fuzz-") as name:
        directory = Path(name)
        old_cwd = os.getcwd()
        os.chdir(directory)
        try:
            round_number = 0
            while time.monotonic() < deadline:
                _round(directory, seed + round_number, examples_per_round, deadline, outcome)
                round_number += 1
        finally:
            os.chdir(old_cwd)
    outcome.seconds = time.monotonic() - start
    return outcome


def _round(directory: Path, seed: int, examples: int, deadline: float, outcome: Outcome) -> None:
    def one(files: Files) -> None:
        if time.monotonic() > deadline:
            return
        outcome.inputs += 1
        try:
            load_and_check(directory, files)
        except (Exception, RecursionError) as error:
            kind = failure_class(error)
            outcome.classes[kind] += 1
            outcome.examples.setdefault(kind, files)

    test = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )(fixed_seed(seed)(given(config_files())(one)))
    test()


def suite_property(directory: Path) -> Callable[[Files], None]:
    """The property for the test suite (failures shrink and fail the test)."""
    return lambda files: load_and_check(directory, files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    parser.add_argument("--show", action="store_true", help="print one input of each class")
    args = parser.parse_args(argv)
    sys.setrecursionlimit(1000)
    outcome = run(args.seconds, args.seed)
    print(
        f"seed {args.seed}: {outcome.inputs} inputs in {outcome.seconds:.0f}s "
        f"({outcome.rate():.0f}/s); {sum(outcome.classes.values())} failed, "
        f"{len(outcome.classes)} classes"
    )
    for kind, count in outcome.classes.most_common():
        print(f"{count:6d}  {kind}")
        if args.show:
            files = outcome.examples[kind]
            print(f"        main: {files.main[:300]!r}\n        jobs: {files.jobs[:300]!r}")
    return 1 if outcome.classes else 0


if __name__ == "__main__":
    sys.exit(main())
