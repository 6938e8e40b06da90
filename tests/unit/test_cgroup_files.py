"""What watchd reads from and writes to cgroup v2 interface files.

The kernel files themselves are used wherever this machine has them (the integration tests);
here a directory stands in for a cgroup with controllers this machine's hierarchy may lack
(memory, pids, cpu), to pin down the exact texts written and read.
"""

from __future__ import annotations

from pathlib import Path

from watchd.config.model import Limits
from watchd.supervise.cgroup import Cgroup, find_cgroup2_mount, own_cgroup

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_the_cgroup2_mount_of_a_hybrid_host_is_found_and_a_deleted_cgroup_is_none() -> None:
    assert find_cgroup2_mount(HYBRID) == Path("/sys/fs/cgroup/unified")
    assert find_cgroup2_mount(HYBRID.replace("cgroup2 cgroup2", "cgroup cgroup")) is None
    escaped = "41 31 0:38 / /sys/fs/my\\040cgroups rw - cgroup2 cgroup2 rw"
    assert find_cgroup2_mount(escaped) == Path("/sys/fs/my cgroups")
    assert own_cgroup("4:memory:/x\n0::/system.slice/watchd.service\n") == (
        "/system.slice/watchd.service"
    )
    assert own_cgroup("0::/gone (deleted)\n") is None
    assert own_cgroup("4:memory:/x\n") is None


def test_limits_become_memory_max_pids_max_and_cpu_max(tmp_path: Path) -> None:
    cgroup = Cgroup(tmp_path, frozenset({"memory", "pids", "cpu"}))
    assert cgroup.apply(Limits(memory=512 << 20, tasks=200, cpu=0.5)) == []
    assert (tmp_path / "memory.max").read_text() == "536870912"
    assert (tmp_path / "pids.max").read_text() == "200"
    assert (tmp_path / "cpu.max").read_text() == "50000 100000"
    assert cgroup.apply(Limits(cpu=2.5)) == []
    assert (tmp_path / "cpu.max").read_text() == "250000 100000"


def test_a_limit_without_its_controller_is_reported_and_not_written(tmp_path: Path) -> None:
    cgroup = Cgroup(tmp_path, frozenset({"pids"}))
    warnings = cgroup.apply(Limits(memory=1 << 30, tasks=10))
    assert [key for key, _ in warnings] == ["memory"]
    assert "no memory controller" in warnings[0][1]
    assert not (tmp_path / "memory.max").exists()
    assert (tmp_path / "pids.max").read_text() == "10"


def test_usage_and_oom_kills_are_read_from_their_files(tmp_path: Path) -> None:
    cgroup = Cgroup(tmp_path, frozenset())
    assert (cgroup.memory_bytes(), cgroup.cpu_seconds(), cgroup.oom_kills()) == (None, None, None)
    (tmp_path / "memory.current").write_text("43515904\n")
    (tmp_path / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    events = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n"
    (tmp_path / "memory.events").write_text(events)
    assert cgroup.memory_bytes() == 43515904
    assert cgroup.cpu_seconds() == 1.5
    assert cgroup.oom_kills() == 1
