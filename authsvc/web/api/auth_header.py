"""The Authorization header: read without letting a malformed one become a 500, and turned into
the Subject it proves, for ``/token`` and the API alike."""

from werkzeug.datastructures import Authorization

from authsvc.core.policy import ANONYMOUS, Subject
from authsvc.db.credentials import Credentials
from authsvc.errors import AuthenticationFailed


def authorization(header: str | None) -> Authorization | None:
    """The parsed Authorization header (the raw value, as in the WSGI environ), or None when
    it is missing or cannot be parsed (bad base64, non-ASCII bytes, no colon, NUL): the caller
    answers 401 either way.

    Its user name and password are read with ``get`` (``auth.get("username")``): the attribute
    form (``auth.username``) reaches them through ``__getattr__``, only after Python has made
    and dropped an AttributeError, which costs more than the rest of the parsing."""
    try:
        auth = Authorization.from_header(header)
    except (ValueError, UnicodeError):
        return None
    if auth is not None and any("\x00" in (part or "") for part in (
            auth.get("username"), auth.get("password"), auth.token)):
        return None
    return auth


def subject_from_header(header: str | None, credentials: Credentials, address: str | None, *,
                        bearer: bool, anonymous: bool) -> Subject:
    """The subject the Authorization ``header`` (its raw value; None when the request has
    none) proves for the client at ``address``: from the credentials only, never from a
    parameter naming an account.

    Basic credentials are a password or an access token (``credentials.basic``); with
    ``bearer`` (the API) a Bearer access token is taken too. With ``anonymous`` (``GET
    /token``) credentials are optional: no header is ANONYMOUS, and a header sent is a login
    attempt, checked (so counted and audited when it fails) whatever its password, even an
    empty one. Without it (the API) they are required: a header without a user name and a
    password (or a Bearer token) is refused as missing before anything is checked.

    Raises AuthenticationFailed ("authentication required: …" when required credentials are
    missing), or TooManyAttempts past a lockout limit.
    """
    if header is None and anonymous:
        return ANONYMOUS
    auth = authorization(header)
    username = password = None
    if auth is not None and auth.type == "basic":
        username, password = auth.get("username"), auth.get("password")
    if username and password is not None and (password or anonymous):
        return credentials.basic(username, password, address)
    if bearer and auth is not None and auth.type == "bearer" and auth.token:
        return credentials.bearer(auth.token, address)
    if anonymous:
        raise AuthenticationFailed()
    schemes = "Basic or Bearer" if bearer else "Basic"
    raise AuthenticationFailed(f"authentication required: {schemes} credentials")
