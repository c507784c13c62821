"""This process's id without a system call. Pure.

``os.getpid`` asks the kernel every time, and the token path asked it several times a request
(the log lines, the audit batch, the reads' kept connections), each time holding the GIL: a
system call is where the scheduler may take the core away, and every other thread of the
worker then waits for the GIL too. The id is read once, and again in a forked child (granian
forks its workers from the process that imported authsvc).
"""

import os

_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def current_pid() -> int:
    """``os.getpid()``, remembered."""
    return _pid
