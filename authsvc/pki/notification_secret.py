"""The secret the registry sends with its notifications (``Authorization: Bearer …``), kept in
the certificate folder (shared by every replica, as the signing key is), owner-only.

The file holds the current secret and, after a rotation, the previous one with the time until
which it is still accepted: the registry keeps sending the old one until it is restarted with
the new configuration. Comparisons are constant-time. Pure: no Flask, no database.
"""

import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from authsvc.errors import CertificateError

#: The previous secret stays accepted this long after a rotation unless told otherwise.
DEFAULT_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class NotificationSecrets:
    current: str
    previous: str = ""
    previous_until: datetime | None = None

    def accepts(self, presented: str, now: datetime) -> bool:
        """Whether ``presented`` is the current secret, or the previous one within its grace.
        Both are compared, in constant time, whatever the first comparison gave."""
        given = presented.encode()
        current = hmac.compare_digest(given, self.current.encode())
        previous = hmac.compare_digest(given, (self.previous or "\0").encode())
        in_grace = self.previous_until is not None and now < self.previous_until
        return current or (previous and in_grace and bool(self.previous))


def new_secret() -> str:
    return "authsvc_ns_" + secrets.token_urlsafe(32)


def _write(path: Path, value: NotificationSecrets) -> None:
    """Write ``value`` to ``path`` owner-only (0600), replacing it atomically."""
    body = {"current": value.current, "previous": value.previous,
            "previous_until": value.previous_until.isoformat() if value.previous_until else None}
    temporary = path.with_name(path.name + ".new")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(body, handle)
    os.replace(temporary, path)


def read_secrets(path: Path) -> NotificationSecrets:
    """The secrets in ``path``. Raises CertificateError when it is missing, readable by others
    than its owner, or not what ``ensure_secret`` writes."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as e:
        raise CertificateError(f"cannot read the notification secret {path}: {e.strerror}; "
                               "run `authsvc init` or `authsvc registry rotate-secret`") from e
    if mode & 0o077:
        raise CertificateError(f"the notification secret {path} may be read by others; "
                               f"run `chmod 600 {path}`")
    try:
        body = json.loads(text)
        until = body.get("previous_until")
        value = NotificationSecrets(str(body["current"]), str(body.get("previous") or ""),
                                    datetime.fromisoformat(until) if until else None)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CertificateError(f"the notification secret {path} is damaged; "
                               "run `authsvc registry rotate-secret --force`") from e
    if len(value.current) < 32:
        raise CertificateError(f"the notification secret in {path} is too short")
    return value


def ensure_secret(path: Path) -> tuple[NotificationSecrets, bool]:
    """The secrets in ``path``, made first when the file does not exist; and whether it was
    made now."""
    if path.exists():
        return read_secrets(path), False
    value = NotificationSecrets(new_secret())
    _write(path, value)
    return value, True


def rotate_secret(path: Path, grace: timedelta = DEFAULT_GRACE, *,
                  now: datetime | None = None, force: bool = False) -> NotificationSecrets:
    """Make a new current secret; the old one stays accepted for ``grace``. With ``force``
    a damaged or missing file is replaced and nothing old stays accepted."""
    moment = now or datetime.now(UTC)
    try:
        old: NotificationSecrets | None = read_secrets(path)
    except CertificateError:
        if not force and path.exists():
            raise
        old = None
    value = NotificationSecrets(
        new_secret(), old.current if old else "",
        moment + grace if old is not None and grace > timedelta(0) else None)
    _write(path, value)
    return value


class SecretFile:
    """The secrets of one file, read again whenever the file changes (a rotation reaches every
    running process without a restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._value: NotificationSecrets | None = None

    def current(self) -> NotificationSecrets:
        """Raises CertificateError as ``read_secrets``."""
        stat = self.path.stat() if self.path.exists() else None
        # the mode too: a file made readable by others is refused at once (chmod changes
        # neither its time nor its inode)
        stamp = (stat.st_mtime_ns, stat.st_ino, stat.st_mode) if stat is not None else None
        if self._value is None or stamp != self._stamp:
            self._value = read_secrets(self.path)
            self._stamp = stamp
        return self._value
