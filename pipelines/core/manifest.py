"""``manifest.json`` as a typed value: what a preprocessed dataset holds and how it was made.

One type, one shape: :meth:`Manifest.to_dict` writes exactly the keys and nesting the job has
always written (readers of older tools keep working), and :meth:`Manifest.from_dict` refuses a
manifest that lacks any of them, naming what is missing, so a reader never guesses at a default
(a missing ``scene_ids`` once meant "re-derive the split", which bad input could have changed).

``shards`` (added later, so optional on read: older manifests lack it) records each shard's
record count, size and sha256, counted after the shard was written: training verifies every
shard against it before its first step (``pipelines.io.records.verify_shards``).

``gsd`` (optional on read too) is the ground sample distance every patch is at, where it came
from and whether the scenes were resampled to it (:class:`pipelines.core.gsd.DatasetGsd`);
training copies it into the model's metadata. A manifest without it has an unknown GSD (None).

Pure: the file itself is read and written by ``pipelines.io.records.read_manifest`` /
``write_manifest``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines.core.gsd import DatasetGsd
from pipelines.core.naming import basename
from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES
from pipelines.core.records import SCHEMA_VERSION, SPLITS, RecordFormat

# The keys of manifest.json, in the order they are written.
MANIFEST_KEYS: tuple[str, ...] = (
    "schema_version",
    "patch_size",
    "gsd",
    "scenes",
    "patches",
    "scene_ids",
    "class_pixels",
    "class_pixels_by_split",
    "errors",
    "record_format",
    "files",
    "shards",
    "options",
    "created_at",
)
# Keys a manifest may lack (written before they existed); readers then know less, never guess.
OPTIONAL_KEYS: tuple[str, ...] = ("shards", "gsd")
# The keys of the per-split mappings (scenes, patches, scene_ids, class_pixels_by_split).
_PER_SPLIT = ("scenes", "patches", "scene_ids", "class_pixels_by_split")


@dataclass(frozen=True)
class ShardInfo:
    """One written shard as counted after the write: what a reader verifies it against."""

    records: int
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "size": self.size, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: Any, name: str = "") -> ShardInfo:
        if not isinstance(data, Mapping):
            raise ValueError(f"manifest shards[{name!r}] must be an object")
        try:
            records, size, sha = int(data["records"]), int(data["size"]), str(data["sha256"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"manifest shards[{name!r}] is incomplete: {error}") from None
        if records < 0 or size < 0 or len(sha) != 64:
            raise ValueError(f"manifest shards[{name!r}] has invalid values: {dict(data)}")
        return cls(records, size, sha)


def utc_timestamp() -> str:
    """Now, as the manifest records it: ISO 8601, UTC, whole seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def named_counts(counts: Sequence[int]) -> dict[str, int]:
    """Pixel counts in palette order → ``{class name: count}`` (palette order kept)."""
    if len(counts) != NUM_CLASSES:
        raise ValueError(f"expected {NUM_CLASSES} class counts, got {len(counts)}")
    return {name: int(n) for name, n in zip(CLASS_NAMES, counts, strict=True)}


@dataclass(frozen=True)
class Manifest:
    """A preprocessed dataset: its counts per split, its files, and the options it ran with.

    Per-split fields are keyed by split name (``pipelines.core.records.SPLITS``); pixel counts
    are keyed by class name in palette order and count every *scene* pixel once (the overlap of
    edge patches is not counted twice).
    """

    patch_size: int
    record_format: RecordFormat
    scenes: dict[str, int]
    patches: dict[str, int]
    scene_ids: dict[str, tuple[str, ...]]  # sorted, per split
    class_pixels: dict[str, int]
    class_pixels_by_split: dict[str, dict[str, int]]
    errors: int
    files: dict[str, tuple[str, ...]]  # base names of the shard and error files, sorted
    shards: dict[str, ShardInfo] = field(default_factory=dict)  # by shard base name
    options: dict[str, Any] = field(default_factory=dict)  # as the run recorded them
    created_at: str = ""  # ISO 8601, UTC
    schema_version: int = SCHEMA_VERSION
    gsd: DatasetGsd | None = None  # None: unknown (a manifest written before GSDs)

    # ---- building ----------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        *,
        patch_size: int,
        record_format: RecordFormat,
        scene_ids: Mapping[str, Iterable[str]],
        patches: Mapping[str, int],
        class_pixels_by_split: Mapping[str, Sequence[int]] | None = None,
        errors: int = 0,
        files: Mapping[str, Iterable[str]] | None = None,
        shards: Mapping[str, ShardInfo] | None = None,
        options: Mapping[str, Any] | None = None,
        created_at: str | None = None,
        gsd: DatasetGsd | None = None,
    ) -> Manifest:
        """A manifest from what a run counted: the derived fields (scene counts, overall class
        pixels) are computed here, once. Pixel counts come in palette order; file URIs may be
        full (only their base names are kept).

        When ``shards`` are given (keyed by URI or base name), every split's listed shards must
        be among them and their record counts must add up to the split's patches: ValueError
        otherwise, so a manifest never vouches for shards that do not hold what it says.
        """
        ids = {s: tuple(sorted(scene_ids.get(s, ()))) for s in SPLITS}
        by_split = {
            s: named_counts((class_pixels_by_split or {}).get(s, [0] * NUM_CLASSES)) for s in SPLITS
        }
        names = {k: tuple(sorted(map(basename, uris))) for k, uris in (files or {}).items()}
        shard_infos = {basename(uri): info for uri, info in (shards or {}).items()}
        if shards is not None:
            for split in SPLITS:
                listed = names.get(split, ())
                unknown = [n for n in listed if n not in shard_infos]
                if unknown:
                    raise ValueError(f"no record count for {split} shard(s) {unknown}")
                counted = sum(shard_infos[n].records for n in listed)
                if counted != int(patches.get(split, 0)):
                    raise ValueError(
                        f"{split} shards hold {counted} records but {patches.get(split, 0)} "
                        "patches were written"
                    )
        return cls(
            patch_size=int(patch_size),
            record_format=record_format,
            scenes={s: len(ids[s]) for s in SPLITS},
            patches={s: int(patches.get(s, 0)) for s in SPLITS},
            scene_ids=ids,
            class_pixels={n: sum(by_split[s][n] for s in SPLITS) for n in CLASS_NAMES},
            class_pixels_by_split=by_split,
            errors=int(errors),
            files=names,
            shards=dict(sorted(shard_infos.items())),
            options=dict(options or {}),
            created_at=utc_timestamp() if created_at is None else created_at,
            gsd=gsd,
        )

    # ---- what readers ask ----------------------------------------------------------------------

    def patch_count(self, split: str) -> int:
        """Patches written to ``split``."""
        return self.patches[_known_split(split)]

    def scene_count(self, split: str) -> int:
        """Scenes written to ``split``."""
        return self.scenes[_known_split(split)]

    @property
    def train_scene_ids(self) -> list[str]:
        """The scenes written to the train split, sorted."""
        return list(self.scene_ids[SPLITS[0]])

    @property
    def val_scene_ids(self) -> list[str]:
        """The scenes written to the val split, sorted: evaluation reads them from here, so it
        never re-derives a split that bad input may have changed."""
        return list(self.scene_ids[SPLITS[1]])

    @property
    def total_scenes(self) -> int:
        return sum(self.scenes.values())

    @property
    def total_patches(self) -> int:
        return sum(self.patches.values())

    # ---- the JSON shape ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The ``manifest.json`` object: keys and nesting exactly as the job writes them."""
        return {
            "schema_version": self.schema_version,
            "patch_size": self.patch_size,
            "gsd": None if self.gsd is None else self.gsd.to_dict(),
            "scenes": dict(self.scenes),
            "patches": dict(self.patches),
            "scene_ids": {s: list(ids) for s, ids in self.scene_ids.items()},
            "class_pixels": dict(self.class_pixels),
            "class_pixels_by_split": {s: dict(c) for s, c in self.class_pixels_by_split.items()},
            "errors": self.errors,
            "record_format": self.record_format.to_dict(),
            "files": {k: list(names) for k, names in self.files.items()},
            "shards": {name: info.to_dict() for name, info in self.shards.items()},
            "options": dict(self.options),
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Parse and check a ``manifest.json`` object; ValueError names what is missing/wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a manifest is a JSON object, got {type(data).__name__}")
        missing = [key for key in MANIFEST_KEYS if key not in data and key not in OPTIONAL_KEYS]
        if missing:
            raise ValueError(
                f"the manifest lacks {', '.join(missing)} (written by an older preprocess?): "
                "re-run preprocess on the same input"
            )
        if data["schema_version"] != SCHEMA_VERSION:
            raise ValueError(
                f"manifest schema_version {data['schema_version']!r} is not supported "
                f"(this code reads {SCHEMA_VERSION}): re-run preprocess on the same input"
            )
        for key in _PER_SPLIT:
            if not isinstance(data[key], Mapping) or set(data[key]) != set(SPLITS):
                raise ValueError(f"manifest {key} must have exactly the splits {list(SPLITS)}")
        by_class = {"class_pixels": data["class_pixels"]}
        by_class |= {f"class_pixels_by_split.{s}": data["class_pixels_by_split"][s] for s in SPLITS}
        for key, value in by_class.items():
            if not isinstance(value, Mapping) or list(value) != list(CLASS_NAMES):
                raise ValueError(f"manifest {key} must name the classes {list(CLASS_NAMES)}")
        try:
            record_format = RecordFormat.from_dict(data["record_format"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"manifest record_format is incomplete: {error}") from error
        return cls(
            schema_version=int(data["schema_version"]),
            patch_size=int(data["patch_size"]),
            scenes={s: int(data["scenes"][s]) for s in SPLITS},
            patches={s: int(data["patches"][s]) for s in SPLITS},
            scene_ids={s: tuple(str(i) for i in data["scene_ids"][s]) for s in SPLITS},
            class_pixels={n: int(c) for n, c in data["class_pixels"].items()},
            class_pixels_by_split={
                s: {n: int(c) for n, c in data["class_pixels_by_split"][s].items()} for s in SPLITS
            },
            errors=int(data["errors"]),
            record_format=record_format,
            files={str(k): tuple(str(n) for n in v) for k, v in data["files"].items()},
            shards=_shards(data.get("shards", {})),
            options=dict(data["options"]),
            created_at=str(data["created_at"]),
            gsd=None if data.get("gsd") is None else DatasetGsd.from_dict(data["gsd"]),
        )


def _shards(data: Any) -> dict[str, ShardInfo]:
    if not isinstance(data, Mapping):
        raise ValueError("manifest shards must be an object keyed by shard name")
    return {str(name): ShardInfo.from_dict(info, str(name)) for name, info in data.items()}


def _known_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    return split
