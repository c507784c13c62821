"""The process id remembered without a system call: right in the process, and in a child
forked from it (granian forks its workers)."""

import os

from authsvc.core.process_id import current_pid


def test_the_remembered_id_is_this_processs() -> None:
    assert current_pid() == os.getpid()


def test_a_forked_child_remembers_its_own_id() -> None:
    parent = current_pid()
    child = os.fork()
    if child == 0:
        try:
            os._exit(0 if current_pid() == os.getpid() != parent else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert current_pid() == parent == os.getpid()
