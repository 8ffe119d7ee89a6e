"""Training data checked before the first step, and fingerprinted for resume.

:func:`check_training_data` resolves the dataset root to its current version
(``pipelines.io.records.resolve_dataset``, the one answer to "which folder is the dataset";
a legacy root with the manifest directly in it reads too),
then checks every shard of every split against the record count, size and sha256 the manifest
recorded (``pipelines.io.records.verify_shards``, which reads each shard once): a truncated or
corrupt shard is named, and so is a shard the manifest lists but the folder lacks, or a split
whose records do not add up to the manifest's patch count. A truncated shard must never
read as a shorter dataset: the step count, the class weights and the metadata would all be
computed for data the model did not see.

:attr:`DataCheck.fingerprint` combines the verified checksums with the dataset version, and a
resume is refused when it differs from the checkpoint's (``models.train.checkpoints``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pipelines.core.manifest import Manifest
from pipelines.core.naming import basename
from pipelines.core.provenance import fingerprint
from pipelines.core.records import SPLITS
from pipelines.io import records, storage

LOG = logging.getLogger("landcover.train")


class BadShardError(ValueError):
    """A shard is missing, unreadable or disagrees with the manifest (named in the message)."""


@dataclass(frozen=True)
class ShardInfo:
    name: str
    records: int
    sha256: str


@dataclass(frozen=True)
class DataCheck:
    """What the check found: the folder read, its manifest and every shard's count and digest."""

    root: str
    folder: str
    manifest: Manifest
    shards: dict[str, list[ShardInfo]] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """The dataset version (its folder name; the root itself for a legacy root)."""
        return basename(self.folder.rstrip("/"))

    @property
    def fingerprint(self) -> str:
        """sha256 of the version and every shard's name, record count and checksum."""
        return fingerprint(self.fingerprint_parts())

    def fingerprint_parts(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created_at": self.manifest.created_at,
            "shards": {
                split: [[s.name, s.records, s.sha256] for s in shards]
                for split, shards in sorted(self.shards.items())
            },
        }


def _verify_with_manifest_records(folder: str) -> None:
    """Each shard's record count, size and sha256 against what the manifest recorded."""
    problems = records.verify_shards(folder)
    if problems:
        raise BadShardError("; ".join(problems))


def check_training_data(records_uri: str) -> DataCheck:
    """Resolve, read and verify every shard of ``records_uri`` (see the module docstring)."""
    folder = records.resolve_dataset(records_uri)
    manifest = records.read_manifest(folder)
    _verify_with_manifest_records(folder)
    found: dict[str, list[ShardInfo]] = {}
    for split in SPLITS:
        files = records.split_files(folder, split)
        names = {basename(f) for f in files}
        missing = sorted(set(manifest.files.get(split, ())) - names)
        if missing:
            raise BadShardError(
                f"shard {storage.join(folder, missing[0])} is listed in the manifest but missing"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        # verify_shards has just re-counted and re-hashed every shard against these figures:
        # take them from the manifest rather than reading each shard a second time
        shards = [
            ShardInfo(name, manifest.shards[name].records, manifest.shards[name].sha256)
            for name in sorted(names)
        ]
        total = sum(s.records for s in shards)
        expected = manifest.patch_count(split)
        if total != expected:
            raise BadShardError(
                f"the {split} shards under {folder} hold {total} records but the manifest says "
                f"{expected}: a shard is incomplete or stray "
                f"({', '.join(f'{s.name}: {s.records}' for s in shards)})"
            )
        found[split] = shards
    LOG.info(
        "data %s verified: %s",
        folder,
        ", ".join(f"{split} {sum(s.records for s in found[split])} records" for split in found),
    )
    return DataCheck(root=records_uri, folder=folder, manifest=manifest, shards=found)
