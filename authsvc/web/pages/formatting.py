"""How the pages show sizes, times and the lines people copy into a shell."""

from collections.abc import Callable
from datetime import datetime

from authsvc.core.opaque_secrets import as_utc

UNITS = ("B", "kB", "MB", "GB", "TB")


def human_size(size: int) -> str:
    """``size`` bytes in decimal units, as docker shows them: ``2.8 MB``."""
    value = float(size)
    for unit in UNITS:
        if value < 1000 or unit == UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def when(moment: datetime | None) -> str:
    """A stored time in UTC to the minute; "never" for none."""
    if moment is None:
        return "never"
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def short_digest(digest: str) -> str:
    """``sha256:`` and the first 12 hex digits, as docker shows image ids."""
    algorithm, _, hex_digits = digest.partition(":")
    return f"{algorithm}:{hex_digits[:12]}" if hex_digits else digest


def counted(count: int, noun: str) -> str:
    """``1 tag``, ``2 tags``, ``2 repositories``: a count with its noun, singular for one."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") else f"{count} {noun}s"


def pull_line(host: str, name: str, tag: str) -> str:
    return f"docker pull {host}/{name}:{tag}"


#: The template filters of the pages.
FILTERS: dict[str, Callable[..., str]] = {
    "size": human_size, "when": when, "short_digest": short_digest, "counted": counted}
