"""Sorting a drop's files by name alone: labeled pairs, unlabeled scenes, invalid files.

The first step of unpacking (:mod:`flows.drops.unpack`), before anything is decoded: a labeled
pair is ``{id}_sat.jpg`` + ``{id}_mask.png``, an unlabeled scene ``{id}_sat.jpg|png|tif``, and
everything else (a mask without its image, other names) is invalid. Only the marker ``_DONE`` is
skipped (the flow removes it once the drop is unpacked). A file named like the flow's own state
(a journal or receipt, :data:`flows.drops.receipt.FLOW_STATE_NAMES`) is an uploader's file like
any other, since the flow keeps its state in the root's ``state/``: it is invalid, with a reason
saying so, and never read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from flows.drops.events import DROP_MARKER
from flows.drops.receipt import FLOW_STATE_NAMES
from pipelines.core.catalog import conflicts_with
from pipelines.core.naming import LABELED_IMAGE_SUFFIX, basename, mask_id_of, scene_id_of

# The one control file of a drop, never a scene file.
RESERVED_NAMES = frozenset({DROP_MARKER})
FLOW_STATE_REASON = (
    "named like the flow's own state ({name}), which is never read from a drop (it lives in "
    "the root's state/): rejected as untrusted input, nothing in it was acted on"
)


@dataclass
class DropPlan:
    """What a drop holds, by file name alone (before anything is decoded)."""

    pairs: list[tuple[str, str, str]] = field(default_factory=list)  # (id, image, mask)
    images: list[tuple[str, str]] = field(default_factory=list)  # (id, image)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (uri, reason)


def plan_drop(uris: Sequence[str]) -> DropPlan:
    """Sort a drop's files into labeled pairs, unlabeled images and invalid files."""
    plan = DropPlan()
    images: dict[str, str] = {}
    masks: dict[str, str] = {}
    for uri in sorted(uris):
        name = basename(uri)
        if name in RESERVED_NAMES:
            continue
        if name in FLOW_STATE_NAMES:
            plan.invalid.append((uri, FLOW_STATE_REASON.format(name=name)))
            continue
        scene_id, mask_id = scene_id_of(name), mask_id_of(name)
        if scene_id:
            if scene_id in images:
                plan.invalid.append((uri, f"second image for scene {scene_id}"))
            else:
                images[scene_id] = uri
        elif mask_id:
            masks[mask_id] = uri
        else:
            plan.invalid.append(
                (uri, "not a scene file: expected {id}_sat.jpg (+ {id}_mask.png when labeled)")
            )
    for scene_id, mask in sorted(masks.items()):
        image = images.pop(scene_id, None)
        if image is None:
            plan.invalid.append((mask, "mask without image"))
        elif not image.endswith(LABELED_IMAGE_SUFFIX):
            plan.invalid += [
                (image, f"labeled scenes need a {LABELED_IMAGE_SUFFIX} image"),
                (mask, f"its image is not {LABELED_IMAGE_SUFFIX}"),
            ]
        else:
            plan.pairs.append((scene_id, image, mask))
    plan.images = sorted(images.items())
    return plan


def scene_conflicts(existing: Iterable[str], incoming: Sequence[str]) -> list[str]:
    """Why a scene's incoming files clash with the scenes already in the destination folder.

    The scene catalog's answer (:func:`pipelines.core.catalog.conflicts_with`): an id that
    already has an image or label under another name (``a_mask.png`` arriving after
    ``a_mask.tif``, ids compared up to case and Unicode form) would make two labels of one scene
    in ``raw/``, of which preprocess would use one. Such a scene is quarantined like a scene
    whose bytes differ.
    """
    return conflicts_with(existing, incoming)
