"""watchd's log and its jobs' output lines.

Outside journald: plain lines on stderr, job output as ``web | …``. Under journald
(stderr is the stream systemd connected): watchd's own lines on stderr with their
priorities, and each job's lines straight to the journal with ``WATCHD_JOB=`` and
``SYSLOG_IDENTIFIER=`` set to the job's name, at most JOURNAL_RATE lines a second per job
(after a burst of JOURNAL_BURST), with a line saying how many were dropped. Either way
nothing here waits for a reader: stderr is written through a bounded non-blocking
:class:`~watchd.logwriter.LogWriter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time

from watchd.journal import JournalSocket, encode
from watchd.logwriter import LogWriter
from watchd.ratelimit import FloodLimit

# sd-daemon(3) priority prefixes.
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# What one job may send to the journal: a burst, then a steady rate (lines a second).
JOURNAL_BURST = 10_000
JOURNAL_RATE = 2_000

output_log = logging.getLogger("watchd.output")


class JournalFormatter(logging.Formatter):
    """``<N>message``: journald stamps time and unit itself."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        # Each line of a multi-line message (a traceback) keeps its priority.
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines() or [""])


class WriterHandler(logging.Handler):
    """A logging handler that hands each formatted record to a LogWriter."""

    def __init__(self, writer: LogWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
            self.writer.write(text.encode("utf-8", "backslashreplace"))
        except Exception:
            self.handleError(record)


def stderr_is_journal() -> bool:
    """True when stderr is the journald stream systemd connected (JOURNAL_STREAM=dev:ino)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in stream.split(":"))
        stat = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return stat.st_dev == device and stat.st_ino == inode


class JobOutput:
    """Where one job's output lines go; *step* names a helper command (``before_restart``)."""

    def __init__(self, job: str, step: str | None = None) -> None:
        self.job = job
        self.label = job if step is None else f"{job} ({step})"
        self.prefix = "" if step is None else f"({step}) "
        self.pid: int | None = None  # the child writing, for the journal's SYSLOG_PID=
        self.limit = FloodLimit(JOURNAL_RATE, JOURNAL_BURST)
        self.gap_timer: asyncio.TimerHandle | None = None

    def line(self, text: str) -> None:
        _sink.job_line(self, text)


class _LogSink:
    """Job lines through the logging module: ``web | …`` at info."""

    def job_line(self, output: JobOutput, text: str) -> None:
        output_log.info("%s | %s", output.label, text)

    def close(self) -> None:
        pass


class _StderrSink(_LogSink):
    """Job lines straight to stderr's writer, formatted as the log formats an info line.

    A flooding job's every line went through a LogRecord, its formatter and a lock (tens
    of microseconds each), a cost the event loop paid for every line; this is a fraction.
    """

    def __init__(self, writer: LogWriter, journal: bool) -> None:
        self._writer = writer
        self._journal = journal
        self._second = -1
        self._head = "<6>" if journal else ""

    def job_line(self, output: JobOutput, text: str) -> None:
        if not output_log.isEnabledFor(logging.INFO):
            return
        if not self._journal:
            now = int(time.time())
            if now != self._second:  # the time stamp changes once a second
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
                self._second, self._head = now, f"{stamp} INFO    "
        line = f"{self._head}{output.label} | {text}\n"
        self._writer.write(line.encode("utf-8", "backslashreplace"))


class _JournalSink(_LogSink):
    """Job lines as journal entries of their own, flood-limited per job."""

    def __init__(self) -> None:
        self._socket = JournalSocket(self._failed, self._queue_gap)

    def job_line(self, output: JobOutput, text: str) -> None:
        if not output_log.isEnabledFor(logging.INFO):
            return
        admitted, dropped = output.limit.admit(time.monotonic())
        if dropped:
            self._gap(output, dropped, f"more than {JOURNAL_RATE} lines/s")
        if admitted:
            self._send(output, 6, output.prefix + text)
        elif output.gap_timer is None:
            self._report_later(output)

    def _send(self, output: JobOutput, priority: int, message: str) -> None:
        fields = {
            "MESSAGE": message,
            "PRIORITY": str(priority),
            "SYSLOG_IDENTIFIER": output.job,
            "WATCHD_JOB": output.job,
        }
        if output.pid is not None:
            fields["SYSLOG_PID"] = str(output.pid)
        self._socket.send(output.job, encode(fields))

    def _gap(self, output: JobOutput, dropped: int, why: str) -> None:
        self._send(output, 4, f"{output.job}: {dropped} lines dropped ({why})")

    def _report_later(self, output: JobOutput) -> None:
        """A flood that stops short of letting a line through is still reported."""
        at = output.limit.report_at()
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            if at is not None:
                output.gap_timer = loop.call_at(at, self._report_due, output)

    def _report_due(self, output: JobOutput) -> None:
        output.gap_timer = None
        dropped = output.limit.due(time.monotonic())
        if dropped:
            self._gap(output, dropped, f"more than {JOURNAL_RATE} lines/s")
        elif output.limit.report_at() is not None:
            self._report_later(output)

    def _queue_gap(self, job: str, dropped: int) -> None:
        output = JobOutput(job)
        self._gap(output, dropped, "journald did not keep up")

    def _failed(self, job: str, entry: bytes) -> None:
        """journald refused the entry: its message goes to stderr instead."""
        message = _field(entry, b"MESSAGE")
        output_log.info("%s | %s", job, message)

    def close(self) -> None:
        self._socket.close()


def _field(entry: bytes, name: bytes) -> str:
    """One field of an encoded entry (only ever one of ours)."""
    position = 0
    while position < len(entry):
        end = entry.index(b"\n", position)
        head = entry[position:end]
        if b"=" in head:
            key, _, value = head.partition(b"=")
            position = end + 1
        else:
            key = head
            size = int.from_bytes(entry[end + 1 : end + 9], "little")
            value = entry[end + 9 : end + 9 + size]
            position = end + 9 + size + 1
        if key == name:
            return value.decode("utf-8", "replace")
    return ""


_sink: _LogSink = _LogSink()
_writer: LogWriter | None = None


def setup_logging(level: str = "info") -> None:
    """Log to stderr, never blocking; under journald, job lines to the journal."""
    global _sink, _writer
    shutdown_logging(timeout=0)
    journal = stderr_is_journal()
    formatter: logging.Formatter
    if journal:
        formatter = JournalFormatter("%(message)s")
    else:
        formatter = logging.Formatter(
            "%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S"
        )

    def report(count: int) -> bytes:
        text = f"watchd: dropped {count} log line{'s' if count != 1 else ''}"
        record = logging.LogRecord("watchd", logging.WARNING, __file__, 0, text, None, None)
        return (formatter.format(record) + "\n").encode()

    _writer = LogWriter(sys.stderr.fileno(), report=report)
    handler = WriterHandler(_writer)
    handler.setFormatter(formatter)
    root = logging.getLogger("watchd")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.propagate = False
    set_level(level)
    _sink = _StderrSink(_writer, journal)
    if journal and JournalSocket.available():
        with contextlib.suppress(OSError):
            _sink = _JournalSink()


def shutdown_logging(timeout: float = 1.0) -> None:
    """Close the journal socket and give stderr's backlog up to *timeout* to go out."""
    global _sink, _writer
    _sink.close()
    _sink = _LogSink()
    if _writer is None:
        return
    _writer.close(timeout)
    _writer = None
    # Whatever is logged after this (the loop is gone) is written the ordinary way.
    root = logging.getLogger("watchd")
    for old in list(root.handlers):
        if isinstance(old, WriterHandler):
            root.removeHandler(old)
            plain = logging.StreamHandler(sys.stderr)
            plain.setFormatter(old.formatter)
            root.addHandler(plain)


def set_level(level: str) -> None:
    logging.getLogger("watchd").setLevel(LEVELS.get(level, logging.INFO))
