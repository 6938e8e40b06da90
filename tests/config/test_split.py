"""Command strings split into argv exactly as ``shlex.split`` does."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from watchd.config.split import SplitError, split_command

shell_text = st.text(alphabet=st.sampled_from(list("ab '\"\\\t\n\r$#é\x0b")), max_size=40)


@seed(20261201)
@settings(max_examples=500, deadline=None, database=None)
@given(text=shell_text)
def test_commands_split_into_the_words_shlex_gives(text: str) -> None:
    try:
        expected = shlex.split(text)
    except ValueError:
        with pytest.raises(SplitError):
            split_command(text)
    else:
        assert split_command(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("app --flag 'a b'", ["app", "--flag", "a b"]),
        ('say "it\'s \\"here\\"" \\$HOME', ["say", 'it\'s "here"', "$HOME"]),
        ("'' x", ["", "x"]),
        ("a\\ b c", ["a b", "c"]),
        ('"a\\nb"', ["a\\nb"]),
    ],
)
def test_quotes_and_backslashes_work_as_in_a_shell(text: str, words: list[str]) -> None:
    assert split_command(text) == words


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("echo 'open", "no closing quotation for the ' at column 6"),
        ('echo "open', 'no closing quotation for the " at column 6'),
        ("echo \\", "no character after the backslash at column 6"),
    ],
)
def test_an_unsplittable_command_says_where(text: str, message: str) -> None:
    with pytest.raises(SplitError, match=message):
        split_command(text)
