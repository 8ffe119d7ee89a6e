"""Files → scenes: a labeled image and a mask pair by id; a lone file is an orphan.

Pure functions on URIs (no reads): the Beam side (``transforms.PairScenes``) keys files with
:func:`file_role`, groups them by id and pairs each group with :func:`pair_files`. Names follow
the one rule of :mod:`pipelines.core.naming` (suffixes in any case; ``_sat.jpg|tif|tiff`` images,
``_mask.png|tif|tiff`` masks); ids pair in their NFC form, so a name spelled with decomposed
accents finds its partner. Every file that cannot be used becomes an :class:`ErrorRecord`
naming it, so it lands in ``errors/`` and the counts reconcile: an orphan, a second image or
mask of the same id, or a name the storage layer cannot handle safely. Files that are neither
image nor mask are ignored.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.core.errors import ErrorRecord
from pipelines.core.naming import (
    LABEL_MASK_SUFFIXES,
    LABELED_IMAGE_SUFFIXES,
    basename,
    labeled_image_id_of,
    mask_id_of,
)
from pipelines.core.uris import normalize_name

STAGE = "preprocess"  # the stage named in this job's error records
IMAGE, MASK = "image", "mask"


@dataclass(frozen=True)
class ScenePair:
    """A scene whose image and mask were both found."""

    scene_id: str
    image_uri: str
    mask_uri: str


def file_role(uri: str) -> tuple[str, tuple[str, str]] | None:
    """``…/{id}_sat.jpg`` → ``(id, ("image", uri))``; masks alike; anything else → None.

    The id is NFC-normalised (the key files are grouped by).
    """
    if (scene_id := labeled_image_id_of(uri)) is not None:
        return unicodedata.normalize("NFC", scene_id), (IMAGE, uri)
    if (scene_id := mask_id_of(uri)) is not None:
        return unicodedata.normalize("NFC", scene_id), (MASK, uri)
    return None


def name_problem(uri: str) -> str | None:
    """Why a scene file's name is unsafe to carry through the pipeline (glob or control
    characters, …: :func:`pipelines.core.uris.normalize_name`), or None."""
    try:
        normalize_name(basename(uri))
    except ValueError as exc:
        return str(exc)
    return None


def _ranked(uris: list[str], suffixes: tuple[str, ...]) -> list[str]:
    def rank(uri: str) -> tuple[int, str]:
        lower = uri.lower()
        return next(i for i, s in enumerate(suffixes) if lower.endswith(s)), uri

    return sorted(uris, key=rank)


def pair_files(scene_id: str, files: Iterable[tuple[str, str]]) -> list[ScenePair | ErrorRecord]:
    """One scene's files (grouped by id) → a pair and errors for every file left over.

    With several images (or masks) for one id, the first by suffix order (JPEG, then TIFF) and
    then name is used and the others are named as duplicates, never silently dropped.
    """
    files = list(files)
    images = _ranked([uri for role, uri in files if role == IMAGE], LABELED_IMAGE_SUFFIXES)
    masks = _ranked([uri for role, uri in files if role == MASK], LABEL_MASK_SUFFIXES)
    if not masks:
        return [ErrorRecord(uri, "image without mask", STAGE, scene_id) for uri in images]
    if not images:
        return [ErrorRecord(uri, "mask without image", STAGE, scene_id) for uri in masks]
    result: list[ScenePair | ErrorRecord] = [ScenePair(scene_id, images[0], masks[0])]
    for kind, used, extras in ((IMAGE, images[0], images[1:]), (MASK, masks[0], masks[1:])):
        result += [
            ErrorRecord(
                uri, f"duplicate {kind} of scene {scene_id}; {used} was used", STAGE, scene_id
            )
            for uri in extras
        ]
    return result
