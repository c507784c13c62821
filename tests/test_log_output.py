"""Log lines written in batches: whole lines, in order, in chunks a pipe keeps whole."""

import logging
import os
import time
from pathlib import Path

from authsvc.log_output import PIPE_BUF, BatchingStreamHandler, LogFormatter


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
