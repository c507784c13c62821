"""Log lines written in batches: whole lines, in order, in chunks a pipe keeps whole."""

import http.client
import json
import logging
import os
import re
import ssl
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from e2e.processes import settle_log
from test_tls import LOOPBACK, Live, running_server

from authsvc.observability.log_lines import info_line
from authsvc.server import log_output
from authsvc.server.log_output import PIPE_BUF, BatchingStreamHandler, LogFormatter
from authsvc.server.serve import ACCESS_FORMAT, LOG_FORMAT


class Recorder:
    """A stream that remembers each write."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def logger_with(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(f"authsvc-test-log-output.{name}")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    return logger


def test_lines_wait_for_the_interval_then_arrive_whole_and_in_order() -> None:
    stream = Recorder()
    handler = BatchingStreamHandler(stream, interval=0.05)  # type: ignore[arg-type]
    log = logger_with(handler, "order")
    lines = [f"line {i} " + "x" * (i % 300) for i in range(200)]
    for line in lines:
        log.info(line)
    assert stream.writes == []  # nothing yet: one write per line is what this saves
    deadline = time.monotonic() + 5
    while "".join(stream.writes).count("\n") < len(lines) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "".join(stream.writes) == "".join(line + "\n" for line in lines)
    assert len(stream.writes) < len(lines) / 10
    assert all(len(w.encode()) <= PIPE_BUF and w.endswith("\n") for w in stream.writes)


def test_a_line_longer_than_a_pipe_write_is_written_alone_and_whole() -> None:
    stream = Recorder()
    handler = BatchingStreamHandler(stream, interval=60)  # type: ignore[arg-type]
    log = logger_with(handler, "long")
    log.info("short")
    log.info("y" * (PIPE_BUF * 2))
    log.info("after")
    handler.flush()
    assert stream.writes == ["short\n", "y" * (PIPE_BUF * 2) + "\n", "after\n"]


def test_flush_at_exit_writes_what_is_left() -> None:
    """logging.shutdown (at exit) flushes each handler: no line is lost on a clean stop."""
    stream = Recorder()
    handler = BatchingStreamHandler(stream, interval=60)  # type: ignore[arg-type]
    logger_with(handler, "exit").info("last words")
    logging.shutdown([lambda: handler])  # type: ignore[list-item]
    assert stream.writes == ["last words\n"]


def test_the_formatter_dates_lines_as_logging_does() -> None:
    ours = LogFormatter("%(asctime)s %(message)s")
    theirs = logging.Formatter("%(asctime)s %(message)s")
    for created in (1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.5, 1_700_000_000.25):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == theirs.format(record)


# -- lines given directly (observability.log_lines) ------------------------------------------------

class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("message", ["GET /token 200", 'x\n{"forged": 1}\u2028', "é ünï"],
                         ids=repr)
def test_a_line_given_directly_is_the_line_its_record_would_make(
        message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    created = 1_700_000_000.25
    monkeypatch.setattr(log_output.time, "time", lambda: created)
    record = logging.LogRecord("authsvc.db.audit", logging.INFO, __file__, 1, message, None,
                               None)
    record.created, record.msecs = created, 250.0
    stream = Recorder()
    handler = BatchingStreamHandler(stream, interval=60)  # type: ignore[arg-type]
    handler.setFormatter(LogFormatter(LOG_FORMAT))
    handler.queue_line("authsvc.db.audit", "INFO", message)
    handler.flush()
    assert stream.writes == [written(record)]


def test_info_line_skips_the_record_when_the_server_handler_is_the_only_one() -> None:
    stream = Recorder()
    handler = BatchingStreamHandler(stream, interval=60)  # type: ignore[arg-type]
    handler.setFormatter(LogFormatter(LOG_FORMAT))
    handler.handle = lambda record: pytest.fail("made a record")  # type: ignore[method-assign]
    info_line(logger_with(handler, "direct"), "hello")
    handler.flush()
    assert len(stream.writes) == 1 and stream.writes[0].endswith(
        "authsvc-test-log-output.direct: hello\n")


def test_info_line_goes_through_logging_when_another_handler_listens() -> None:
    """A test's capture handler, or an operator's second handler, sees every line."""
    stream = Recorder()
    server = BatchingStreamHandler(stream, interval=60)  # type: ignore[arg-type]
    capture = ListHandler()
    log = logger_with(server, "two")
    log.addHandler(capture)
    info_line(log, "hello")
    server.flush()
    assert [r.getMessage() for r in capture.records] == ["hello"]
    assert stream.writes == ["hello\n"]


def test_info_line_writes_nothing_below_the_loggers_level() -> None:
    stream = Recorder()
    handler = BatchingStreamHandler(stream, interval=60)  # type: ignore[arg-type]
    log = logger_with(handler, "quiet")
    log.setLevel(logging.WARNING)
    info_line(log, "hello")
    handler.flush()
    assert stream.writes == []


def test_a_forked_worker_does_not_write_its_parents_lines_again(tmp_path: Path) -> None:
    """granian forks its workers from the serving process: lines queued there must reach
    the log once, not once more per worker."""
    path = tmp_path / "log"
    with path.open("a") as stream:
        handler = BatchingStreamHandler(stream, interval=60)
        log = logger_with(handler, "fork")
        log.info("parent, before the fork")
        child = os.fork()
        if child == 0:  # the worker
            log.info("child")
            handler.flush()
            os._exit(0)
        os.waitpid(child, 0)
        handler.flush()
    lines = path.read_text().splitlines()
    assert sorted(lines) == ["child", "parent, before the fork"]


# -- one record, one line -------------------------------------------------------------------------

#: A line shaped like an audit record, which a request tries to slip into the log.
FORGED = ('[2026-01-01 00:00:00,000] [1] [INFO] authsvc.db.audit: {"action": "user.created", '
          '"actor": "admin", "target": "mallory-forged"}')
#: Everything that ends a line for some reader (splitlines, terminals, editors, JavaScript), and
#: the escape sequences a terminal would obey.
LINE_BREAKERS = ["\n", "\r", "\r\n", "\x00", "\x0b", "\x0c", "\x1b", "\x1c", "\x1e", "\x7f",
                 "\x85", "\x9b", "\u2028", "\u2029"]
#: What must never reach the log as itself.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def access_record(path: str) -> logging.LogRecord:
    """The record granian logs for a request of ``path`` (a dict of fields, ACCESS_FORMAT)."""
    fields = {"addr": "127.0.0.1", "method": "GET", "path": path, "protocol": "HTTP/1.1",
              "status": 404, "dt_ms": 1.5, "time": "", "query_string": "", "scheme": "https"}
    return logging.LogRecord("granian.access", logging.INFO, __file__, 1, ACCESS_FORMAT,
                             (fields,), None)


def written(*records: logging.LogRecord) -> str:
    """What the server's handler and formatter write for ``records``."""
    stream = Recorder()
    handler = BatchingStreamHandler(stream, interval=60)  # type: ignore[arg-type]
    handler.setFormatter(LogFormatter(LOG_FORMAT))
    for record in records:
        handler.handle(record)
    handler.flush()
    return "".join(stream.writes)


def assert_one_line_each(text: str, records: int) -> None:
    assert text.count("\n") == records and text.endswith("\n"), repr(text)
    assert len(text.splitlines()) == records, repr(text)
    assert not CONTROL.search(text.replace("\n", "")), repr(text)
    assert not any(line.startswith(FORGED[:30]) for line in text.splitlines()), repr(text)


@pytest.mark.parametrize("breaker", LINE_BREAKERS, ids=repr)
def test_an_access_line_is_one_line_whatever_the_path_holds(breaker: str) -> None:
    text = written(access_record(f"/x{breaker}{FORGED}"), access_record("/next"))
    assert_one_line_each(text, 2)
    first = text.splitlines()[0]
    assert first.endswith(' HTTP/1.1" 404 1.5ms') and "granian.access: " in first


def test_control_characters_are_escaped_readably() -> None:
    """JSON's escapes, so that an escaped audit line is still JSON holding the same value."""
    text = written(access_record("/a\nb\rc\td\x00e\x1bf\x7fg\x85h\u2028i\u2029j"))
    assert '"GET /a\\nb\\rc\\td\\u0000e\\u001bf\\u007fg\\u0085h\\u2028i\\u2029j HTTP' in text


def test_an_audit_shaped_message_stays_json_holding_the_same_values() -> None:
    fields = {"actor": f"a{''.join(LINE_BREAKERS)}b", "target": "é…\\n"}
    message = json.dumps(fields, ensure_ascii=False)
    record = logging.LogRecord("authsvc.audit", logging.INFO, __file__, 1, message, None, None)
    text = written(record)
    assert_one_line_each(text, 1)
    assert json.loads(text.split("authsvc.audit: ", 1)[1]) == fields


def test_a_traceback_stays_on_the_line_of_its_record() -> None:
    """The whole record is escaped, traceback included: a line break in an exception's
    message (which may quote the request) cannot start a record of its own."""
    try:
        raise ValueError(f"no such user: x\n{FORGED}")
    except ValueError:
        record = logging.LogRecord("authsvc.web.api", logging.ERROR, __file__, 1, "unhandled error",
                                   None, sys.exc_info())
    text = written(record, access_record("/next"))
    assert_one_line_each(text, 2)
    assert "unhandled error\\nTraceback (most recent call last):\\n" in text
    assert f"ValueError: no such user: x\\n{FORGED}" in text


# -- the real server ------------------------------------------------------------------------------

def https_get(live: Live, path: str) -> int:
    """GET ``path`` (sent as given) from the live server; returns the status."""
    context = ssl.create_default_context(cafile=str(live.ca_file))
    connection = http.client.HTTPSConnection(LOOPBACK, live.port, timeout=5, context=context)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_the_server_log_holds_one_line_per_record_whatever_the_paths_hold(
        tmp_path: Path) -> None:
    """``authsvc serve`` logs each request's decoded path: %0A, %0D, %00 and the other line
    breakers must not write a line of the client's choosing."""
    forged = quote(FORGED, safe="")
    encoded = ["%0A", "%0D", "%0D%0A", "%00", "%0B", "%1B", "%7F", "%C2%85", "%E2%80%A8"]
    with running_server(tmp_path, workers=1) as live:
        for breaker in encoded:
            assert https_get(live, f"/x{breaker}{forged}") in (400, 404)
        settle_log()
        log = live.service.log_path.read_bytes().decode()
    assert not CONTROL.search(log.replace("\n", "")), repr(log[-3000:])
    lines = log.splitlines()
    assert not [line for line in lines if line.startswith(FORGED[:30])], log[-3000:]
    access = [line for line in lines if "mallory-forged" in line]
    assert len(access) == len(encoded), log[-3000:]
    assert all("granian.access: 127.0.0.1 \"GET /x" in line for line in access), access
