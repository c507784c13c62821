"""The one exception tree of authsvc. No Flask here: the web layer maps these to responses."""


class AuthsvcError(Exception):
    """Root of every error authsvc raises on purpose.

    ``status`` is the HTTP status the web layer answers with, ``code`` the registry-style error
    code that goes into ``{"errors": [{"code": ..., "message": ...}]}``.
    """

    status = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidScope(AuthsvcError):
    """A ``scope`` parameter that does not follow the distribution scope grammar."""

    code = "INVALID_SCOPE"


class InvalidName(AuthsvcError):
    """A repository, namespace or user name outside the distribution reference grammar."""

    code = "NAME_INVALID"


class InvalidRequest(AuthsvcError):
    """A request parameter that is missing or malformed."""

    code = "INVALID_REQUEST"


class InvalidPassword(AuthsvcError):
    """A new password that the password policy refuses."""

    code = "PASSWORD_INVALID"


class AuthenticationFailed(AuthsvcError):
    """Credentials that do not identify an enabled user. The message never says which part."""

    status = 401
    code = "UNAUTHORIZED"

    def __init__(self, message: str = "incorrect username or password") -> None:
        super().__init__(message)


class NotFound(AuthsvcError):
    status = 404
    code = "NOT_FOUND"


class Conflict(AuthsvcError):
    status = 409
    code = "CONFLICT"


class ConfigError(AuthsvcError):
    """A configuration value that authsvc cannot start with; the message names the key."""

    status = 500
    code = "CONFIG_INVALID"


class CertificateError(AuthsvcError):
    """Certificates or keys that are missing, unsafe or unusable."""

    status = 500
    code = "CERTIFICATE_INVALID"


class Forbidden(AuthsvcError):
    """The caller is known but may not do this."""

    status = 403
    code = "DENIED"


class MalformedBody(AuthsvcError):
    """A request body that is not the JSON object the route expects."""

    code = "BAD_REQUEST"


class TooManyAttempts(AuthsvcError):
    """Too many failed logins for an account or from an address; retry after a while."""

    status = 429
    code = "TOOMANYREQUESTS"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} seconds")
        self.retry_after = retry_after


class RegistryNotConfigured(AuthsvcError):
    """The work needs the registry, and REGISTRY_URL does not say where it is."""

    status = 503
    code = "UNAVAILABLE"
