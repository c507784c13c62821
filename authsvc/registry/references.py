"""The registry's names for what it holds: tags and digests (the grammar distribution
checks), and a manifest as the registry serves it. No network here: the web pages and the API
check a tag with these before anything asks the registry."""

import re
from dataclasses import dataclass

from authsvc.errors import InvalidName, InvalidRequest

#: distribution's tag grammar, and a digest of a registered algorithm.
TAG_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class ManifestInfo:
    """A manifest as the registry serves it.

    ``size`` is the image's compressed size: config and layers of an image manifest; for an
    index (manifest list), the distinct config and layer blobs of all its platform images.
    """

    digest: str
    media_type: str
    size: int


def validate_tag(tag: str) -> str:
    """``tag`` if the registry's tag grammar allows it; raises InvalidName."""
    if re.fullmatch(TAG_PATTERN, tag) is None:
        raise InvalidName(f"invalid tag {tag[:150]!r}: use letters, digits, _ . - (at most 128, "
                          "not starting with . or -)")
    return tag


def is_digest(text: str) -> bool:
    """Whether ``text`` is ``algorithm:hex`` of a registered algorithm, of its length."""
    algorithm, _, encoded = text.partition(":")
    return (_DIGEST_LENGTHS.get(algorithm) == len(encoded)
            and all(c in "0123456789abcdef" for c in encoded))


def validate_digest(digest: str) -> str:
    """``digest`` if it is ``algorithm:hex`` of a known algorithm; raises InvalidRequest."""
    if not is_digest(digest):
        raise InvalidRequest(f"invalid digest {digest[:150]!r}")
    return digest
