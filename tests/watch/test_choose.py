"""Which backend serves a subscription, and why: the hub is the only place that decides."""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.helpers.wait import async_wait_until
from watchd.errors import WatchLimitError
from watchd.watch.base import Backend, Change, ChangeKind, OnChanges, WatchSpec
from watchd.watch.choose import WatchHub, blind_file_system, file_system_of, parse_mountinfo
from watchd.watch.filters import PathFilter

MOUNTINFO = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
35 22 0:30 / /mnt/nfs rw,relatime shared:20 master:3 - nfs4 server:/export rw,vers=4.2
36 22 0:31 / /mnt/my\\040share rw - cifs //host/share rw
37 22 0:32 / /home/me/remote rw,nosuid,nodev,relatime - fuse.sshfs me@host:/srv rw
38 35 0:33 / /mnt/nfs/scratch rw,relatime shared:21 - tmpfs tmpfs rw
not a mountinfo line
"""


class FakeSubscription:
    def __init__(self, paths: int) -> None:
        self.paths = paths
        self.closed = False

    @property
    def backend(self) -> str:
        return "inotify"

    def watched_paths(self) -> int:
        return self.paths

    async def close(self) -> None:
        self.closed = True


class FakeInotify:
    """Stands in for the inotify backend; may run out of watches like the real one."""

    instances: int = 0

    def __init__(self, watch_limit_reached: bool = False) -> None:
        FakeInotify.instances += 1
        self.watch_limit_reached = watch_limit_reached
        self.specs: list[WatchSpec] = []
        self.closed = False

    async def subscribe(self, spec: WatchSpec, on_changes: OnChanges) -> FakeSubscription:
        if self.watch_limit_reached:
            raise WatchLimitError(str(spec.roots[0]))
        self.specs.append(spec)
        return FakeSubscription(len(spec.roots))

    async def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def count_instances() -> None:
    FakeInotify.instances = 0


def local_mounts(tmp_path: Path, *extra: tuple[str, str]) -> Path:
    """A mountinfo file: ``/`` is ext4, plus ``(mount point, fstype)`` pairs."""
    lines = ["22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw"]
    for number, (point, fstype) in enumerate(extra, start=40):
        lines.append(f"{number} 22 0:{number} / {point} rw,relatime - {fstype} src rw")
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(lines) + "\n")
    return path


def spec_for(*roots: Path) -> WatchSpec:
    return WatchSpec(roots, PathFilter(), 0.05)


def ignore(batch: Sequence[Change]) -> None:
    pass


def test_poll_when_asked(tmp_path: Path) -> None:
    async def main() -> None:
        hub = WatchHub(inotify_factory=FakeInotify, mountinfo=local_mounts(tmp_path))
        try:
            subscription = await hub.subscribe(spec_for(tmp_path), Backend.POLL, ignore)
            assert subscription.backend == "poll"
        finally:
            await hub.close()

    asyncio.run(main())
    assert FakeInotify.instances == 0


def test_auto_and_inotify_share_one_inotify_watcher(tmp_path: Path) -> None:
    created: list[FakeInotify] = []

    def factory() -> FakeInotify:
        created.append(FakeInotify())
        return created[-1]

    async def main() -> None:
        hub = WatchHub(inotify_factory=factory, mountinfo=local_mounts(tmp_path))
        auto = await hub.subscribe(spec_for(tmp_path), Backend.AUTO, ignore)
        explicit = await hub.subscribe(spec_for(tmp_path / "x"), Backend.INOTIFY, ignore)
        assert (auto.backend, explicit.backend) == ("inotify", "inotify")
        await hub.close()

    asyncio.run(main())
    assert len(created) == 1
    assert len(created[0].specs) == 2
    assert created[0].closed


def test_the_inotify_watch_limit_falls_back_to_polling_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Change] = []

    async def main() -> None:
        hub = WatchHub(
            inotify_factory=lambda: FakeInotify(watch_limit_reached=True),
            mountinfo=local_mounts(tmp_path),
        )
        try:
            subscription = await hub.subscribe(spec_for(tmp_path), Backend.AUTO, seen.extend)
            assert subscription.backend == "poll (inotify watch limit reached)"
            path = tmp_path / "app.py"
            path.write_text("x")
            await async_wait_until(
                lambda: Change(ChangeKind.ADDED, str(path)) in seen, "the poll fallback to work"
            )
        finally:
            await hub.close()

    with caplog.at_level(logging.WARNING, logger="watchd.watch"):
        asyncio.run(main())
    warnings = [record for record in caplog.records if record.name == "watchd.watch"]
    assert len(warnings) == 1
    assert "fs.inotify.max_user_watches" in warnings[0].getMessage()
    assert str(tmp_path) in warnings[0].getMessage()


def test_an_inotify_instance_limit_falls_back_to_polling_and_is_retried_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[int] = []

    def factory() -> FakeInotify:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError(errno.EMFILE, "Too many open files")
        return FakeInotify()

    async def main() -> None:
        hub = WatchHub(inotify_factory=factory, mountinfo=local_mounts(tmp_path))
        try:
            first = await hub.subscribe(spec_for(tmp_path), Backend.AUTO, ignore)
            second = await hub.subscribe(spec_for(tmp_path), Backend.AUTO, ignore)
            assert first.backend == "poll (inotify instance limit reached)"
            assert second.backend == "inotify"
        finally:
            await hub.close()

    with caplog.at_level(logging.WARNING, logger="watchd.watch"):
        asyncio.run(main())
    assert "fs.inotify.max_user_instances" in caplog.text


def test_auto_polls_network_file_systems(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    (remote / "app").mkdir(parents=True)
    mounts = local_mounts(tmp_path, (str(remote), "nfs4"))

    async def main() -> None:
        hub = WatchHub(inotify_factory=FakeInotify, mountinfo=mounts)
        try:
            subscription = await hub.subscribe(spec_for(remote / "app"), Backend.AUTO, ignore)
            assert subscription.backend == "poll (nfs4 file system)"
        finally:
            await hub.close()

    asyncio.run(main())
    assert FakeInotify.instances == 0


def test_a_root_linked_onto_a_network_file_system_is_polled(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    (remote / "app").mkdir(parents=True)
    link = tmp_path / "app"
    link.symlink_to(remote / "app")
    mounts = local_mounts(tmp_path, (str(remote), "fuse.sshfs"))

    async def main() -> None:
        hub = WatchHub(inotify_factory=FakeInotify, mountinfo=mounts)
        try:
            local = await hub.subscribe(spec_for(tmp_path / "src"), Backend.AUTO, ignore)
            linked = await hub.subscribe(spec_for(tmp_path / "src", link), Backend.AUTO, ignore)
            assert local.backend == "inotify"
            assert linked.backend == "poll (fuse.sshfs file system)"
        finally:
            await hub.close()

    asyncio.run(main())


def test_inotify_asked_for_on_a_network_file_system_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mounts = local_mounts(tmp_path, (str(tmp_path), "cifs"))

    async def main() -> None:
        hub = WatchHub(inotify_factory=FakeInotify, mountinfo=mounts)
        try:
            subscription = await hub.subscribe(spec_for(tmp_path), Backend.INOTIFY, ignore)
            assert subscription.backend == "inotify"
        finally:
            await hub.close()

    with caplog.at_level(logging.WARNING, logger="watchd.watch"):
        asyncio.run(main())
    assert "cifs" in caplog.text


def test_without_mountinfo_auto_means_inotify(tmp_path: Path) -> None:
    async def main() -> None:
        hub = WatchHub(inotify_factory=FakeInotify, mountinfo=tmp_path / "missing")
        try:
            subscription = await hub.subscribe(spec_for(tmp_path), Backend.AUTO, ignore)
            assert subscription.backend == "inotify"
        finally:
            await hub.close()

    asyncio.run(main())


@pytest.mark.skipif(
    importlib.util.find_spec("watchd.watch.inotify") is None, reason="no inotify backend"
)
def test_the_real_hub_uses_inotify_for_a_local_directory(tmp_path: Path) -> None:
    async def main() -> None:
        hub = WatchHub()
        try:
            subscription = await hub.subscribe(spec_for(tmp_path), Backend.AUTO, ignore)
            assert subscription.backend == "inotify"
            await subscription.close()
        finally:
            await hub.close()

    asyncio.run(main())


def test_mountinfo_lines_are_parsed() -> None:
    assert parse_mountinfo(MOUNTINFO) == [
        ("/", "ext4"),
        ("/mnt/nfs", "nfs4"),
        ("/mnt/my share", "cifs"),
        ("/home/me/remote", "fuse.sshfs"),
        ("/mnt/nfs/scratch", "tmpfs"),
    ]


@pytest.mark.parametrize(
    ("path", "fstype"),
    [
        ("/", "ext4"),
        ("/srv/app", "ext4"),
        ("/mnt/nfs", "nfs4"),
        ("/mnt/nfs/app/main.py", "nfs4"),
        ("/mnt/nfs2/app", "ext4"),  # a prefix of the name is not a parent
        ("/mnt/nfs/scratch/x", "tmpfs"),  # the longest mount point wins
        ("/mnt/my share/doc", "cifs"),
        ("/home/me/remote/src", "fuse.sshfs"),
    ],
)
def test_the_longest_mount_point_decides_the_file_system(path: str, fstype: str) -> None:
    assert file_system_of(path, parse_mountinfo(MOUNTINFO)) == fstype


def test_the_last_mount_on_the_same_point_is_the_one_in_use() -> None:
    mounts = [("/", "ext4"), ("/srv", "nfs4"), ("/srv", "ext4")]
    assert file_system_of("/srv/app", mounts) == "ext4"
    assert file_system_of("/srv/app", mounts[:2]) == "nfs4"


def test_blind_file_systems_are_named() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert blind_file_system(["/srv", "/tmp"], mounts) is None
    assert blind_file_system(["/srv", "/mnt/nfs/x"], mounts) == "nfs4"
    assert blind_file_system(["/mnt/nfs/scratch"], mounts) is None
    assert blind_file_system(["/home/me/remote"], mounts) == "fuse.sshfs"
