"""The control socket's file: a directory only watchd can write, a socket only watchd made.

Everything after opening the directory goes through its descriptor (``*at`` calls and
``/proc/self/fd/N/name``), so swapping a directory or planting a link along the path
after the checks changes nothing. The socket is bound in a private directory inside it,
given its mode and group there, and renamed into place: nobody else ever sees it with
other permissions, and ``chmod``/``chown`` never meet a link someone else put there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from watchd.errors import WatchdError

# A directory watchd creates for its socket: others may pass through it, never write to it.
DIRECTORY_MODE = 0o755
# sun_path is 108 bytes, the terminating NUL included.
MAX_PATH_BYTES = 107


class SocketPathError(WatchdError):
    """The control socket cannot be made safely where the config puts it."""


@dataclass(frozen=True)
class SocketFile:
    """A listening socket renamed into place, and what identifies the file as ours."""

    path: Path
    sock: socket.socket
    dir_fd: int
    device: int
    inode: int
    group_refused: bool  # the group could not be given (watchd is not root, not a member)

    def remove(self) -> None:
        """Unlink the socket, if the file at the path is still the one made here."""
        try:
            if _is_ours(os.stat(self.path.name, dir_fd=self.dir_fd, follow_symlinks=False), self):
                os.unlink(self.path.name, dir_fd=self.dir_fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(self.dir_fd)


def create(path: Path, mode: int, gid: int | None) -> SocketFile:
    """Bind and listen on *path* with *mode* and group *gid*, or raise SocketPathError."""
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise SocketPathError(f"{path}: a socket path may be at most {MAX_PATH_BYTES} bytes")
    dir_fd = open_directory(path.parent)
    try:
        _check_existing(dir_fd, path)
        sock, info, group_refused = _bind_privately(dir_fd, path, mode, gid)
    except OSError as error:
        os.close(dir_fd)
        raise SocketPathError(f"{path}: cannot create the control socket: {error}") from None
    except BaseException:
        os.close(dir_fd)
        raise
    return SocketFile(path, sock, dir_fd, info.st_dev, info.st_ino, group_refused)


def open_directory(directory: Path) -> int:
    """A descriptor of the socket's directory (created if missing), once checked to be safe."""
    created = _make_directories(directory)
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise SocketPathError(f"{directory}: cannot open the socket's directory: {error}") from None
    try:
        info = os.fstat(fd)
        if created and info.st_uid == os.geteuid():
            os.fchmod(fd, DIRECTORY_MODE)  # exactly, whatever the umask
            info = os.fstat(fd)
        _check_directory(directory, info)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _make_directories(directory: Path) -> bool:
    """Create *directory* and missing parents, none writable by others; True if it was made."""
    missing = [p for p in (directory, *directory.parents) if not os.path.lexists(p)]
    for path in reversed(missing):
        try:
            os.mkdir(path, DIRECTORY_MODE)
        except FileExistsError:
            continue
        except OSError as error:
            raise SocketPathError(
                f"{path}: cannot create the socket's directory: {error}"
            ) from None
    return directory in missing


def _check_directory(directory: Path, info: os.stat_result) -> None:
    owners = {0, os.geteuid()}
    if info.st_uid not in owners:
        raise SocketPathError(
            f"{directory}: the socket's directory belongs to uid {info.st_uid}, "
            f"not to {_who(os.geteuid())}; refusing to put the control socket there "
            "(remove it, and watchd creates its own)"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SocketPathError(
            f"{directory}: the socket's directory is writable by others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); refusing to put the control socket "
            f"there (make it {DIRECTORY_MODE:04o}, or choose a directory only watchd can write)"
        )


def _check_existing(dir_fd: int, path: Path) -> None:
    """Refuse anything at *path* but a stale socket of ours, which the rename replaces."""
    try:
        info = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise SocketPathError(
            f"{path}: exists and is {_kind(info.st_mode)}, not a socket; watchd only ever "
            "replaces a socket it made itself (remove it yourself if it is not needed)"
        )
    if info.st_uid != os.geteuid():
        raise SocketPathError(
            f"{path}: is a socket of uid {info.st_uid}, not of {_who(os.geteuid())}; "
            "watchd only ever replaces a socket it made itself"
        )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(_at(dir_fd, path.name))
        except OSError as error:
            if error.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return  # left by a watchd that died; replaced below
            raise SocketPathError(f"{path}: cannot probe the existing socket: {error}") from None
    raise SocketPathError(f"{path}: another watchd is serving this socket")


def _bind_privately(
    dir_fd: int, path: Path, mode: int, gid: int | None
) -> tuple[socket.socket, os.stat_result, bool]:
    private = Path(_private_directory(dir_fd))
    temporary = private / "socket"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(temporary))
        os.chmod(temporary, mode)  # no one else can enter the private directory
        group_refused = False
        if gid is not None:
            try:
                os.chown(temporary, -1, gid)
            except PermissionError:
                group_refused = True
        info = os.stat(temporary, follow_symlinks=False)
        sock.listen(128)
        os.rename(f"{private.name}/socket", path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(private)
    return sock, info, group_refused


def _private_directory(dir_fd: int) -> str:
    """A new directory of mode 0700 beside the socket: ``tempfile.mkdtemp``, without
    importing tempfile (and random, shutil, bz2 and lzma with it) into the daemon."""
    while True:
        path = _at(dir_fd, f".watchd-{os.urandom(6).hex()}")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path


def _is_ours(info: os.stat_result, made: SocketFile) -> bool:
    return (
        stat.S_ISSOCK(info.st_mode)
        and info.st_uid == os.geteuid()
        and (info.st_dev, info.st_ino) == (made.device, made.inode)
    )


def _at(dir_fd: int, name: str) -> str:
    """A path that reaches *name* in the directory *dir_fd* itself, whatever its path now."""
    return f"/proc/self/fd/{dir_fd}/{name}"


def _kind(mode: int) -> str:
    kinds = {
        stat.S_IFLNK: "a symbolic link",
        stat.S_IFREG: "a regular file",
        stat.S_IFDIR: "a directory",
        stat.S_IFIFO: "a FIFO",
    }
    return kinds.get(stat.S_IFMT(mode), "a special file")


def _who(uid: int) -> str:
    with contextlib.suppress(KeyError):
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    return f"uid {uid}"
