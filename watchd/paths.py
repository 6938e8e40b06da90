"""Where watchd looks by default: the system's paths for root, the user's own otherwise.

A developer runs watchd under their own systemd (``systemctl --user``): its main file is
then ``$XDG_CONFIG_HOME/watchd/watchd.yaml`` and its socket is under ``$XDG_RUNTIME_DIR``,
where nobody else can reach it and nothing needs root.
"""

from __future__ import annotations

import os
from pathlib import Path

SYSTEM_CONFIG = Path("/etc/watchd/watchd.yaml")
SYSTEM_SOCKET = Path("/run/watchd/control.sock")


def _as_root() -> bool:
    return os.geteuid() == 0


def user_config() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "watchd" / "watchd.yaml"


def user_socket() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.geteuid()}"
    return Path(runtime) / "watchd" / "control.sock"


def default_config() -> Path:
    """The main file when neither ``-c`` nor ``$WATCHD_CONFIG`` names one."""
    return SYSTEM_CONFIG if _as_root() else user_config()


def default_socket() -> Path:
    """The daemon's control socket when the main file does not set ``control.socket``."""
    return SYSTEM_SOCKET if _as_root() else user_socket()


def find_socket() -> Path:
    """The socket watchctl talks to when not told: a user's own daemon if one is
    listening, else the system's (a member of the watchd group may use that one)."""
    if not _as_root():
        own = user_socket()
        if own.is_socket():
            return own
    return SYSTEM_SOCKET
