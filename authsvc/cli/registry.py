"""The ``authsvc registry`` group: what authsvc does with the registry itself."""

from authsvc.cli.base import cli


@cli.group("registry")
def registry_group() -> None:
    """Work with the registry: catch up with what it holds, the notification secret."""
