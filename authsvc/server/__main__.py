"""``python -m authsvc.server INSTANCE CERTS HOST PORT WORKERS THREADS``: the server alone,
what ``authsvc serve`` turns into once it has checked the keys and brought the database up to
date (``serve.exec_serve`` says why). Start authsvc with ``authsvc serve``, not this."""

import sys
from pathlib import Path

from authsvc.errors import AuthsvcError
from authsvc.server.serve import serve

USAGE = "usage: python -m authsvc.server INSTANCE CERTS HOST PORT WORKERS THREADS"


def main(argv: list[str]) -> int:
    try:
        instance, certs, host, port, workers, threads = argv
        numbers = int(port), int(workers), int(threads)
    except ValueError:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        serve(Path(instance), Path(certs), host, *numbers)
    except AuthsvcError as e:
        print(f"Error: {e.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
