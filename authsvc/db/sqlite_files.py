"""The SQLite files authsvc keeps (the database and the files SQLite writes beside it) and
the instance folder that holds them: readable by their owner only, whatever the umask."""

import logging
import os
import stat
from pathlib import Path

from sqlalchemy import make_url

log = logging.getLogger(__name__)

#: The files SQLite writes beside a database file. It creates them with the database file's
#: mode, so a 0600 database gets 0600 companions.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
#: What authsvc keeps in its instance folder: a folder holding anything else is not
#: authsvc's alone, and its mode is left to its owner.
INSTANCE_FILES = frozenset({"config.py", "authsvc.db",
                            *(f"authsvc.db{suffix}" for suffix in SQLITE_COMPANIONS)})


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite URL names; None for another database, an in-memory one, or a
    ``file:`` URI (``?uri=true``)."""
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:" \
            or parsed.query.get("uri"):
        return None
    return Path(name)


def keep_private(path: Path) -> None:
    """Take group and others' permissions off ``path`` (a file 0644 becomes 0600, a folder
    0755 0700). Logs a warning, and changes nothing, when ``path`` is not ours to change."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)
    except FileNotFoundError:
        pass
    except OSError as e:  # another owner's, or a read-only file system
        log.warning("could not make %s readable by its owner only: %s", path, e.strerror)


def private_sqlite_file(path: Path) -> None:
    """Create the database file ``path`` (empty, mode 0600) unless it exists, before SQLite
    does (it would make it 0666 less the umask); make it and its companions 0600."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError:  # no such folder, or not ours: SQLite says so when it connects (503)
        return
    for suffix in ("", *SQLITE_COMPANIONS):
        keep_private(path.with_name(path.name + suffix))


def private_instance_folder(folder: Path) -> None:
    """Create ``folder`` 0700, or make an existing one 0700 when it holds nothing but
    authsvc's files; a folder holding anything else is not authsvc's alone (say
    ``AUTHSVC_INSTANCE=/srv``): warn instead of locking its other users out."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not stat.S_IMODE(folder.stat().st_mode) & 0o077:
        return
    try:
        names = set(os.listdir(folder))
    except OSError:  # not ours to read: SQLite says so when it connects
        return
    if names <= INSTANCE_FILES:
        keep_private(folder)
    else:
        log.warning("%s is open to group or others and holds more than authsvc's files, so "
                    "authsvc left its mode alone; run `chmod 700 %s` if it is authsvc's only",
                    folder, folder)
