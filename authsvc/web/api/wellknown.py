"""``/.well-known/jwks.json``: the public token-signing keys, for registries and other verifiers.

distribution 3.x reads a JWKS from a file (``auth.token.jwks``, which ``authsvc certs`` writes);
this is the same document over HTTPS, computed from the certificates on every request so that
it follows ``authsvc certs rotate`` without a restart.
"""

from flask import Blueprint, Response, current_app, jsonify

from authsvc.db.services import services_of
from authsvc.pki.certs import jwks

bp = Blueprint("wellknown", __name__, url_prefix="/.well-known")

#: Verifiers may cache the key set this long; a rotation publishes the next key well before use.
MAX_AGE = 300


@bp.get("/jwks.json")
def jwks_document() -> Response:
    """Every trusted signing key (active, next, previous), with ``kid`` in KID_FORMAT."""
    state = services_of(current_app)
    response = jsonify(jwks(state.certs, state.config["KID_FORMAT"]))
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    return response
