"""The ``authsvc registry`` group: what authsvc does with the registry itself; and the deletes
that reach into the registry: ``repo delete`` (on the ``repo`` group) and ``tag delete``."""

import click

from authsvc.cli.base import app_state, cli, command
from authsvc.cli.repos import repo_group
from authsvc.db.registry_sync import SyncReport, delete_images, delete_tag, sync
from authsvc.db.repositories import validate_repository_path
from authsvc.errors import InvalidName, NotFound, RegistryNotConfigured
from authsvc.registry.client import RegistryClient
from authsvc.registry.references import validate_tag


@cli.group("registry")
def registry_group() -> None:
    """Work with the registry: catch up with what it holds, the notification secret."""


def _client(purpose: str) -> RegistryClient:
    """The registry client for a command; raises RegistryNotConfigured."""
    return app_state().registry_client(purpose)


def _short(digest: str) -> str:
    return digest[:19] if digest else "-"


def report_lines(report: SyncReport) -> list[str]:
    """What ``registry sync`` prints: one line per change, then the summary."""
    lines = [f"added repository {name}" for name in report.added_repositories]
    lines += [f"added tag {t.repository}:{t.tag} {t.digest} ({t.size} bytes)"
              for t in report.added_tags]
    lines += [f"changed tag {t.repository}:{t.tag} {_short(t.old_digest)}… -> {t.digest}"
              for t in report.changed_tags]
    lines += [f"changed repository {name}" for name in report.changed_repositories]
    lines += [f"removed tag {t.repository}:{t.tag}" for t in report.removed_tags]
    lines += [f"removed repository {name} (its tags; the record and grants stay)"
              for name in report.removed_repositories]
    return [*lines, report.summary]


@command(registry_group, "sync")
def registry_sync_command() -> None:
    """Make authsvc's tag records match what the registry holds (after notifications were
    missed, e.g. while authsvc was down): every repository, tag, digest and size."""
    report = sync(_client("sync"), app_state().catalog)
    for line in report_lines(report):
        click.echo(line)


@command(repo_group, "delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def repo_delete_command(name: str, yes: bool) -> None:
    """Delete every image of repository NAME in the registry, its tag records, and the
    repository record with its grants. Blobs are freed by the registry's garbage-collect.

    Without REGISTRY_URL only a repository whose tags authsvc does not know can be deleted
    (its record)."""
    validate_repository_path(name)
    state = app_state()
    if not yes:
        click.confirm(f"Delete every image of {name} in the registry and forget the repository "
                      "and its grants?", abort=True)
    record = state.repos.find(name)
    deleted: list[str] = []
    if state.config.get("REGISTRY_URL"):
        deleted = delete_images(_client("cli"), state.catalog, name)
        click.echo(f"deleted {len(deleted)} manifest(s) of {name} in the registry")
    elif state.catalog.tags(name):
        raise RegistryNotConfigured("REGISTRY_URL is not set, so authsvc cannot delete the "
                                    f"images of {name} in the registry")
    if record is not None:
        state.repos.delete(name)
        click.echo(f"forgot the repository {name} and its grants")
    elif not deleted:
        raise NotFound(f"repository {name!r} does not exist")


@cli.group("tag")
def tag_group() -> None:
    """Tags in the registry."""


@command(tag_group, "delete")
@click.argument("reference", metavar="NAME:TAG")
@click.option("--with-shared-tags", is_flag=True,
              help="Also delete the other tags of the same image (the registry deletes by "
                   "digest, so they cannot stay).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def tag_delete_command(reference: str, with_shared_tags: bool, yes: bool) -> None:
    """Delete the tag NAME:TAG in the registry (its manifest) and in authsvc. Refused while
    other tags point to the same image, unless --with-shared-tags."""
    name, sep, tag = reference.rpartition(":")
    if not sep or not name or not tag or "/" in tag:
        raise InvalidName(f"expected NAME:TAG, not {reference[:300]!r}")
    validate_tag(tag)
    if not yes:
        click.confirm(f"Delete {name}:{tag} in the registry?", abort=True)
    done = delete_tag(_client("cli"), app_state().catalog, name, tag,
                      with_shared_tags=with_shared_tags)
    click.echo(f"deleted {name}:{tag} ({done.digest}) in the registry")
    others = [t for t in done.tags if t != tag]
    if others:
        click.echo(f"also deleted the tags of the same image: {', '.join(others)}")
