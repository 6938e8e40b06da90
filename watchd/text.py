"""Small wording helpers for messages people read."""

from __future__ import annotations


def counted(number: int, noun: str) -> str:
    """``1 path``, ``12,408 paths``."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
