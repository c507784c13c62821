"""authsvc's tag records and the registry kept in step: ``sync`` makes the records match what
the registry holds; ``delete_tag`` and ``delete_images`` delete in the registry first, then in
the records.

The registry (2.8) deletes a manifest by digest only, and that removes every tag pointing to it:
a tag delete resolves the tag's digest and refuses while other tags share it, unless told.
Every registry call comes before any change to authsvc's records, so a registry that cannot be
reached (RegistryUnavailable) leaves them as they were. Who may delete is the caller's to check.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from authsvc.db.audit import Event
from authsvc.db.catalog import Catalog, TagRecord
from authsvc.errors import Conflict, NotFound
from authsvc.registry.references import ManifestInfo, validate_tag

if TYPE_CHECKING:  # the client (and requests) is imported when a sync or delete needs it
    from authsvc.registry.client import RegistryClient


@dataclass(frozen=True)
class TagChange:
    """One tag that sync put or dropped: ``old_digest`` is what authsvc had ("" when new),
    ``digest`` what the registry has ("" when gone)."""

    repository: str
    tag: str
    digest: str = ""
    old_digest: str = ""
    size: int = 0


@dataclass
class SyncReport:
    """What ``sync`` changed. A repository is added when authsvc had no tags of it and now has,
    removed when its tags are all gone (its record, visibility and grants stay), changed when
    some of its tags were put or dropped."""

    repositories: int = 0
    added_repositories: list[str] = field(default_factory=list)
    changed_repositories: list[str] = field(default_factory=list)
    removed_repositories: list[str] = field(default_factory=list)
    added_tags: list[TagChange] = field(default_factory=list)
    changed_tags: list[TagChange] = field(default_factory=list)
    removed_tags: list[TagChange] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line: how many repositories were walked and what changed."""
        return (f"repositories in the registry: {self.repositories}; repositories: "
                f"{len(self.added_repositories)} added, {len(self.changed_repositories)} "
                f"changed, {len(self.removed_repositories)} removed; tags: "
                f"{len(self.added_tags)} added, {len(self.changed_tags)} changed, "
                f"{len(self.removed_tags)} removed")


def sync(client: "RegistryClient", catalog: Catalog) -> SyncReport:
    """Walk every repository, tag and manifest of the registry and make authsvc's tag records
    match: missing or different tags are put, tags the registry lacks are dropped (a repository
    it no longer lists loses all its tags). Returns what changed; records a ``registry.synced``
    audit event. Raises RegistryUnavailable (the records changed so far stay: a sync run again
    goes on from there)."""
    known = catalog.all_tags()
    report = SyncReport()
    listed: set[str] = set()
    for name in client.repositories():
        if name in listed:
            continue
        listed.add(name)
        report.repositories += 1
        _sync_repository(client, catalog, name, known.get(name, {}), report)
    for name in sorted(set(known) - listed):
        _record_changes(catalog, name, known[name], {}, report)
    catalog.audit.record(Event("registry.synced", target=client.base_url,
                               detail=report.summary))
    return report


def _sync_repository(client: "RegistryClient", catalog: Catalog, name: str,
                     known: dict[str, TagRecord], report: SyncReport) -> None:
    """Compare one repository's tags with the registry's and record the differences."""
    found: dict[str, ManifestInfo] = {}
    by_digest: dict[str, ManifestInfo] = {}
    for tag in client.tags(name):
        digest = client.digest(name, tag)
        if digest is None:
            continue  # deleted meanwhile
        record = known.get(tag)
        if record is not None and record.digest == digest:
            found[tag] = ManifestInfo(digest, record.media_type, record.size)
            continue
        info = by_digest.get(digest) or client.manifest(name, digest)
        if info is None:
            continue
        by_digest[digest] = found[tag] = info
    _record_changes(catalog, name, known, found, report)


def _record_changes(catalog: Catalog, name: str, known: dict[str, TagRecord],
                    found: dict[str, ManifestInfo], report: SyncReport) -> None:
    """Put the tags of ``found`` that ``known`` lacks or has with another digest, drop those
    ``found`` lacks, and add them to ``report``."""
    added: list[TagChange] = []
    changed: list[TagChange] = []
    for tag, info in sorted(found.items()):
        old = known.get(tag)
        if old is not None and old.digest == info.digest:
            continue
        catalog.put_tag(name, tag, info.digest, info.media_type, info.size)
        change = TagChange(name, tag, info.digest, old.digest if old else "", info.size)
        (changed if old else added).append(change)
    gone = sorted(set(known) - set(found))
    if gone:
        catalog.drop_tags(name, gone)
    report.added_tags += added
    report.changed_tags += changed
    report.removed_tags += [TagChange(name, t, old_digest=known[t].digest) for t in gone]
    if not known and found:
        report.added_repositories.append(name)
    elif known and not found:
        report.removed_repositories.append(name)
    elif added or changed or gone:
        report.changed_repositories.append(name)


# -- deletes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TagDeletion:
    """A deleted tag: its digest and every tag the registry removed with it (sorted)."""

    repository: str
    tag: str
    digest: str
    tags: tuple[str, ...]


def delete_tag(client: "RegistryClient", catalog: Catalog, name: str, tag: str, *,
               with_shared_tags: bool = False) -> TagDeletion:
    """Delete ``name:tag`` in the registry (its manifest, by digest) and then the records of
    every tag that pointed to it, with a ``tag.deleted`` audit event stored with the change.

    Raises InvalidName for a malformed tag, NotFound when the registry does not know the tag,
    Conflict naming the other tags of the same digest (they would go too) unless
    ``with_shared_tags``, RegistryUnavailable (then nothing changed in authsvc).
    """
    validate_tag(tag)
    digest = client.digest(name, tag)
    if digest is None:
        raise NotFound(f"the registry has no tag {tag!r} in {name!r}")
    shared = sorted(t for t in client.tags(name) if t != tag and client.digest(name, t) == digest)
    if shared and not with_shared_tags:
        raise Conflict(f"{name}:{tag} is {digest}, which the tags {', '.join(shared)} share; the "
                       "registry deletes by digest, so they would go too (ask again with "
                       "--with-shared-tags, or with_shared_tags=true in the API)")
    if not client.delete_manifest(name, digest):
        raise NotFound(f"the registry has no manifest {digest} in {name!r}")
    catalog.audit.add(Event("tag.deleted", target=f"{name}:{tag}", detail=digest))
    catalog.drop_digest(name, digest)
    return TagDeletion(name, tag, digest, tuple(sorted([tag, *shared])))


def delete_images(client: "RegistryClient", catalog: Catalog, name: str) -> list[str]:
    """Delete every manifest the tags of ``name`` point to in the registry (each distinct
    digest once), then forget the repository's tag records, with a
    ``repository.images_deleted`` audit event stored with the change. The repository record,
    its visibility and grants stay. Returns the digests deleted ([] when the registry has no
    tags of it). Raises RegistryUnavailable (then nothing changed in authsvc)."""
    digests = _distinct(client.digest(name, tag) for tag in client.tags(name))
    deleted = [d for d in digests if client.delete_manifest(name, d)]
    if deleted or catalog.tags(name):
        catalog.audit.add(Event("repository.images_deleted", target=name,
                                detail=" ".join(deleted)))
        catalog.drop_repository(name)
    return deleted


def _distinct(digests: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(d for d in digests if d))
