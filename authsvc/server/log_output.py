"""Where ``authsvc serve`` writes its log: standard error, in batches.

Every token request writes two lines (the access line and the audit line). A stream handler
makes a write system call for each, which costs more than formatting the line; this handler
collects the formatted lines and writes them together at most ``interval`` seconds later, from
a background thread, and at exit. The lines are written in chunks of whole lines of at most
4096 bytes (``PIPE_BUF``), so the workers that share standard error never interleave inside a
line, even on a pipe.

One record is always one line, whatever a request put in it: the formatter escapes every
character that ends a line for some reader or that a terminal obeys (see ``one_line``), in the
whole record, a traceback included.
"""

import logging
import re
import sys
import threading
import time
from typing import TextIO

from authsvc.core.escaping import one_line
from authsvc.core.process_id import current_pid

#: Seconds a line may wait before it is written.
FLUSH_INTERVAL = 0.05
#: Writes up to this size reach a pipe whole, never interleaved with another process's.
PIPE_BUF = 4096

#: The record fields ``LogFormatter.format_line`` knows without a record.
LINE_FIELDS = frozenset({"asctime", "process", "levelname", "name", "message"})


class LogFormatter(logging.Formatter):
    """A Formatter that writes each record on one line (``one_line``), and formats each
    second's date once (``time.strftime`` per line is a good part of a line's cost), with the
    milliseconds as the default one has them."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)
        self._second: int | None = None
        self._date = ""
        fields = set(re.findall(r"%\((\w+)\)", self._fmt or ""))
        #: Whether ``format_line`` can write this format's lines without a record.
        self.formats_lines = (isinstance(self._style, logging.PercentStyle)
                              and fields <= LINE_FIELDS and self.datefmt is None
                              and bool(self.default_msec_format))

    def format_line(self, name: str, levelname: str, message: str) -> str:
        """The line ``format`` writes for a record of ``name`` at ``levelname`` with
        ``message`` (no arguments, no traceback), made now (``formats_lines`` only)."""
        created = time.time()
        return one_line(self._fmt % {  # type: ignore[operator]
            "asctime": self._asctime(created, int((created - int(created)) * 1000) + 0.0),
            "process": current_pid(), "levelname": levelname, "name": name,
            "message": message})

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line: the message, and the traceback if any, with their line
        breaks and other control characters escaped. A traceback on the record's own line
        (``\\n`` between its lines) is harder to read than an indented one, but nothing a
        request put in an exception's message can then pass for a record of its own, whatever
        reads the log line by line."""
        return one_line(super().format(record))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None or self.datefmt is not None or not self.default_msec_format:
            return super().formatTime(record, datefmt)
        return self._asctime(record.created, record.msecs)

    def _asctime(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:  # a race here only formats the same second twice
            self._date = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._date, msecs)  # type: ignore[operator]


class BatchingStreamHandler(logging.StreamHandler[TextIO]):
    """Writes the formatted lines ``interval`` seconds late, together; formats with a
    LogFormatter (one line per record) unless given another formatter."""

    def __init__(self, stream: TextIO | None = None, interval: float = FLUSH_INTERVAL) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.setFormatter(LogFormatter())
        self.interval = interval
        self._lines: list[str] = []
        self._writer_pid: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the formatted line (``handle`` holds the handler's lock)."""
        try:
            line = self.format(record) + self.terminator
        except Exception:  # logging must never break the caller
            self.handleError(record)
            return
        self._append(line)

    def _append(self, line: str) -> None:
        """Queue ``line`` (holding the handler's lock)."""
        if self._writer_pid != current_pid():  # first line in this process
            self._forget_parent_lines()
            threading.Thread(target=self._write_forever, name="log-writer", daemon=True).start()
        self._lines.append(line)

    def queue_line(self, name: str, levelname: str, message: str) -> None:
        """Queue the line of a record of ``name`` at ``levelname`` with ``message``, without
        making the record when the formatter can (``observability.log_lines``)."""
        formatter = self.formatter
        if not isinstance(formatter, LogFormatter) or not formatter.formats_lines:
            self.handle(logging.LogRecord(name, logging.getLevelName(levelname), "", 0,
                                          message, None, None))
            return
        line = formatter.format_line(name, levelname, message) + self.terminator
        with self.lock:  # type: ignore[union-attr]  # (made by Handler.__init__)
            self._append(line)

    def _forget_parent_lines(self) -> None:
        """A forked worker starts with its parent's queued lines, which the parent writes
        itself: drop them, or they would be written once more per worker."""
        if self._writer_pid is not None:
            self._lines = []
        self._writer_pid = current_pid()

    def flush(self) -> None:
        """Write every queued line now."""
        self.acquire()
        try:
            if self._writer_pid != current_pid():
                self._forget_parent_lines()
            lines, self._lines = self._lines, []
            chunk: list[str] = []
            size = 0
            for line in lines:
                length = len(line.encode("utf-8", "backslashreplace"))
                if chunk and size + length > PIPE_BUF:
                    self._write("".join(chunk))
                    chunk, size = [], 0
                chunk.append(line)
                size += length
            if chunk:
                self._write("".join(chunk))
        finally:
            self.release()

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # standard error closed or gone: nothing to do
            pass

    def _write_forever(self) -> None:
        while True:
            time.sleep(self.interval)
            self.flush()
