"""Files → scenes: a labeled image and a mask pair by id; a lone file is an orphan.

Pure functions on URIs (no reads): the Beam side (``transforms.PairScenes``) keys files with
:func:`file_role`, groups them by id and pairs each group with :func:`pair_files`. What a scene
is, which files belong to it and which of two images wins is the scene catalog's answer
(:mod:`pipelines.core.catalog`): ids compare normalised (case and Unicode form), any image
(``_sat.jpg|jpeg|png|tif|tiff``) pairs with any label (``_mask.png|tif|tiff``) of the same id.
Every file that cannot be used becomes an :class:`ErrorRecord` naming it, so it lands in
``errors/`` and the counts reconcile: an orphan, a second image or mask of the same id, or a
name the storage layer cannot handle safely. Names with glob characters (``tile[1]``) are
ordinary names: storage takes them literally. Files that are neither image nor mask are ignored.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.core.catalog import IMAGE, build_catalog, scene_file
from pipelines.core.errors import ErrorRecord
from pipelines.core.naming import basename
from pipelines.core.uris import normalize_name

STAGE = "preprocess"  # the stage named in this job's error records
MASK = "mask"


@dataclass(frozen=True)
class ScenePair:
    """A scene whose image and mask were both found."""

    scene_id: str
    image_uri: str
    mask_uri: str


def file_role(uri: str) -> tuple[str, tuple[str, str]] | None:
    """``…/{id}_sat.jpg`` → ``(key, ("image", uri))``; masks alike; anything else → None.

    The key is the catalog's normalised id (:func:`pipelines.core.catalog.scene_key`), the one
    files are grouped by.
    """
    found = scene_file(uri)
    if found is None:
        return None
    return found.key, (IMAGE if found.role == IMAGE else MASK, uri)


def name_problem(uri: str) -> str | None:
    """Why a scene file's name is unsafe to carry through the pipeline (control or invisible
    characters, …: :func:`pipelines.core.uris.normalize_name`), or None. Glob characters are
    fine: every storage call takes names literally."""
    try:
        normalize_name(basename(uri))
    except ValueError as exc:
        return str(exc)
    return None


def pair_files(scene_key: str, files: Iterable[tuple[str, str]]) -> list[ScenePair | ErrorRecord]:
    """One scene's files (grouped by normalised id) → a pair and errors for every file left.

    The catalog picks the image and the label (the first by suffix order, then name) and names
    the others as duplicates, never silently dropped.
    """
    catalog = build_catalog(uri for _, uri in files)
    result: list[ScenePair | ErrorRecord] = []
    for scene in catalog.scenes:
        if scene.image is None:
            assert scene.label is not None
            result.append(ErrorRecord(scene.label.uri, "mask without image", STAGE, scene.scene_id))
        elif scene.label is None:
            result.append(ErrorRecord(scene.image.uri, "image without mask", STAGE, scene.scene_id))
        else:
            scene_id = unicodedata.normalize("NFC", scene.scene_id)  # the id records carry
            result.append(ScenePair(scene_id, scene.image.uri, scene.label.uri))
    result += [ErrorRecord(p.uri, p.reason, STAGE, p.scene_id) for p in catalog.problems]
    return result
