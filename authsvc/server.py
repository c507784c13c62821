"""Serving the app over HTTPS with gunicorn (threaded workers, TLS 1.2 or newer)."""

import logging
import ssl
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from authsvc.certs import CertPaths, check_private_key_file


def _tls_context(config: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    context = default_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class HTTPSServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with ``gthread`` workers: keep-alive connections skip repeated TLS handshakes."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def serve(app: Flask, host: str, port: int, workers: int, threads: int) -> None:
    """Run until stopped. Raises CertificateError when the HTTPS key is missing or unsafe."""
    certs = CertPaths(app.extensions["authsvc"].certs.root)
    check_private_key_file(certs.authsvc_key)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] "
                        "%(name)s: %(message)s")
    HTTPSServer(app, {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "certfile": str(certs.authsvc),
        "keyfile": str(certs.authsvc_key),
        "ssl_context": _tls_context,
        "accesslog": "-",
        "errorlog": "-",
        "keepalive": 30,
        # gunicorn's control socket lives at one path per user; two instances would fight.
        "control_socket_disable": True,
    }).run()
