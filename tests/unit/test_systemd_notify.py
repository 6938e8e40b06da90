"""The sd_notify layer against a real AF_UNIX datagram socket standing in for systemd's."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers.daemon import Record, child_command
from tests.helpers.wait import async_wait_until, wait_for
from tests.integration.conftest import daemon_running
from tests.integration.test_sockets import server_job
from watchd.supervise.process import ChildProcess, SpawnSpec
from watchd.systemd import Notifier, watchdog_interval

RECEIVE_TIMEOUT = 10.0


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET: one datagram is one sd_notify message."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def receive(self, timeout: float = RECEIVE_TIMEOUT) -> str:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536).decode("utf-8")
        except TimeoutError:
            raise AssertionError(f"no sd_notify message within {timeout}s") from None

    def pending(self) -> list[str]:
        """Every message already queued. Datagrams on a Unix socket are queued by the time
        the sender's send() returns, so this is exact, not a guess."""
        self.sock.setblocking(False)
        messages = []
        try:
            while True:
                messages.append(self.sock.recv(65536).decode("utf-8"))
        except BlockingIOError:
            return messages

    async def receive_async(self) -> str:
        self.sock.setblocking(False)
        loop = asyncio.get_running_loop()
        data = await wait_for(loop.sock_recv(self.sock, 65536), "an sd_notify message")
        return data.decode("utf-8")


@pytest.fixture(params=["abstract", "path"])
def systemd(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeSystemd]:
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        if request.param == "abstract":
            name = f"watchd-test-{uuid.uuid4().hex}"
            sock.bind("\0" + name)
            monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
            yield FakeSystemd(sock)
        else:
            # Unix socket paths are limited to 108 bytes: keep this one short.
            with tempfile.TemporaryDirectory(prefix="wd", dir="/tmp") as short:
                path = str(Path(short) / "notify")
                sock.bind(path)
                monkeypatch.setenv("NOTIFY_SOCKET", path)
                yield FakeSystemd(sock)
    finally:
        sock.close()


def test_messages_arrive_in_order(systemd: FakeSystemd) -> None:
    notifier = Notifier(clock=lambda: 123_456_789_999)
    assert notifier.enabled
    notifier.ready("2 jobs running; 10 paths watched (inotify)")
    notifier.status("1 job running, 1 backing off; 10 paths watched (inotify)")
    notifier.reloading()
    notifier.ready("3 jobs running; 12,408 paths watched (inotify)")
    notifier.stopping()
    notifier.close()

    assert systemd.receive() == "READY=1\nSTATUS=2 jobs running; 10 paths watched (inotify)"
    assert systemd.receive() == "STATUS=1 job running, 1 backing off; 10 paths watched (inotify)"
    # sd_notify(3): the CLOCK_MONOTONIC microseconds at which the reload began.
    assert systemd.receive() == "RELOADING=1\nMONOTONIC_USEC=123456789"
    assert systemd.receive() == "READY=1\nSTATUS=3 jobs running; 12,408 paths watched (inotify)"
    assert systemd.receive() == "STOPPING=1"
    assert systemd.pending() == []


def test_a_reload_is_stamped_with_the_monotonic_clock_systemd_reads(
    systemd: FakeSystemd,
) -> None:
    notifier = Notifier()
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.close()
    stamp = int(systemd.receive().removeprefix("RELOADING=1\nMONOTONIC_USEC="))
    assert before <= stamp <= after


def test_status_with_any_job_name_arrives_as_utf8(systemd: FakeSystemd) -> None:
    notifier = Notifier()
    notifier.status("1 job running: ウェブ, café, 🚀")
    notifier.status("config error: jobs.d/a.yaml:1:1: bad\nsecond line")
    notifier.status("undecodable file name: \udcff.py")
    notifier.close()
    assert systemd.receive() == "STATUS=1 job running: ウェブ, café, 🚀"
    # One message, one line: a newline would start a new assignment.
    assert systemd.receive() == "STATUS=config error: jobs.d/a.yaml:1:1: bad second line"
    assert systemd.receive() == "STATUS=undecodable file name: ?.py"


class SteppedSleep:
    """An ``asyncio.sleep`` whose every wait lasts until the test ends it."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self._waiting: list[asyncio.Future[None]] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        waiting = asyncio.get_running_loop().create_future()
        self._waiting.append(waiting)
        await waiting

    async def wait_for_sleeps(self, count: int) -> None:
        await async_wait_until(lambda: len(self.asked) == count, f"sleep number {count}")

    async def end_one(self) -> None:
        await async_wait_until(lambda: self._waiting, "the pinger to sleep")
        self._waiting.pop(0).set_result(None)


def test_watchdog_pings_at_half_the_interval_and_only_when_the_loop_turns(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    sleep = SteppedSleep()
    notifier = Notifier(sleep=sleep)
    assert notifier.watchdog_interval == 0.1

    async def scenario() -> None:
        notifier.start_watchdog()
        assert await systemd.receive_async() == "WATCHDOG=1"  # at once
        for pings in range(1, 5):
            await sleep.wait_for_sleeps(pings)
            # Until its sleep ends, the pinger sends nothing more.
            assert systemd.pending() == []
            await sleep.end_one()
            assert await systemd.receive_async() == "WATCHDOG=1"
        await sleep.wait_for_sleeps(5)
        assert sleep.asked == [0.1] * 5

        notifier.close()
        await asyncio.sleep(0)  # let the cancelled task finish
        assert not notifier.watchdog_running
        assert systemd.pending() == []

    asyncio.run(scenario())


def test_watchdog_meant_for_another_process_is_not_pinged(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    notifier = Notifier()

    async def scenario() -> None:
        notifier.start_watchdog()
        assert not notifier.watchdog_running
        notifier.close()

    asyncio.run(scenario())
    assert notifier.watchdog_interval is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "43"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(environ, 42) == expected


def test_outside_systemd_nothing_happens(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    records = _capture_watchd_log()

    async def scenario() -> None:
        fds = set(os.listdir("/proc/self/fd"))
        notifier = Notifier()
        assert not notifier.enabled
        notifier.ready("1 job running")
        notifier.status("1 job running")
        notifier.reloading()
        notifier.stopping()
        notifier.start_watchdog()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert set(os.listdir("/proc/self/fd")) == fds
        notifier.close()

    try:
        asyncio.run(scenario())
    finally:
        logging.getLogger("watchd").removeHandler(records)
    assert records.messages == []
    assert capfd.readouterr() == ("", "")


def test_an_unusable_notify_socket_is_reported_once(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = os.environ["NOTIFY_SOCKET"]
    records = _capture_watchd_log()
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/notify")
        assert not Notifier().enabled
        assert len(records.messages) == 1
        assert "NOTIFY_SOCKET=/nonexistent/notify" in records.messages[0]

        monkeypatch.setenv("NOTIFY_SOCKET", address)
        notifier = Notifier()
        assert notifier.enabled
        systemd.sock.close()  # systemd went away: sending fails (ECONNREFUSED)
        notifier.ready("1 job running")
        notifier.status("1 job running")
        notifier.close()
        assert len(records.messages) == 2
        assert "cannot notify systemd" in records.messages[1]
    finally:
        logging.getLogger("watchd").removeHandler(records)


def test_children_do_not_inherit_the_notify_socket(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    lines: list[str] = []

    async def scenario() -> None:
        code = "import json, os; print(json.dumps(dict(os.environ)))"
        child = ChildProcess.spawn(
            SpawnSpec(argv=(sys.executable, "-c", code)), lambda line, _at: lines.append(line)
        )
        await wait_for(child.finish(signal.SIGTERM, 5.0), "the child to exit")

    asyncio.run(scenario())
    environ = json.loads("".join(lines))
    assert "PATH" in environ
    assert not {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} & set(environ)


def test_the_daemon_tells_systemd_what_it_does(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The first ping goes out at once, the next only after 30 s: exactly one is expected.
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    jobs = {"web": {"command": child_command(tmp_path / "web.record")}}
    messages: list[str] = []

    async def until(prefix: str) -> None:
        while not messages or not messages[-1].startswith(prefix):
            messages.append(await systemd.receive_async())

    async def scenario() -> None:
        async with daemon_running(tmp_path, jobs):
            await until("WATCHDOG=1")
            os.kill(os.getpid(), signal.SIGHUP)
            await until("RELOADING=1")
            await until("READY=1")
        await asyncio.sleep(0)  # let the cancelled watchdog task finish
        assert "watchdog" not in {task.get_name() for task in asyncio.all_tasks()}

    asyncio.run(scenario())
    messages += systemd.pending()

    # STATUS= updates come whenever a job changes state; the rest comes in this order.
    events = [m.split("\n")[0] for m in messages if not m.startswith("STATUS=")]
    assert events == ["READY=1", "WATCHDOG=1", "RELOADING=1", "READY=1", "STOPPING=1"]
    assert messages[0] == "READY=1\nSTATUS=1 job running; 0 paths watched"
    (reloaded,) = [m for m in messages[1:] if m.startswith("READY=1")]
    assert reloaded == messages[0]


def test_a_reload_is_over_for_systemd_once_the_jobs_it_changed_are_ready(
    systemd: FakeSystemd, tmp_path: Path
) -> None:
    record, gate = Record(tmp_path / "record"), tmp_path / "gate"
    gate.touch()
    web = server_job(record, tmp_path / "src", "--notify", "--gate", str(gate), ready="notify")
    web["sockets"] = [{"tcp": "127.0.0.1:0"}]
    messages: list[str] = []

    async def until(prefix: str) -> str:
        while not messages or not messages[-1].startswith(prefix):
            messages.append(await systemd.receive_async())
        return messages[-1]

    async def scenario() -> None:
        async with daemon_running(tmp_path, {"web": web}) as daemon:
            await until("READY=1")
            gate.unlink()
            edited = {"jobs": {"web": web | {"env": {"EDITED": "1"}}}}
            (tmp_path / "jobs.d" / "jobs.yaml").write_text(yaml.safe_dump(edited))
            await until("RELOADING=1")
            await async_wait_until(lambda: len(record.starts()) >= 2, "the changed job's child")
            assert not [m for m in systemd.pending() if m.startswith("READY=1")]
            assert daemon.runners["web"].status().state == "starting"
            gate.touch()
            ready = await until("READY=1")
            assert ready.startswith("READY=1\nSTATUS=1 job running")

    asyncio.run(scenario())


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _capture_watchd_log() -> _Records:
    """Collect the "watchd" logger's records whether or not it propagates to the root."""
    handler = _Records()
    logger = logging.getLogger("watchd")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
    return handler


def test_a_receiver_that_stops_reading_never_blocks_the_daemon(
    systemd: FakeSystemd, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier()
    try:
        notifier.ready("1 job running")
        # Far more than a datagram socket's queue holds; a blocking send would hang here.
        for number in range(5000):
            notifier.status(f"{number} jobs running")
        assert "cannot notify systemd" in caplog.text
        assert systemd.pending()[0].startswith("READY=1")
    finally:
        notifier.close()
