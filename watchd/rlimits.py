"""Resource limits watchd sets for itself at start."""

from __future__ import annotations

import logging
import resource

log = logging.getLogger("watchd")


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one; return the limit in force.

    Each job costs descriptors (a pidfd, its output pipe) and so does each control
    connection: the usual soft limit of 1024 runs out long before the hard one.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as error:
        log.warning("cannot raise the open files limit from %d to %d: %s", soft, hard, error)
        return soft
    return hard
