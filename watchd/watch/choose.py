"""The one place that picks a watch backend, and keeps the reason when it is not inotify.

The whole daemon shares one :class:`WatchHub`: one inotify instance (created on first use)
and one poll watcher. ``auto`` means inotify, except on file systems where inotify cannot
see changes made elsewhere (NFS, SMB, sshfs, …), which are polled. Where inotify fails (its
watch or instance limit reached), the subscription is polled instead, the log says so and
names the sysctl to raise, and the subscription's ``backend`` keeps the reason for
``watchctl status``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from watchd.errors import WatchdError, WatchLimitError
from watchd.watch.base import Backend, OnChanges, ReportsLimit, Subscription, Watcher, WatchSpec
from watchd.watch.poll import PollWatcher

log = logging.getLogger("watchd.watch")

MOUNTINFO = Path("/proc/self/mountinfo")

# File systems on which inotify sees only the changes made through this very mount: edits
# made on the server or by another client go unnoticed.
BLIND_FILE_SYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",  # also WSL2's /mnt/c
        "drvfs",
        "afs",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "gfs2",
        "ocfs2",
        "vboxsf",
        "virtiofs",
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "fuse.glusterfs",
        "fuse.ceph-fuse",
        "fuse.vmhgfs-fuse",
        "fuse.davfs2",
    }
)

InotifyFactory = Callable[[], Watcher]
# Told, with the subscription's new ``backend``, when it moves to polling after it was armed.
OnFallback = Callable[[str], None]

LIMIT_REACHED = "inotify watch limit reached"

_ESCAPE = re.compile(r"\\([0-7]{3})")


def parse_mountinfo(text: str) -> list[tuple[str, str]]:
    """``(mount point, file system type)`` for each line of ``/proc/self/mountinfo``."""
    mounts: list[tuple[str, str]] = []
    for line in text.splitlines():
        # id parent major:minor root MOUNT-POINT options [optional…] - FSTYPE source super
        fields = line.split(" ")
        try:
            separator = fields.index("-", 6)
            mounts.append((_unescape(fields[4]), fields[separator + 1]))
        except (ValueError, IndexError):
            continue
    return mounts


def _unescape(field: str) -> str:
    """The kernel writes space, tab, newline and backslash as octal escapes."""
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def file_system_of(path: str, mounts: Iterable[tuple[str, str]]) -> str | None:
    """The type of the file system holding the absolute *path*: the mount with the longest
    mount point containing it; of mounts on the same point, the last (it is on top)."""
    found: str | None = None
    longest = -1
    for point, fstype in mounts:
        inside = point in ("/", path) or path.startswith(point + "/")
        if inside and len(point) >= longest:
            found, longest = fstype, len(point)
    return found


def blind_file_system(paths: Iterable[str], mounts: Sequence[tuple[str, str]]) -> str | None:
    """The first type among *paths*' file systems on which inotify is blind, if any."""
    for path in paths:
        fstype = file_system_of(path, mounts)
        if fstype in BLIND_FILE_SYSTEMS:
            return fstype
    return None


def _default_inotify() -> Watcher:
    # Imported on first use: a daemon whose jobs all poll never loads the inotify backend.
    from watchd.watch.inotify import InotifyWatcher  # noqa: PLC0415

    return InotifyWatcher()


class WatchHub:
    """Every subscription of the daemon goes through here."""

    def __init__(
        self,
        *,
        inotify_factory: InotifyFactory | None = None,
        mountinfo: Path = MOUNTINFO,
    ) -> None:
        self._inotify_factory = inotify_factory or _default_inotify
        self._mountinfo = mountinfo
        self._inotify: Watcher | None = None
        self._poll: PollWatcher | None = None

    async def subscribe(
        self,
        spec: WatchSpec,
        backend: Backend,
        on_changes: OnChanges,
        on_fallback: OnFallback | None = None,
    ) -> Subscription:
        """Arm *spec*'s watches with *backend* (or the fallback); return once armed. A
        fallback at arming shows in the returned ``backend``; a later one is told to
        *on_fallback*."""
        if backend == Backend.POLL:
            return await self._polled(spec, on_changes)
        fstype = self._blind_file_system(spec)
        if fstype is not None and backend == Backend.AUTO:
            return await self._polled(spec, on_changes, f"{fstype} file system")
        if fstype is not None:
            log.warning(
                "inotify asked for on %s (%s): changes made by other hosts will not be seen",
                _describe(spec),
                fstype,
            )
        inotify = self._inotify_watcher()
        if isinstance(inotify, str):
            return await self._polled(spec, on_changes, inotify)
        try:
            subscription = await inotify.subscribe(spec, on_changes)
        except WatchLimitError as error:
            log.warning("%s; polling %s instead", error, _describe(spec))
            return await self._polled(spec, on_changes, LIMIT_REACHED)
        if not isinstance(subscription, ReportsLimit):
            return subscription
        switching = FallbackSubscription(self, spec, on_changes, subscription, on_fallback)
        subscription.on_limit = switching.limit_reached
        return switching

    async def close(self) -> None:
        inotify, self._inotify = self._inotify, None
        poll, self._poll = self._poll, None
        if inotify is not None:
            await inotify.close()
        if poll is not None:
            await poll.close()

    def _inotify_watcher(self) -> Watcher | str:
        """The shared inotify watcher, or why there is none (tried again next time: the
        limit may have been raised, or other instances closed, meanwhile)."""
        if self._inotify is None:
            try:
                self._inotify = self._inotify_factory()
            except (OSError, WatchdError) as error:
                limit = isinstance(error, OSError) and error.errno == errno.EMFILE
                if limit:
                    log.warning(
                        "cannot create an inotify instance (%s); raise it with "
                        "'sysctl fs.inotify.max_user_instances=1024'; polling instead",
                        error,
                    )
                    return "inotify instance limit reached"
                log.warning("inotify unavailable (%s); polling instead", error)
                return "inotify unavailable"
        return self._inotify

    async def _polled(
        self, spec: WatchSpec, on_changes: OnChanges, reason: str | None = None
    ) -> Subscription:
        if self._poll is None:
            self._poll = PollWatcher()
        return await self._poll.subscribe(spec, on_changes, reason=reason)

    def _blind_file_system(self, spec: WatchSpec) -> str | None:
        try:
            mounts = parse_mountinfo(self._mountinfo.read_text(errors="replace"))
        except OSError:  # no /proc: nothing known, inotify it is
            return None
        if not any(fstype in BLIND_FILE_SYSTEMS for _, fstype in mounts):
            return None  # the usual case: no need to resolve thousands of roots
        # Symlinks resolved: a root may point onto another file system.
        return blind_file_system((os.path.realpath(root) for root in spec.roots), mounts)


class FallbackSubscription:
    """An inotify subscription that moves to polling, as at start-up (the same log line, the
    same ``backend``), when the tree outgrows the watch limit after it was armed."""

    def __init__(
        self,
        hub: WatchHub,
        spec: WatchSpec,
        on_changes: OnChanges,
        inotify: Subscription,
        on_fallback: OnFallback | None = None,
    ) -> None:
        self._hub = hub
        self._on_fallback = on_fallback
        self._spec = spec
        self._on_changes = on_changes
        self._current = inotify
        self._switch: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def backend(self) -> str:
        return self._current.backend

    def watched_paths(self) -> int:
        return self._current.watched_paths()

    def limit_reached(self, error: Exception) -> None:
        if self._switch is not None or self._closed:
            return
        log.warning("%s; polling %s instead", error, _describe(self._spec))
        self._switch = asyncio.get_running_loop().create_task(self._fall_back())

    async def _fall_back(self) -> None:
        # The inotify watches keep delivering until the poll's first scan is taken.
        try:
            poll = await self._hub._polled(self._spec, self._on_changes, LIMIT_REACHED)
        except Exception:
            log.exception("polling %s failed; inotify goes on", _describe(self._spec))
            return
        if self._closed:
            await poll.close()
            return
        inotify, self._current = self._current, poll
        if self._on_fallback is not None:
            self._on_fallback(poll.backend)
        await inotify.close()

    async def close(self) -> None:
        self._closed = True
        if self._switch is not None:
            await asyncio.gather(self._switch, return_exceptions=True)
        await self._current.close()


def _describe(spec: WatchSpec) -> str:
    return ", ".join(str(root) for root in spec.roots)
