"""Backing up and restoring one SQLite instance: the database, copied with SQLite's online
backup API while authsvc serves, and the certificate folder (keys, certificates, the web and
notification secrets), in one gzip'd tar archive readable by its owner only.

The archive holds ``manifest.json`` (the schema revision, row counts, and each file's mode and
SHA-256), ``authsvc.db``, ``certs/NAME`` and, when there is one, ``instance/config.py``. Every
member is a regular file. No Flask and no click here: the commands are ``authsvc/cli/backup.py``.
PostgreSQL is backed up with its own tools (``pg_dump``), so it is refused here.
"""

import hashlib
import hmac
import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sqlalchemy import create_engine, make_url

from authsvc.db.schema import alembic_config
from authsvc.db.sqlite_files import SQLITE_COMPANIONS, sqlite_path
from authsvc.errors import AuthsvcError

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "authsvc.db"
CONFIG = "instance/config.py"
#: A file of the certificate folder that goes into the archive: a plain name, not hidden.
CERT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: Files that are secret whatever their mode on disk.
SECRET_NAMES = re.compile(r".*-key\.pem|web-secret-key|notification-secret\.json|.*\.key")
PRIVATE, PUBLIC = 0o600, 0o644
#: The largest certificate or config file a backup holds (the database has no limit).
SMALL = 1 << 20


class BackupError(AuthsvcError):
    """A backup or restore that cannot be done; nothing was written."""

    status = 500
    code = "BACKUP_FAILED"


@dataclass(frozen=True)
class Site:
    """The files of one authsvc instance: its SQLite database, certificate folder and
    ``instance/config.py``."""

    database: Path
    certs: Path
    config: Path


@dataclass(frozen=True)
class Member:
    """One file of an archive: its name there, mode and size."""

    name: str
    mode: int
    size: int


@dataclass(frozen=True)
class Summary:
    """What an archive holds: the schema revision, the rows per table, and its files."""

    archive: Path
    revision: str
    tables: Mapping[str, int]
    members: tuple[Member, ...]
    notes: tuple[str, ...] = ()


def sqlite_database(url: str) -> Path:
    """The SQLite file of the SQLAlchemy URL ``url``. Raises BackupError for PostgreSQL (back
    it up with pg_dump) and for SQLite URLs that name no file."""
    if make_url(url).get_backend_name() == "postgresql":
        raise BackupError(
            "DATABASE_URL is a PostgreSQL database: back it up with `pg_dump --format=custom` "
            "and restore it with `pg_restore`, and copy the certificate folder beside it "
            "(see README, \"Backup and restore\")")
    path = sqlite_path(url)
    if path is None:
        raise BackupError("DATABASE_URL names no SQLite file (in memory, or another database): "
                          "there is nothing authsvc can back up")
    return path


def private_mode(name: str, mode: int) -> int:
    """0600 for a secret file (by name, or because only its owner may read it), else 0644."""
    return PRIVATE if SECRET_NAMES.fullmatch(name) or not mode & 0o077 else PUBLIC


# -- backup ---------------------------------------------------------------------------------

def copy_database(source: Path, target: Path) -> None:
    """Copy the live database ``source`` into the new file ``target`` (0600) in one step of
    SQLite's online backup API: one read transaction, so one consistent moment, while writers
    go on (WAL). The copy is left in rollback-journal mode: one self-contained file."""
    if not source.is_file() or source.stat().st_size == 0:
        raise BackupError(f"{source} is missing or empty: nothing to back up (run `authsvc init`)")
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
    try:
        with closing(sqlite3.connect(source, timeout=30)) as src, \
                closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as e:
        raise BackupError(f"could not copy the database {source}: {e}") from e


def database_facts(path: Path) -> tuple[str, dict[str, int]]:
    """The schema revision of the SQLite file ``path`` and the rows of each table. Raises
    BackupError when SQLite's integrity check fails or it is no authsvc database."""
    try:
        uri = f"{path.absolute().as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as connection:
            verdict = [row[0] for row in connection.execute("PRAGMA integrity_check")]
            if verdict != ["ok"]:
                failed = " ".join(" ".join(verdict).replace("*** in database main ***", "")
                                 .split())
                raise BackupError(f"the database fails SQLite's integrity check: {failed[:300]}")
            names = [row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            tables = {name: int(connection.execute(f'SELECT count(*) FROM "{name}"')  # noqa: S608
                                .fetchone()[0]) for name in names}
            found = (connection.execute("SELECT version_num FROM alembic_version").fetchone()
                     if "alembic_version" in tables else None)
    except sqlite3.DatabaseError as e:
        raise BackupError(f"not a readable SQLite database: {e}") from e
    if not found:
        raise BackupError("the database has no schema revision: not an authsvc database")
    tables.pop("alembic_version")
    return str(found[0]), tables


def cert_files(certs: Path) -> list[Path]:
    """The files of the certificate folder that a backup holds (plain names, not hidden or
    half-written ones). Raises BackupError when the folder holds no signing key."""
    if not (certs / "token-signing-key.pem").is_file():
        raise BackupError(f"{certs} holds no token-signing-key.pem: not authsvc's certificate "
                          "folder (AUTHSVC_CERTS_DIR), or `authsvc init` never ran")
    return sorted(path for path in certs.iterdir()
                  if path.is_file() and CERT_NAME.fullmatch(path.name)
                  and not path.name.endswith(".new"))


#: What goes into an archive: a small file's content, or a (large) file streamed from disk.
Content = bytes | Path
CHUNK = 1 << 20


def digest(content: Content) -> str:
    """The SHA-256 of ``content``, read in chunks from a file."""
    if isinstance(content, bytes):
        return hashlib.sha256(content).hexdigest()
    sha = hashlib.sha256()
    with content.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _add(archive: tarfile.TarFile, name: str, content: Content, mode: int,
         moment: int) -> Member:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.type = mode, moment, tarfile.REGTYPE
    if isinstance(content, bytes):
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    else:
        info.size = content.stat().st_size
        with content.open("rb") as handle:
            archive.addfile(info, handle)
    return Member(name, mode, info.size)


def _place(temporary: Path, target: Path, force: bool) -> None:
    """Move ``temporary`` to ``target`` in one step; without ``force`` never over a file that
    exists (a link fails then), with it replacing that file."""
    if force:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise BackupError(f"{target} exists: pass --force to replace it") from None
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def reported(action: str) -> Iterator[None]:
    """An OSError (no such folder, no permission, a full disk) as a BackupError naming the
    file and ``action``."""
    try:
        yield
    except OSError as e:
        raise BackupError(f"{action}: {e.filename or ''} {e.strerror or e}".replace(" :", ":")
                          ) from e


def backup(site: Site, target: Path, *, force: bool = False,
           now: datetime | None = None) -> Summary:
    """Write the archive ``target`` (0600): the database, copied consistently while authsvc
    may be writing, the certificate folder and ``instance/config.py``. Returns its summary;
    raises BackupError when ``target`` exists (without ``force``), a part is unusable or a
    file cannot be read or written."""
    with reported("backup failed"):
        return _backup(site, target.absolute(), force, now)


def _backup(site: Site, target: Path, force: bool, now: datetime | None) -> Summary:
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a folder: create it first")
    if target.exists() and not force:
        raise BackupError(f"{target} exists: pass --force to replace it")
    files = cert_files(site.certs)
    moment = int((now or datetime.now(UTC)).timestamp())
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".authsvc-backup-"))
    try:
        copy = work / DATABASE
        copy_database(site.database, copy)
        revision, tables = database_facts(copy)
        entries: list[tuple[str, Content, int]] = [(DATABASE, copy, PRIVATE)]
        entries += [(f"certs/{p.name}", p.read_bytes(), private_mode(p.name, p.stat().st_mode))
                    for p in files]
        if site.config.is_file():
            entries.append((CONFIG, site.config.read_bytes(), PRIVATE))
        manifest = {"format": FORMAT, "created": moment, "revision": revision, "tables": tables,
                    "files": {name: {"mode": f"{mode:o}", "sha256": digest(content)}
                              for name, content, mode in entries}}
        written = work / "archive"
        fd = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
            members = [_add(archive, MANIFEST, json.dumps(manifest, indent=1).encode(),
                            PRIVATE, moment)]
            members += [_add(archive, name, content, mode, moment)
                        for name, content, mode in entries]
            archive.close()
            raw.flush()
            os.fsync(raw.fileno())
        _place(written, target, force)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Summary(target, revision, tables, tuple(members))


# -- restore --------------------------------------------------------------------------------

def expected_name(name: str) -> bool:
    """Whether ``name`` may be a member of an archive: the manifest, the database, the
    instance config or a plain file of the certificate folder; no path goes elsewhere."""
    folder, _, base = name.partition("/")
    return name in (MANIFEST, DATABASE, CONFIG) or (folder == "certs"
                                                    and CERT_NAME.fullmatch(base) is not None)


def _extract(handle: IO[bytes], target: Path) -> str:
    """Write ``handle`` to the new file ``target`` (0600) in chunks; return its SHA-256."""
    sha = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    with os.fdopen(fd, "wb") as out:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            out.write(chunk)
        os.fsync(out.fileno())
    return sha.hexdigest()


def read_archive(path: Path, database: Path) -> dict[str, tuple[bytes, int]]:
    """The small members of the archive ``path`` by name (content and mode); its database is
    written to ``database`` (0600). All are checked against the manifest. Raises BackupError
    for anything but the regular files a backup writes (absolute paths, ``..``, links, other
    names, large files), a missing or changed file, or an unreadable archive."""
    found: dict[str, tuple[bytes, int]] = {}
    digests: dict[str, str] = {}
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            for info in archive:
                if not expected_name(info.name) or not info.isreg() or info.name in digests \
                        or (info.name != DATABASE and info.size > SMALL):
                    raise BackupError(f"{path}: unexpected member {info.name!r}; not an authsvc "
                                      "backup, or altered: nothing restored")
                handle = archive.extractfile(info)
                assert handle is not None  # noqa: S101 - a regular file has content
                if info.name == DATABASE:
                    digests[DATABASE] = _extract(handle, database)
                else:
                    found[info.name] = (handle.read(), info.mode)
                    digests[info.name] = digest(found[info.name][0])
    except (OSError, tarfile.TarError, EOFError) as e:
        raise BackupError(f"cannot read the archive {path}: {e}") from e
    try:
        manifest = json.loads(found.pop(MANIFEST, (b"{}", 0))[0])
        listed = {name: str(entry["sha256"]) for name, entry in manifest["files"].items()}
        complete = manifest["format"] == FORMAT and DATABASE in digests
    except (ValueError, KeyError, TypeError, AttributeError):
        complete, listed = False, {}
    digests.pop(MANIFEST, None)
    if not complete or set(listed) != set(digests):
        raise BackupError(f"{path}: not an authsvc backup (format {FORMAT}), or files are "
                          "missing: nothing restored")
    for name, value in digests.items():
        if not hmac.compare_digest(value, listed[name]):
            raise BackupError(f"{path}: {name} does not match its checksum: the archive is "
                              "damaged; nothing restored")
    return found


def check_empty(site: Site) -> None:
    """Raise BackupError unless ``site`` has no database (an empty file is none: authsvc
    creates one at start) and no certificate files."""
    database = [site.database.with_name(site.database.name + s) for s in ("", *SQLITE_COMPANIONS)]
    if any(path.exists() and path.stat().st_size for path in database):
        raise BackupError(f"{site.database} exists and is not empty: restore only into a new "
                          "instance (move the database away first)")
    if site.certs.exists() and any(site.certs.iterdir()):
        raise BackupError(f"{site.certs} is not empty: restore only into a new instance "
                          "(move the certificate folder away first)")


def check_revision(revision: str) -> str | None:
    """None when ``revision`` is the newest schema this authsvc knows; a note saying to
    migrate when it is an older one. Raises BackupError for one it does not know (newer)."""
    from alembic.script import ScriptDirectory

    # alembic_config wants an engine; this one never connects (only the scripts are read)
    script = ScriptDirectory.from_config(alembic_config(create_engine("sqlite://")))
    known = {rev.revision for rev in script.walk_revisions()}
    if revision not in known:
        raise BackupError(f"the database has schema revision {revision}, which this authsvc does "
                          "not know (a newer version made it): restore with that version")
    if revision == script.get_current_head():
        return None
    return (f"schema revision {revision} is older than this authsvc's "
            f"{script.get_current_head()}: run `authsvc db upgrade` (serve runs it too)")


@contextmanager
def staged(folder: Path, mode: int = 0o777) -> Iterator[Path]:
    """A private temporary folder in ``folder`` (created with ``mode`` less the umask), so
    that what is staged there moves into place by a rename; removed afterwards with whatever
    is left in it."""
    folder.mkdir(mode=mode, parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=folder, prefix=".authsvc-restore-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), mode)
        out.write(data)
        os.fsync(out.fileno())


def restore(site: Site, path: Path) -> Summary:
    """Restore the archive ``path`` into the empty instance ``site``: the database (checked
    by SQLite's integrity check and for a schema revision this authsvc knows), the certificate
    files (secret ones 0600, others 0644) and ``instance/config.py`` unless one exists.
    Raises BackupError, having restored nothing, when the instance is not empty or the
    archive is not a sound authsvc backup; and when a file cannot be written."""
    with reported("restore failed"):
        return _restore(site, path)


def _restore(site: Site, path: Path) -> Summary:
    check_empty(site)
    notes: list[str] = []
    with staged(site.database.parent, 0o700) as work:
        database = work / DATABASE
        found = read_archive(path, database)
        revision, tables = database_facts(database)
        if note := check_revision(revision):
            notes.append(note)
        members = [Member(DATABASE, PRIVATE, database.stat().st_size)]
        with staged(site.certs) as certs:
            for name, (data, mode) in sorted(found.items()):
                if name.startswith("certs/"):
                    base = name.removeprefix("certs/")
                    _write(certs / base, data, private_mode(base, mode))
                    members.append(Member(name, private_mode(base, mode), len(data)))
            for file in sorted(certs.iterdir()):
                os.replace(file, site.certs / file.name)
        if CONFIG in found:
            if site.config.exists():
                notes.append(f"kept the existing {site.config}; the archive's is {CONFIG}")
            else:
                _write(site.config, found[CONFIG][0], PRIVATE)
                members.append(Member(CONFIG, PRIVATE, len(found[CONFIG][0])))
        os.replace(database, site.database)
    return Summary(path, revision, tables, tuple(members), tuple(notes))
