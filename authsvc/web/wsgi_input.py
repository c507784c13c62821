"""Reading a request's query and URL-encoded form straight from the WSGI environ, exactly as
werkzeug reads them (``Request.args``, ``Request.form``), without building a Request: what the
``/token`` handler (``authsvc.web.api.token``) parses its input with."""

from collections.abc import Iterable
from functools import lru_cache
from typing import Any, overload
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from authsvc.errors import InvalidRequest


class Parameters:
    """Query or form fields, each name with its values in order. (werkzeug's MultiDict builds
    and catches a BadRequestKeyError for every missing name ``get`` is asked for.)"""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._pairs = list(pairs)
        self._values: dict[str, list[str]] = {}
        for name, value in self._pairs:
            self._values.setdefault(name, []).append(value)

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        values = self._values.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        """Every value of ``name``, in order (none: an empty list)."""
        return list(self._values.get(name, ()))

    def pairs(self) -> list[tuple[str, str]]:
        """Every (name, value), in order."""
        return list(self._pairs)


#: Queries up to this long are remembered once parsed: clients repeat the same few.
REMEMBERED_QUERY = 1024


def query_parameters(environ: dict[str, Any]) -> Parameters:
    """The query, parsed exactly as werkzeug's ``Request.args`` does (its own error handler
    keeps invalid percent-escapes as they are), without building a Request: raw bytes that
    are not UTF-8 raise UnicodeDecodeError, answered 400."""
    query = environ.get("QUERY_STRING", "")
    if len(query) <= REMEMBERED_QUERY:
        return _parsed_query(query)
    return _parse_query(query)


def _parse_query(query: str) -> Parameters:
    return url_encoded(query.encode("latin-1").decode())


def url_encoded(text: str) -> Parameters:
    """Fields of a query or URL-encoded form, as werkzeug reads them: blank values kept,
    invalid percent-escapes left as they are."""
    return Parameters(parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote"))


_parsed_query = lru_cache(maxsize=4096)(_parse_query)  # Parameters never change once made


FORM_TYPE = "application/x-www-form-urlencoded"


class PostedForm:
    """The body of a POST, read once. URL-encoded forms (what clients send) are parsed as
    werkzeug's form parser does, without building a Request; anything else goes through it
    (Flask's Request: in an app context, its form limits are the app's). ``max_length`` is the
    app's MAX_CONTENT_LENGTH (None: no limit)."""

    def __init__(self, environ: dict[str, Any], max_length: int | None) -> None:
        self.environ = environ
        self.max_length = max_length
        self._form: Parameters | None = None

    def form(self) -> Parameters:
        """The form's fields. Raises RequestEntityTooLarge or BadRequest for a body the parser
        refuses."""
        if self._form is None:
            self._form = self._parse()
        return self._form

    def values(self, query: Parameters) -> Parameters:
        """The query and the form, or the query alone when the body was refused."""
        return Parameters([*query.pairs(), *(self._form.pairs() if self._form else [])])

    def _parse(self) -> Parameters:
        environ = self.environ
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        length = environ.get("CONTENT_LENGTH", "")
        if mimetype != FORM_TYPE or not length.isdigit():
            request = Request(environ)
            request.max_content_length = self.max_length
            return Parameters(request.form.items(multi=True))
        if self.max_length is not None and int(length) > self.max_length:
            raise RequestEntityTooLarge()
        try:
            text = environ["wsgi.input"].read(int(length)).decode()
        except UnicodeDecodeError:
            return Parameters([])  # as werkzeug: a body that is not UTF-8 holds no fields
        return url_encoded(text)


def form_field(form: Parameters, name: str) -> str:
    """The first value of ``name``. Raises InvalidRequest when it is missing or empty."""
    value = form.get(name)
    if not value:
        raise InvalidRequest(f"the {name} field is required")
    return value
