"""The parent side: re-spawn the child while it exits 3, pass stop signals on, wait for a
fix after a failure.

The parent blocks its stop signals and ``SIGCHLD`` and takes them with ``sigwaitinfo``:
one thread, no handler races, and the signal's origin is known. A Ctrl-C typed at a
terminal is sent by the kernel to the whole foreground process group, child included, so it
is not passed on a second time; a signal sent with kill(2) to the parent alone is. The
child shares the parent's process group so it keeps the terminal (a debugger in it works).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from watchd.reloader.sockets import ParentSockets, shim_argv, shim_failure

log = logging.getLogger("watchd.reloader")

# siginfo's si_code for signals the kernel sends itself, such as a terminal's Ctrl-C.
SI_KERNEL = 0x80
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT})
WAITED = STOP_SIGNALS | {signal.SIGCHLD}
STOP_TIMEOUT = 10.0  # after a stop signal, SIGKILL a child that is still there


@dataclass(frozen=True)
class Ended:
    status: int  # the exit status, or 128 + the signal that killed it
    pid: int
    stop_signal: int | None  # a stop signal the parent received while the child ran
    by_change: bool = False  # the parent stopped it because files changed


class Parent:
    """Runs one child at a time and waits, on the main thread, for signals and changes."""

    def __init__(
        self, stop_timeout: float = STOP_TIMEOUT, sockets: ParentSockets | None = None
    ) -> None:
        self.stop_timeout = stop_timeout
        self.sockets = sockets
        self.stop_signal: int | None = None
        self.changed_paths: list[str] = []
        self._changed = threading.Event()
        self._main = threading.get_ident()
        # Threads started from now on inherit the mask, so every waited signal comes here.
        self._child_mask = signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)

    def on_change(self, paths: list[str]) -> None:
        """Called on a watcher thread: note the change and wake the main thread."""
        self.changed_paths = paths
        self._changed.set()
        # A SIGCHLD is what the main thread waits for: it then looks at both the child and
        # the change flag, so this wake-up and a real SIGCHLD may safely merge.
        signal.pthread_kill(self._main, signal.SIGCHLD)

    def spawn(self, argv: Sequence[str], env: dict[str, str]) -> int:
        """Start *argv* (searched in PATH) with the mask and dispositions a fresh program
        expects, and the parent's sockets as fds 3, 4, …; raise ``OSError`` if it cannot be
        run."""
        if self.sockets is None:
            return self._posix_spawn(argv, env)
        return self._spawn_with_sockets(argv, env, self.sockets)

    def _posix_spawn(self, argv: Sequence[str], env: dict[str, str]) -> int:
        return os.posix_spawnp(
            argv[0],
            list(argv),
            env,
            setsigmask=self._child_mask,
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )

    def _spawn_with_sockets(
        self, argv: Sequence[str], env: dict[str, str], sockets: ParentSockets
    ) -> int:
        """Through the exec shim, which alone can set LISTEN_PID to the child's PID. The
        sockets are inheritable only while the child is spawned: this thread is the only
        one that starts processes here."""
        status_read, status_write = os.pipe()
        passed = (*sockets.fds(), status_write)
        try:
            for fd in passed:
                os.set_inheritable(fd, True)
            try:
                pid = self._posix_spawn(
                    shim_argv(argv, sockets.fds(), sockets.names, status_write), env
                )
            finally:
                for fd in passed:
                    os.set_inheritable(fd, False)
                os.close(status_write)
            with os.fdopen(status_read, "rb") as status:
                status_read = -1
                failure = shim_failure(status.read(), argv[0])  # end of file once exec'd
        finally:
            if status_read >= 0:
                os.close(status_read)
        if failure is not None:
            os.waitpid(pid, 0)
            raise failure
        return pid

    def run(self, argv: Sequence[str], env: dict[str, str], restart_on_change: bool) -> Ended:
        """Run *argv* until it exits. With *restart_on_change*, a change stops it (SIGTERM,
        then SIGKILL after ``stop_timeout``); a stop signal is passed on the same way."""
        self._changed.clear()
        pid = self.spawn(argv, env)
        by_change = False
        deadline: float | None = None
        while True:
            info = self._wait(deadline)
            if info is None:  # it outstayed its stop timeout
                os.kill(pid, signal.SIGKILL)
                deadline = None
                continue
            if info.si_signo == signal.SIGCHLD:
                status = _reap(pid)
                if status is not None:
                    return Ended(status, pid, self.stop_signal, by_change)
                if restart_on_change and self._changed.is_set() and deadline is None:
                    by_change = True
                    os.kill(pid, signal.SIGTERM)
                    deadline = time.monotonic() + self.stop_timeout
                continue
            self.stop_signal = info.si_signo
            if info.si_code != SI_KERNEL:
                os.kill(pid, info.si_signo)
            if deadline is None:
                deadline = time.monotonic() + self.stop_timeout

    def wait_for_change(self) -> bool:
        """Block until files change (True) or a stop signal arrives (False)."""
        while not self._changed.is_set():
            info = self._wait(None)
            if info is not None and info.si_signo in STOP_SIGNALS:
                self.stop_signal = info.si_signo
                return False
        self._changed.clear()
        return True

    def _wait(self, deadline: float | None) -> signal.struct_siginfo | None:
        if deadline is None:
            return signal.sigwaitinfo(WAITED)
        return signal.sigtimedwait(WAITED, max(0.0, deadline - time.monotonic()))


def _reap(pid: int) -> int | None:
    """The child's status if it has ended (128 + N if signal N killed it), else None."""
    try:
        found, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 255  # reaped elsewhere: nothing more to learn
    if found == 0:
        return None
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def child_arguments() -> list[str]:
    """How to run this program again: the interpreter, its options, and the same script or
    ``-m`` module with the same arguments (as Django's ``get_child_arguments``)."""
    args = [sys.executable, *_interpreter_options()]
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is not None:
        # ``python -m package`` runs package.__main__; run the package again, not that.
        is_main = spec.name == "__main__" or spec.name.endswith(".__main__")
        name = spec.parent if is_main and spec.parent else spec.name
        return [*args, "-m", name, *sys.argv[1:]]
    script = sys.argv[0] if sys.argv else ""
    if not script or not os.path.isfile(script):
        raise RuntimeError(
            f"cannot re-run this program: {script!r} is not a script file "
            "(run it as a script or with python -m)"
        )
    return [*args, *sys.argv]


def _interpreter_options() -> list[str]:
    flags = sys.flags
    options = [f"-W{option}" for option in sys.warnoptions]
    options += [
        f"-X{key}" if value is True else f"-X{key}={value}" for key, value in sys._xoptions.items()
    ]
    options += ["-O"] * flags.optimize
    switches = {
        "-B": flags.dont_write_bytecode,
        "-E": flags.ignore_environment and not flags.isolated,
        "-s": flags.no_user_site and not flags.isolated,
        "-I": flags.isolated,
        "-P": flags.safe_path and not flags.isolated,
    }
    return options + [switch for switch, on in switches.items() if on]
