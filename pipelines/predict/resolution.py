"""Which GSD a scene is predicted at: the model's, read from its ``metadata.json``.

- The model's GSD is ``metadata.json``'s ``input.gsd_m`` beside ``model.keras`` (written by
  training from its dataset's manifest). A model without one (a bare ``model.keras``, or one
  trained on a dataset preprocessed before GSDs were recorded) predicts every scene at the
  scene's own GSD, and each record says so.
- A scene's GSD is ``--gsd`` when given, else its georeference, else DeepGlobe's 0.5 m for
  JPEG/PNG (``pipelines.io.gsd``). When the model has a GSD and the scene's cannot be known
  (a transform without a CRS, a grid whose pixel size varies), the scene is bad input with the
  reason: predicting it at a guessed scale would give a wrong map that looks right.
- Within 1 % of the model's GSD the scene is predicted on its own grid; otherwise on the model
  grid (:mod:`pipelines.predict.regrid`), and the outputs come back to the scene's grid.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.core.errors import BadInputError
from pipelines.core.gsd import Gsd, format_gsd, model_gsd
from pipelines.core.naming import METADATA_FILE
from pipelines.io import storage
from pipelines.io.gsd import scene_gsd
from pipelines.io.raster_read import RasterInfo

NO_MODEL_GSD = (
    "the model records no GSD (metadata.json without input.gsd_m): scenes are predicted at "
    "their own GSD"
)


def read_model_gsd(model_file: str) -> float | None:
    """The GSD the model was trained at, from the ``metadata.json`` beside ``model_file``.

    None when there is no metadata file or it records no GSD; ValueError naming the file when
    it is not a JSON object or its GSD is not a positive number.
    """
    folder = model_file.rstrip("/").rsplit("/", 1)[0] if "/" in model_file else "."
    uri = storage.join(folder, METADATA_FILE)
    if not storage.exists(uri):
        return None
    try:
        metadata = json.loads(storage.read_text(uri))
        if not isinstance(metadata, dict):
            raise ValueError("not a JSON object")
        return model_gsd(metadata)
    except (ValueError, AttributeError) as error:
        raise ValueError(f"{uri}: cannot read the model's GSD: {error}") from None


def scene_resolution(
    uri: str, info: RasterInfo | None, override: float | None, model_metres: float | None
) -> tuple[Gsd | None, dict[str, Any]]:
    """(the scene's GSD when it is to be resampled, else None; the record's ``gsd`` facts).

    BadInputError when the model has a GSD and the scene's cannot be read.
    """
    if model_metres is None:
        try:
            gsd = scene_gsd(uri, info, override)
        except BadInputError as error:
            note = f"{NO_MODEL_GSD}; the scene's is unknown: {error.reason}"
            return None, {"scene_m": None, "model_m": None, "resampled": False, "note": note}
        return None, _same(gsd, None, NO_MODEL_GSD)
    gsd = scene_gsd(uri, info, override)
    if gsd.matches(model_metres):
        return None, _same(gsd, model_metres, "at the model's GSD: predicted on its own grid")
    return gsd, {}


def _same(gsd: Gsd, model_metres: float | None, note: str) -> dict[str, Any]:
    return {
        "scene_m": [gsd.x, gsd.y],
        "scene_source": gsd.source,
        "model_m": model_metres,
        "resampled": False,
        "note": note if model_metres is None else f"{format_gsd(gsd.x)} m, {note}",
    }
