"""authsvc: the token service for a self-hosted Docker registry.

The package is in layers, each a folder (README "Layout"): ``core`` (the pure domain: scope
grammar, policy, token minting), ``pki`` (keys and certificates), ``db`` (everything that
touches the database), ``web`` (HTTP), ``server`` (``authsvc serve``) and ``cli``; ``app``
composes them. Importing one layer loads nothing of the layers above it: ``create_app`` is
imported from ``authsvc.app`` when it is called.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from flask import Flask


def create_app(test_config: "Mapping[str, Any] | None" = None) -> "Flask":
    """The app (``authsvc.app.create_app``). Raises ConfigError naming a bad setting."""
    from authsvc.app import create_app as build

    return build(test_config)
