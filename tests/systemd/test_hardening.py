"""The system unit's hardening, as systemd applies it: its `systemd-analyze security`
rating, what jobs can still do under it, and the two drop-ins that loosen or tighten it."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.wait import wait_until
from tests.systemd.conftest import REPO, TEST_DIR, Installation
from tests.systemd.sandbox import Sandbox
from tests.systemd.test_service import TIMEOUT, ensure_started, remove_jobs, write_jobs

pytestmark = pytest.mark.systemd

TARGET = 6.0  # the highest exposure the unit may have
EXAMPLES = "/usr/share/doc/watchd/examples"
DROPINS = "/etc/systemd/system/watchd.service.d"
RESULTS = f"{TEST_DIR}/probe"  # where the probe jobs, also those run as nobody, write
OVERALL = re.compile(r"Overall exposure level for watchd\.service: (\d+\.\d)")
NO_FAMILY = "Address family not supported by protocol"


def exposure(box: Sandbox) -> float:
    """What `systemd-analyze security watchd.service` rates the loaded unit."""
    output = box.run("systemd-analyze", "security", "--no-pager", "watchd.service").stdout
    found = OVERALL.search(output)
    assert found, output
    return float(found.group(1))


@pytest.fixture
def box(installed: Installation) -> Iterator[Sandbox]:
    """The installed package, watchd started with the unit as shipped, a folder for the
    probes' results."""
    box = installed.sandbox
    shutil.copy(REPO / "tests/systemd/probe.py", box.path(f"{TEST_DIR}/probe.py"))
    results = box.path(RESULTS)
    results.mkdir(exist_ok=True)
    results.chmod(0o1777)
    ensure_started(box)
    yield box
    for dropin in box.path(DROPINS).glob("*.conf") if box.path(DROPINS).exists() else []:
        dropin.unlink()
    box.systemctl("daemon-reload")


def use_dropin(box: Sandbox, example: str) -> None:
    """Install one of the packaged example drop-ins as the README says, and restart."""
    box.run("install", "-D", "-m", "644", f"{EXAMPLES}/{example}", f"{DROPINS}/{example}")
    box.systemctl("daemon-reload")
    box.systemctl("restart", "watchd")


def probe(box: Sandbox, name: str, user: str | None = None, port: int = 80) -> dict[str, Any]:
    """Run tests/systemd/probe.py once as job *name* holding 127.0.0.1:*port*; its findings."""
    out = box.path(f"{RESULTS}/{name}.json")
    out.unlink(missing_ok=True)
    settings: dict[str, Any] = {
        "command": ["python3", f"{TEST_DIR}/probe.py", f"{RESULTS}/{name}.json"],
        "restart": "never",
        "sockets": [{"tcp": f"127.0.0.1:{port}"}],
    }
    if user is not None:
        settings["user"] = user
    write_jobs(box, f"{name}.yaml", {name: settings})
    cursor = box.journal_cursor()
    try:
        wait_until(out.exists, f"the {name} job's findings", TIMEOUT)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{box.journal(cursor, 'watchd.service')}") from None
    finally:
        remove_jobs(box, f"{name}.yaml")
    found: dict[str, Any] = json.loads(out.read_text())
    return found


def test_the_installed_unit_is_rated_at_most_the_target(box: Sandbox) -> None:
    rated = exposure(box)
    assert rated <= TARGET
    # Delegate=yes: watchd's jobs get cgroups of its own making.
    assert box.show("watchd", "Delegate") == "yes"


def test_jobs_under_the_hardened_unit_switch_user_hold_low_ports_and_make_cgroups(
    box: Sandbox,
) -> None:
    root = probe(box, "probe-root", port=80)
    nobody = probe(box, "probe-nobody", user="nobody", port=81)

    assert root["uid"] == 0
    assert root["held"] == ["127.0.0.1", 80]
    assert root["cgroup"] == "ok"
    assert root["sees_pid_1"]
    assert root["write_usr_local"] == "ok"
    # Taken away: raw packet sockets.
    assert root["packet_socket"] == NO_FAMILY

    assert nobody["uid"] != 0
    assert nobody["held"] == ["127.0.0.1", 81]
    # ProtectProc=invisible: another user's processes are hidden from a job.
    assert not nobody["sees_pid_1"]


def test_the_looser_dropin_gives_back_what_the_unit_takes(box: Sandbox) -> None:
    hardened = exposure(box)
    use_dropin(box, "hardening-looser.conf")

    assert exposure(box) > hardened
    capabilities = box.show("watchd", "CapabilityBoundingSet").split()
    assert {"cap_sys_boot", "cap_sys_rawio", "cap_mknod"} <= set(capabilities)
    assert box.show("watchd", "Delegate") == "yes"
    root = probe(box, "probe-looser", port=82)
    assert root["packet_socket"] == "ok"
    assert root["cgroup"] == "ok"


def test_the_stricter_dropin_tightens_it_and_jobs_write_where_it_lets_them(
    box: Sandbox,
) -> None:
    hardened = exposure(box)
    use_dropin(box, "hardening-stricter.conf")

    assert exposure(box) < hardened
    # The probe writes its findings under /srv, one of the dropin's ReadWritePaths.
    root = probe(box, "probe-stricter", port=83)
    assert root["write_usr_local"] == "Read-only file system"
    assert root["cgroup"] == "ok"
    assert root["held"] == ["127.0.0.1", 83]


def test_the_shipped_unit_is_the_one_analysed(box: Sandbox) -> None:
    shipped = (REPO / "packaging/watchd.service").read_text()
    assert box.path("/lib/systemd/system/watchd.service").read_text() == shipped
    assert Path(box.show("watchd", "FragmentPath")).name == "watchd.service"
