"""Reading the Authorization header without letting a malformed one become a 500."""

from werkzeug.datastructures import Authorization


def authorization(header: str | None) -> Authorization | None:
    """The parsed Authorization header (the raw value, as in the WSGI environ), or None when
    it is missing or cannot be parsed (bad base64, non-ASCII bytes, no colon, NUL): the caller
    answers 401 either way."""
    try:
        auth = Authorization.from_header(header)
    except (ValueError, UnicodeError):
        return None
    if auth is not None and any("\x00" in (part or "") for part in (
            auth.username, auth.password, auth.token)):
        return None
    return auth
