"""The control-socket soak, briefly: hostile clients neither starve ``status`` nor leave
descriptors behind in the daemon. Hours of it: ``python -m bench.soak --seconds 7200``."""

from __future__ import annotations

import pytest

from bench.soak import ATTACKS, soak


@pytest.mark.timeout(300)
def test_status_is_answered_throughout_and_no_descriptor_is_left_behind() -> None:
    summary, samples = soak(20, list(ATTACKS), jobs=2)
    assert summary.status_failures == 0, samples
    assert summary.daemon_exit == 0
    # The attackers' connections are all gone once they are: what remains is the daemon's own.
    assert summary.fds_end <= summary.fds_start + 2, summary
