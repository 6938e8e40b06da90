"""The exec shim every job child starts as, between fork and the job's own program.

Run as ``python -I -S -c SOURCE OPTION=VALUE... -- ARGV...`` (standard library only, no
site: it must start fast and must not import watchd). In this order, before ``execvp``:

- ``cgroup=PATH``: write "0" to PATH (a ``cgroup.procs``), joining the job's cgroup while
  still root, so that everything the program forks is born inside it;
- ``groups=G,G``, ``gid=N``, ``uid=N``: switch credentials (after the cgroup move, which
  needs root; before the death signal, which a credential change clears);
- ``pdeathsig=N`` with ``ppid=N``: ``PR_SET_PDEATHSIG``; exit at once if the parent is
  already gone;
- ``fds=A,B`` with ``fdnames=a:b``: the inherited fds A, B… become 3, 4…, with
  ``LISTEN_FDS``, ``LISTEN_FDNAMES`` and ``LISTEN_PID`` (this process, which exec keeps);
- ``pidenv=NAME,NAME``: set each variable to this process's PID, which exec keeps (for
  ``WATCHDOG_PID``, which sd_watchdog_enabled(3) compares with the caller's own PID);
- ``status=N``: a pipe, close-on-exec here, so the parent reads end-of-file when exec
  succeeds, or ``STEP NUL ERRNO NUL FILENAME`` when a step failed (then exit 127).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import sys

PR_SET_PDEATHSIG = 1
EXEC_FAILED = 127


def main(args: list[str]) -> None:
    split = args.index("--")
    options = dict(arg.split("=", 1) for arg in args[:split])
    argv = args[split + 1 :]
    status = int(options["status"])
    step, filename = "cgroup", options.get("cgroup", "")
    try:
        if "cgroup" in options:
            with open(options["cgroup"], "w") as procs:
                procs.write("0")
        step, filename = "user", ""
        if "groups" in options:
            os.setgroups([int(g) for g in options["groups"].split(",") if g])
        if "gid" in options:
            os.setgid(int(options["gid"]))
        if "uid" in options:
            os.setuid(int(options["uid"]))
        step = "pdeathsig"
        if "pdeathsig" in options:
            _set_parent_death_signal(int(options["pdeathsig"]))
            if os.getppid() != int(options["ppid"]):
                os._exit(EXEC_FAILED)  # the parent died before the signal was armed
        step = "fds"
        status = _pass_fds(options, status)
        for name in filter(None, options.get("pidenv", "").split(",")):
            os.environ[name] = str(os.getpid())
        step, filename = "exec", argv[0]
        os.set_inheritable(status, False)
        os.execvp(argv[0], argv)
    except OSError as error:
        report = f"{step}\0{error.errno or 0}\0{filename}".encode(errors="surrogateescape")
        try:
            os.write(status, report)
        finally:
            os._exit(EXEC_FAILED)


def _set_parent_death_signal(signum: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _pass_fds(options: dict[str, str], status: int) -> int:
    """Move the listed fds onto 3, 4, … and describe them; return where *status* now is."""
    if "fds" not in options:
        return status
    fds = [int(fd) for fd in options["fds"].split(",") if fd]
    top = 3 + len(fds)
    # Out of the way first, so that no source is overwritten before it is moved.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, top) for fd in fds]
    old_status, status = status, fcntl.fcntl(status, fcntl.F_DUPFD_CLOEXEC, top)
    for target, fd in enumerate(high, start=3):
        os.dup2(fd, target)  # the copy is inheritable
        # Blocking, as systemd hands sockets over, whatever an earlier child set on them
        # (the flag belongs to the socket, which every child of the job shares).
        os.set_blocking(target, True)
    for fd in {*fds, old_status} - set(range(3, top)):
        os.close(fd)  # inherited under their old numbers: not for the program
    os.environ["LISTEN_FDS"] = str(len(fds))
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.environ["LISTEN_FDNAMES"] = options.get("fdnames", "")
    return status


if __name__ == "__main__":
    main(sys.argv[1:])
