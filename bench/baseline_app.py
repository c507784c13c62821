"""The same-run baselines: a minimal Flask app that signs the same registry token per request.

``sign``: parse the scopes, sign an ES256 JWT with authsvc's signing key (same header: ``kid`` and
``x5c``; same claims: iss, sub, aud, iat, nbf, exp, jti, access) and answer the same JSON body. No
database, no policy, no audit: the floor of "a Python token endpoint" behind the same server.

``bcrypt``: the same, after verifying the Basic password against a bcrypt hash (cost
``--bcrypt-rounds``) on every request: what a service without a credential cache pays.

``ceiling``: a bare WSGI function (no Flask) that answers every request with one token answer
signed at start, with no access line: what the server alone costs per request, the ceiling no
token service behind it can pass (issue 16).

Run behind the very server ``authsvc serve`` runs (``authsvc.server.serve.granian``: the same HTTPS
certificates, TLS, workers, threads, keep-alive and access log)::

    python -m bench.baseline_app --mode sign --certs DIR --port 5002 --workers 2 --threads 8

or, with ``--server gthread``, behind gunicorn's threaded workers (HTTPS, keep-alive, access
log): the classic Python deployment, the reference point of issue 6. The servers read the
settings from ``BENCH_BASELINE_MODE``, ``BENCH_CERTS_DIR``, ``BENCH_BCRYPT_ROUNDS`` and
``BENCH_PASSWORD``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bcrypt
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask, Response, jsonify, request

from authsvc.config import DEFAULTS
from authsvc.pki.certs import CertPaths
from authsvc.pki.signing_keys import libtrust_key_id  # once, at start: the kid authsvc uses
from authsvc.server.rsgi_bridge import BodyFirstWSGI, WSGIApp
from authsvc.server.serve import (
    THREADS_VARIABLE,
    body_first,
    freeze_startup_objects,
    granian,
    start_worker,
)
from bench.seed import PRIVATE_REPO

ISSUER = "authsvc"
TTL = 900
MAX_BODY = DEFAULTS["MAX_REQUEST_BYTES"]
BODY_TIMEOUT = DEFAULTS["BODY_TIMEOUT"]


def _access(scopes: list[str]) -> list[dict[str, object]]:
    access: list[dict[str, object]] = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        access.append({"type": kind, "name": name,
                       "actions": sorted(a for a in actions.split(",") if a)})
    return access


Signer = Callable[[str, str, list[str]], dict[str, object]]


def token_signer(certs_dir: str | Path) -> Signer:
    """``body(sub, service, scopes)``: a token answer signed with the site's signing key, with
    the header and claims authsvc gives its tokens."""
    certs = CertPaths(Path(certs_dir))
    key = serialization.load_pem_private_key(certs.signing_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("the token-signing key must be EC or RSA")
    cert = x509.load_pem_x509_certificate(certs.signing.read_bytes())
    algorithm = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    headers = {"kid": libtrust_key_id(key.public_key()),
               "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER))
                       .decode("ascii")]}

    def body(sub: str, service: str, scopes: list[str]) -> dict[str, object]:
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": sub, "aud": service, "iat": now, "nbf": now - 5,
                  "exp": now + TTL, "jti": secrets.token_urlsafe(16), "access": _access(scopes)}
        token = jwt.encode(claims, key, algorithm=algorithm, headers=headers)
        return {"token": token, "access_token": token, "expires_in": TTL,
                "issued_at": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}

    return body


def ceiling_app(certs_dir: str | Path) -> WSGIApp:
    """The ``ceiling`` mode: one answer, signed once (a token of the usual size), for every
    request to ``/token`` (404 elsewhere)."""
    answer = json.dumps(token_signer(certs_dir)(
        "", "registry", [f"repository:{PRIVATE_REPO}:pull,push"])).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(answer))),
               ("Cache-Control", "no-store")]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] != "/token":
            start_response("404 Not Found", [("Content-Length", "0")])
            return []
        start_response("200 OK", headers)
        return [answer]

    return app


def create_app(mode: str, certs_dir: str | Path, bcrypt_rounds: int = 10,
               password: str = "") -> Flask:
    if mode not in ("sign", "bcrypt"):
        raise ValueError(f"mode must be sign or bcrypt, not {mode!r}")
    body = token_signer(certs_dir)
    stored = (bcrypt.hashpw(password.encode(), bcrypt.gensalt(bcrypt_rounds))
              if mode == "bcrypt" else b"")

    app = Flask(__name__)

    def subject() -> str | Response:
        auth = request.authorization
        if mode != "bcrypt":
            return auth.username if auth and auth.username else ""
        if auth is None or auth.type != "basic" or auth.password is None or not bcrypt.checkpw(
                auth.password.encode(), stored):
            response = jsonify(errors=[{"code": "UNAUTHORIZED", "message": "bad credentials"}])
            response.status_code = 401
            return response
        return auth.username or ""

    @app.get("/token")
    def get_token() -> Response:
        sub = subject()
        if isinstance(sub, Response):
            return sub
        return jsonify(body(sub, request.args.get("service", ""), request.args.getlist("scope")))

    @app.post("/token")
    def post_token() -> Response:
        sub = subject()
        if isinstance(sub, Response):
            return sub
        scopes = request.form.getlist("scope")
        answer = body(sub, request.form.get("service", ""), scopes)
        answer["scope"] = " ".join(scopes)
        if request.form.get("refresh_token"):
            answer["refresh_token"] = request.form["refresh_token"]
        return jsonify(answer)

    return app


def app_from_env() -> Flask:
    """Factory for servers that import the app (granian ``--factory``)."""
    return create_app(os.environ.get("BENCH_BASELINE_MODE", "sign"),
                      os.environ["BENCH_CERTS_DIR"],
                      int(os.environ.get("BENCH_BCRYPT_ROUNDS", "10")),
                      os.environ.get("BENCH_PASSWORD", ""))


def served_app_from_env() -> BodyFirstWSGI:
    """Factory for ``authsvc.server.serve.granian``: the app as ``authsvc serve`` serves its own
    (the ceiling without the access line)."""
    start_worker()
    if os.environ.get("BENCH_BASELINE_MODE") == "ceiling":
        served = BodyFirstWSGI(ceiling_app(os.environ["BENCH_CERTS_DIR"]),
                               threads=int(os.environ.get(THREADS_VARIABLE, "4")),
                               max_body=MAX_BODY, body_timeout=BODY_TIMEOUT)
    else:
        served = body_first(app_from_env().wsgi_app, max_body=MAX_BODY,
                            body_timeout=BODY_TIMEOUT)
    freeze_startup_objects()
    return served


def serve_gthread(app: Flask, certs: Path, host: str, port: int, workers: int,
                  threads: int) -> None:
    """gunicorn with gthread workers, TLS 1.2+, keep-alive and an access log."""
    import ssl

    from gunicorn.app.base import BaseApplication

    def tls_context(_config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        context = default()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    class Server(BaseApplication):  # type: ignore[misc]  # gunicorn has no type hints
        def load_config(self) -> None:
            for key, value in {
                    "bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread",
                    "threads": threads, "certfile": str(CertPaths(certs).authsvc),
                    "keyfile": str(CertPaths(certs).authsvc_key), "ssl_context": tls_context,
                    "accesslog": "-", "errorlog": "-", "keepalive": 30,
                    "control_socket_disable": True}.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    Server().run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("sign", "bcrypt", "ceiling"), default="sign")
    parser.add_argument("--server", choices=("authsvc", "gthread"), default="authsvc",
                        help="authsvc: behind the server `authsvc serve` runs (granian); "
                        "gthread: behind gunicorn's threaded workers")
    parser.add_argument("--certs", required=True, help="authsvc's certificate folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--bcrypt-rounds", type=int, default=10)
    args = parser.parse_args()
    os.environ.update({"BENCH_BASELINE_MODE": args.mode, "BENCH_CERTS_DIR": args.certs,
                       "BENCH_BCRYPT_ROUNDS": str(args.bcrypt_rounds)})
    if args.server == "gthread" and args.mode != "ceiling":
        serve_gthread(app_from_env(), Path(args.certs), args.host, args.port, args.workers,
                      args.threads)
        return
    granian("bench.baseline_app:served_app_from_env", CertPaths(Path(args.certs)), args.host,
            args.port, args.workers, args.threads).serve()


if __name__ == "__main__":
    main()
