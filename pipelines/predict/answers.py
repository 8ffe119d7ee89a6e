"""What predict adds to each scene beyond its mask: provenance tags, stats, polygons, STAC.

The two places a scene is finished (a whole scene in ``PredictBlock``, a block-parallel one in
``AssembleScene``) call these, so both give the same files: the tags go inside the COGs as they
are written, and :func:`finish_scene` runs :func:`pipelines.answers.scene.answer_scene` on the
published mask and returns what the done-record lists (the scene's files and its summary
additions), before the record is committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.answers.scene import VectorOptions, answer_scene
from pipelines.core.naming import mask_name
from pipelines.core.provenance import InputRef, ModelRef, provenance_tags
from pipelines.io import storage
from pipelines.io.code_version import code_version
from pipelines.predict.options import PredictOptions
from pipelines.predict.outputs import MASK_COG_SUFFIX


def scene_tags(source: InputRef, model: ModelRef, options: Mapping[str, Any]) -> dict[str, str]:
    """The provenance a scene's COGs carry inside (model, input, options, code version)."""
    return provenance_tags(source, model, options, code_version())


def mask_uri(output_uri: str, scene_id: str, fmt: str) -> str:
    """The scene's class map: ``{id}_mask.tif`` for cog, ``{id}_mask.png`` for png."""
    name = f"{scene_id}{MASK_COG_SUFFIX}" if fmt == "cog" else mask_name(scene_id)
    return storage.join(output_uri, name)


def finish_scene(
    output_uri: str,
    scene_id: str,
    fmt: str,
    written: Sequence[str],
    *,
    source: InputRef,
    model: ModelRef,
    recorded_options: Mapping[str, Any],
    options: PredictOptions,
) -> tuple[list[str], dict[str, Any]]:
    """Stats, polygons (``--vectors``) and the STAC Item of a published scene.

    Returns (every file for the record: ``written`` and these, summary entries to add).
    """
    answers = answer_scene(
        scene_id,
        output_uri,
        mask_uri(output_uri, scene_id, fmt),
        written,
        model=model,
        source=source,
        options=recorded_options,
        vectors=VectorOptions(options.vectors, options.min_area, options.simplify),
        gsd_m=options.gsd,
    )
    summary: dict[str, Any] = {"stats": answers.stats}
    if answers.vectors is not None:
        summary["vectors"] = {k: answers.vectors[k] for k in ("polygons", "dropped_below_min_area")}
    return [*written, *answers.outputs], summary
