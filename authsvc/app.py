"""The composition root: ``create_app`` builds the Flask app from the layers."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from authsvc.config import DEFAULTS, default_certs_dir, default_instance_path, validate_config
from authsvc.db.models import db
from authsvc.db.services import EXTENSION, Services
from authsvc.db.sqlite_files import private_instance_folder, private_sqlite_file, sqlite_path


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app: layered config, database, services, routes and error handlers.

    Raises ConfigError naming the key when a setting is invalid.
    """
    instance = default_instance_path()
    app = Flask(__name__, instance_path=str(instance), instance_relative_config=True,
                static_folder=None)
    never_redirect(app)
    app.config.from_mapping(DEFAULTS, CERTS_DIR=str(default_certs_dir()))
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("AUTHSVC")
    if test_config is not None:
        app.config.from_mapping(test_config)
    validate_config(app.config)

    database_url = app.config["DATABASE_URL"] or f"sqlite:///{Path(app.instance_path)}/authsvc.db"
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    if database_url.startswith("sqlite"):
        private_sqlite_files(Path(app.instance_path), database_url)
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    elif database_url.startswith("postgresql"):
        # Check a pooled connection before use, so a restarted database is reconnected to.
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {
            "pool_pre_ping": True, "connect_args": {"connect_timeout": 5}})
    db.init_app(app)
    app.extensions[EXTENSION] = Services(app.config, db.session)

    from authsvc.web.api import register_blueprints, register_error_handlers, response_for
    from authsvc.web.api.body_limit import BodyLimit
    from authsvc.web.api.token import TokenEndpoint
    from authsvc.web.health import register_health
    from authsvc.web.metrics import register_metrics
    from authsvc.web.pages import register_pages

    register_blueprints(app)
    register_error_handlers(app)
    # The web pages under /ui; their signing key (SECRET_KEY, unless set) is the certificate
    # folder's web-secret-key, made on the first page (authsvc.web.pages.cookie).
    register_pages(app, fallback=response_for)
    # Flask's way of adding WSGI middleware (mypy sees a method being replaced)
    app.wsgi_app = BodyLimit(TokenEndpoint(app, app.wsgi_app),  # type: ignore[method-assign]
                             app.config["MAX_CONTENT_LENGTH"])
    # /healthz, /readyz; /metrics and the timing of every request (outermost, /token too).
    register_health(app)
    register_metrics(app)
    return app


def private_sqlite_files(instance: Path, database_url: str) -> None:
    """The instance folder 0700 and the SQLite database file with its companions 0600, before
    SQLite creates any of them, whatever the umask or the folder's mode was."""
    private_instance_folder(instance)
    database = sqlite_path(database_url)
    if database is not None:
        private_sqlite_file(database)


def never_redirect(app: Flask) -> None:
    """Routing never answers a redirect: werkzeug builds the new URL from the request's
    ``Host`` header, so ``//`` merging (or a default) would send clients to any host. A path
    of another shape gets the JSON 404 instead. Takes effect for the routes added after it."""
    app.url_map.merge_slashes = False
    app.url_map.redirect_defaults = False


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL and foreign keys for SQLite, so readers do not block the writer and cascades work.

    With WAL, ``synchronous=NORMAL`` syncs at checkpoints instead of every commit: a crash of
    authsvc loses nothing and the database never corrupts; a power cut may lose the last commits.
    """
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
