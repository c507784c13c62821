"""The key that signs the web pages' session cookie and form tokens (Flask's SECRET_KEY), kept
in the certificate folder (shared by every replica, as the signing key is), owner-only.

Made by ``authsvc init``, or on first use. Pure: no Flask, no database.
"""

import os
import secrets
from pathlib import Path

from authsvc.errors import CertificateError

FILE_NAME = "web-secret-key"
#: 256 random bits, hex-encoded.
KEY_CHARACTERS = 64


def key_path(certs_root: Path) -> Path:
    """Where the key of the certificate folder ``certs_root`` lives."""
    return certs_root / FILE_NAME


def read_key(path: Path) -> str:
    """The key in ``path``. Raises CertificateError when it is missing, readable by others than
    its owner, or not what ``ensure_key`` writes."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as e:
        raise CertificateError(f"cannot read the web secret key {path}: {e.strerror}; "
                               "run `authsvc init`") from e
    if mode & 0o077:
        raise CertificateError(f"the web secret key {path} may be read by others; "
                               f"run `chmod 600 {path}`")
    if len(text) < KEY_CHARACTERS:
        raise CertificateError(f"the web secret key {path} is damaged (too short); "
                               "delete it and restart: every web session ends")
    return text


def ensure_key(path: Path) -> tuple[str, bool]:
    """The key in ``path``, made first (0600) when the file does not exist; and whether it was
    made now. The key is written whole under a temporary name and linked into place, so a
    process starting at the same moment reads the one key, never half of it. Raises
    CertificateError as ``read_key``."""
    if path.exists():
        return read_key(path), False
    temporary = path.with_name(f"{path.name}.{secrets.token_hex(8)}.new")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(KEY_CHARACTERS // 2) + "\n")
        os.link(temporary, path)
        made = True
    except FileExistsError:
        made = False  # another process made it first: use that one
    except OSError as e:
        raise CertificateError(f"cannot write the web secret key {path}: {e.strerror}") from e
    finally:
        temporary.unlink(missing_ok=True)
    return read_key(path), made
