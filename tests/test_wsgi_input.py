"""Reading queries and URL-encoded forms from the WSGI environ (``authsvc.web.wsgi_input``):
the ``/token`` handler must see exactly what werkzeug (used everywhere else) sees."""

import io
from typing import Any

import pytest
from flask import Flask, Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.test import EnvironBuilder

from authsvc.errors import InvalidRequest
from authsvc.web.wsgi_input import (
    REMEMBERED_QUERY,
    Parameters,
    PostedForm,
    form_field,
    query_parameters,
)

FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("query", [
    "", "service=registry&scope=a&scope=b", "empty=&flag&plus=a+b&x=%ff%00&bad=%zz%4",
    "utf8=%C3%A9t%C3%A9&a=1&&&b=2;c=3", "long=" + "x" * REMEMBERED_QUERY,
    "caf\xc3\xa9=cr\xc3\xa8me"])  # raw UTF-8 bytes, as PEP 3333 hands them on (Latin-1)
def test_a_query_is_read_as_werkzeug_reads_it(query: str) -> None:
    environ = {"QUERY_STRING": query}
    assert query_parameters(environ).pairs() == list(Request(environ).args.items(multi=True))


def test_raw_bytes_that_are_not_utf8_raise_unicode_decode_error() -> None:
    with pytest.raises(UnicodeDecodeError):
        query_parameters({"QUERY_STRING": "a=\xff"})


def test_parameters_keep_every_value_in_order() -> None:
    fields = Parameters([("scope", "a"), ("service", "registry"), ("scope", "b")])
    assert (fields.get("scope"), fields.get("missing"), fields.get("missing", "x")) == (
        "a", None, "x")
    assert fields.getlist("scope") == ["a", "b"] and fields.getlist("missing") == []
    assert fields.pairs() == [("scope", "a"), ("service", "registry"), ("scope", "b")]


@pytest.mark.parametrize("body", [
    b"grant_type=password&username=alice&scope=a&scope=b",
    b"service=registry&empty=&flag&x=%ff%00&plus=a+b&utf8=%C3%A9t%C3%A9",
    b"\xff\xfe not utf-8 at all", b"", b"a=1&&&b=2;c=3"])
@pytest.mark.parametrize("content_type", [
    FORM, "application/x-www-form-urlencoded; charset=utf-8",
    "Application/X-WWW-Form-URLencoded", "multipart/form-data; boundary=x"])
def test_form_bodies_are_read_as_werkzeug_reads_them(app: Flask, body: bytes,
                                                     content_type: str) -> None:
    """URL-encoded bodies are parsed without werkzeug; they must give what its form parser
    gives (anything else goes through it)."""
    def environ() -> dict[str, Any]:
        return EnvironBuilder("/token", method="POST", data=body,
                              content_type=content_type).get_environ()

    with app.app_context():
        ours = PostedForm(environ(), app.config["MAX_CONTENT_LENGTH"]).form()
        theirs = Request(environ()).form
    assert ours.pairs() == list(theirs.items(multi=True))


@pytest.mark.parametrize("content_type", [FORM, "multipart/form-data; boundary=x"])
def test_a_form_over_the_limit_is_refused_and_the_query_still_read(app: Flask,
                                                                   content_type: str) -> None:
    body = b"grant_type=password&password=" + b"x" * 100
    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": content_type,
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    posted = PostedForm(environ, 50)
    with app.app_context(), pytest.raises(RequestEntityTooLarge):
        posted.form()
    query = Parameters([("service", "registry")])
    assert posted.values(query).pairs() == [("service", "registry")]


def test_a_form_field_is_required_and_not_empty() -> None:
    form = Parameters([("grant_type", "password"), ("username", "")])
    assert form_field(form, "grant_type") == "password"
    for name in ("username", "password"):
        with pytest.raises(InvalidRequest, match=f"the {name} field is required"):
            form_field(form, name)
