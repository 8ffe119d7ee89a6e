"""Files → scenes: ``{id}_sat.jpg`` and ``{id}_mask.png`` pair by id; a lone file is an orphan.

Pure functions on URIs (no reads): the Beam side (``transforms.PairScenes``) keys files with
:func:`file_role`, groups them by id and pairs each group with :func:`pair_files`. An orphan
becomes an :class:`ErrorRecord` naming the lone file, so it lands in ``errors/`` and the counts
reconcile; files that are neither image nor mask are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.core.errors import ErrorRecord
from pipelines.core.naming import labeled_image_id_of, mask_id_of

STAGE = "preprocess"  # the stage named in this job's error records
IMAGE, MASK = "image", "mask"


@dataclass(frozen=True)
class ScenePair:
    """A scene whose image and mask were both found."""

    scene_id: str
    image_uri: str
    mask_uri: str


def file_role(uri: str) -> tuple[str, tuple[str, str]] | None:
    """``…/{id}_sat.jpg`` → ``(id, ("image", uri))``; masks alike; anything else → None."""
    if (scene_id := labeled_image_id_of(uri)) is not None:
        return scene_id, (IMAGE, uri)
    if (scene_id := mask_id_of(uri)) is not None:
        return scene_id, (MASK, uri)
    return None


def pair_files(scene_id: str, files: Iterable[tuple[str, str]]) -> ScenePair | ErrorRecord:
    """One scene's files (grouped by id) → a pair, or an error naming the lone file."""
    by_role = dict(files)
    if IMAGE in by_role and MASK in by_role:
        return ScenePair(scene_id, by_role[IMAGE], by_role[MASK])
    if IMAGE in by_role:
        return ErrorRecord(by_role[IMAGE], "image without mask", STAGE, scene_id)
    return ErrorRecord(by_role[MASK], "mask without image", STAGE, scene_id)
