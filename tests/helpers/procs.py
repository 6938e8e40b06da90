"""What a test can ask the kernel about a process."""

from __future__ import annotations

from pathlib import Path


def alive(pid: int) -> bool:
    """True while *pid* exists and is not a zombie (a subreaper may hold it unreaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
