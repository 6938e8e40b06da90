"""watchd's exit status after a stop, from how each job's child ended."""

from __future__ import annotations

import signal

from watchd.supervise.pid1 import stop_status

TERM, INT = signal.SIGTERM, signal.SIGINT


def test_clean_ends_give_0() -> None:
    # Nothing ran, exit 0, killed by its stop signal, exit 128+N, SIGKILL after the timeout.
    assert stop_status([]) == 0
    assert stop_status([(None, TERM), (0, TERM), (-15, TERM), (143, TERM), (-9, TERM)]) == 0
    assert stop_status([(-2, INT), (130, INT)]) == 0


def test_the_first_other_end_is_the_status_as_a_shell_reports_it() -> None:
    assert stop_status([(0, TERM), (7, TERM), (2, TERM)]) == 7
    assert stop_status([(-15, TERM), (-signal.SIGSEGV, TERM)]) == 128 + signal.SIGSEGV
    # A job stopped with SIGINT that dies of SIGTERM did not stop the way it was asked to.
    assert stop_status([(-15, INT)]) == 143
    assert stop_status([(143, INT)]) == 143
