"""The GSD of a preprocessed dataset: one per dataset, surveyed before the job, or a target.

A dataset has one GSD, the one its model will be trained at (``manifest.json``'s ``gsd``).

- **One GSD in the input** (the usual case: DeepGlobe's JPEGs at 0.5 m, or GeoTIFFs from one
  source): the dataset is at it; no pixel is resampled.
- **``--target-gsd G``**: every scene is resampled to G m per pixel (image by area average
  down, bilinear up; labels by mode down, nearest up; :mod:`pipelines.core.resample`), so
  a model can train at a coarser GSD than the imagery: more ground per pixel of compute.
  Scenes already within 1 % of G are not touched.
- **Mixed GSDs without a target: refused before any work**, naming each GSD with its scenes
  (``ValueError``, exit 1). Resampling some scenes silently would change what the model learns
  at a scale nobody chose, and a majority vote would drop good scenes; the fix is one flag,
  ``--target-gsd``, and the message gives the coarsest GSD found as the natural choice.

The survey (:func:`survey_gsd`) runs in the driver before Beam: JPEG/PNG scenes cost nothing
(their GSD is ``--gsd`` or 0.5 m), a local GeoTIFF costs a header read; a GeoTIFF on ``gs://``
is copied to read its header (the job reads it again), so pass ``--gsd`` or ``--target-gsd``,
which need no survey, for large remote inputs. A scene the survey cannot read is left to the
job, which dead-letters it with its own reason. Each scene's GSD is checked again in the job
against the surveyed one (a file replaced in between is bad input, never mixed in).
"""

from __future__ import annotations

import statistics
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pipelines.core.catalog import build_catalog
from pipelines.core.errors import BadInputError
from pipelines.core.gsd import DatasetGsd, Gsd, format_gsd, same_gsd
from pipelines.core.palette import UNKNOWN
from pipelines.core.resample import Regrid, strips, target_shape
from pipelines.io.gsd import scene_gsd
from pipelines.io.imaging import MAX_DECODE_PIXELS
from pipelines.io.labeled import LabeledScene
from pipelines.io.raster_read import read_info
from pipelines.io.scenes import decoded_by_pil
from pipelines.preprocess.pairing import ScenePair

# Source rows a resampling strip reads: bounds the float intermediates (~30 MB for 2448-px-wide
# RGB), whatever the scene's height and the scale.
STRIP_SOURCE_ROWS = 512
# Scenes named per GSD in the refusal of a mixed input.
_EXAMPLES = 3


class MixedGsdError(ValueError):
    """The input's scenes are at different GSDs and no ``--target-gsd`` says which to use."""


@dataclass(frozen=True)
class GsdPlan:
    """How a run treats GSDs: ``override`` (``--gsd``), ``target`` (``--target-gsd``) and the
    dataset GSD the survey found (``expected``; None with a target, or when no scene could be
    read before the job: each scene is then taken at its own GSD and the manifest records one
    only if they all agree)."""

    override: float | None = None
    target: float | None = None
    expected: float | None = None

    @property
    def dataset_metres(self) -> float | None:
        """The GSD every patch of the dataset is at."""
        return self.target if self.target is not None else self.expected

    def dataset_gsd(self, native: dict[str, int]) -> DatasetGsd | None:
        """The manifest's ``gsd`` from the natives the written scenes were counted under."""
        metres = self.dataset_metres
        if metres is None and len(native) == 1:
            key = next(iter(native))
            metres = None if "x" in key else float(key)
        if metres is None:
            return None
        return DatasetGsd(metres, dict(native), self.target)

    def apply(self, scene: LabeledScene, uri: str) -> tuple[np.ndarray, np.ndarray, Gsd]:
        """A decoded scene at the dataset's GSD: (image, class ids, its native GSD).

        BadInputError (naming ``uri``) when its GSD cannot be read, is not the dataset's (no
        target), or resampling would make it too large to hold.
        """
        native = scene_gsd(uri, scene.info, self.override)
        if self.target is not None:
            if native.matches(self.target):
                return scene.image, scene.class_ids, native
            height, width = scene.class_ids.shape
            shape = target_shape(height, width, self.target / native.y, self.target / native.x)
            if shape[0] * shape[1] > MAX_DECODE_PIXELS:
                raise BadInputError(
                    uri,
                    f"resampled from {native.describe()} to {format_gsd(self.target)} m the scene "
                    f"would be {shape[0]}x{shape[1]} px, over the {MAX_DECODE_PIXELS} px limit",
                )
            image, class_ids = resample_scene(scene, shape)
            return image, class_ids, native
        if not native.square:
            raise BadInputError(
                uri,
                f"its pixels are {native.describe()} ({native.source}), not square: pass "
                "--target-gsd G to resample it to square pixels of G m",
            )
        if self.expected is not None and not native.matches(self.expected):
            raise BadInputError(
                uri,
                f"the scene is at {native.describe()} ({native.source}) but the dataset at "
                f"{format_gsd(self.expected)} m (surveyed before the job): pass --target-gsd",
            )
        return scene.image, scene.class_ids, native


def resample_scene(scene: LabeledScene, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image and class ids on a ``shape`` grid over the same ground, by strips (bounded floats).

    Image pixels are averaged over valid pixels only; labels take the mode (down) or the
    nearest class (up); an output pixel with no valid input under it is ``unknown``.
    """
    height, width = scene.class_ids.shape
    regrid = Regrid.between((height, width), shape)
    image = np.empty((*shape, 3), np.uint8)
    class_ids = np.empty(shape, np.uint8)
    rows = max(1, int(STRIP_SOURCE_ROWS * shape[0] / height))
    for window in strips(shape[0], shape[1], rows):
        out = (slice(window.row_off, window.row_stop), slice(window.col_off, window.col_stop))
        src = regrid.source_window(window)
        cut = (slice(src.row_off, src.row_stop), slice(src.col_off, src.col_stop))
        pixels, valid = regrid.pixels(window, scene.image[cut], scene.valid[cut], src)
        lab = regrid.source_window(window, labels=True)
        lab_cut = (slice(lab.row_off, lab.row_stop), slice(lab.col_off, lab.col_stop))
        ids = regrid.labels(window, scene.class_ids[lab_cut], lab)
        ids[~valid] = UNKNOWN
        image[out], class_ids[out] = pixels, ids
    return image, class_ids


# ---- the survey ----------------------------------------------------------------------------------


def survey_gsd(uris: Iterable[str], override: float | None, target: float | None) -> GsdPlan:
    """The run's plan, from the files the input lists; MixedGsdError for mixed GSDs.

    No survey is needed with a target (every scene goes to it) or an override (every scene is
    declared at it).
    """
    if target is not None:
        return GsdPlan(override, target)
    if override is not None:
        return GsdPlan(override, None, override)
    found: dict[str, float] = {}
    for pair in _pairs(uris):
        try:
            info = None if decoded_by_pil(pair.image_uri) else read_info(pair.image_uri)
            gsd = scene_gsd(pair.image_uri, info)
        except BadInputError:
            continue  # the job dead-letters it with its reason
        if gsd.square:
            found[pair.scene_id] = gsd.metres
    return GsdPlan(None, None, _one_gsd(found))


def _pairs(uris: Iterable[str]) -> list[ScenePair]:
    return [
        ScenePair(unicodedata.normalize("NFC", s.scene_id), s.image.uri, s.label.uri)
        for s in build_catalog(uris).labeled
        if s.image is not None and s.label is not None
    ]


def _one_gsd(found: dict[str, float]) -> float | None:
    """The dataset's GSD from the scenes' (the median of one group), or MixedGsdError."""
    if not found:
        return None
    groups: list[list[tuple[float, str]]] = []
    for metres, scene_id in sorted((m, s) for s, m in found.items()):
        if groups and same_gsd(groups[-1][0][0], metres):
            groups[-1].append((metres, scene_id))
        else:
            groups.append([(metres, scene_id)])
    if len(groups) == 1:
        return statistics.median_low(m for m, _ in groups[0])
    described = "; ".join(
        f"{format_gsd(group[0][0])} m: {len(group)} scene(s) "
        f"({', '.join(s for _, s in group[:_EXAMPLES])}{', ...' if len(group) > _EXAMPLES else ''})"
        for group in groups
    )
    coarsest = format_gsd(groups[-1][-1][0])
    raise MixedGsdError(
        f"the input's scenes are at different GSDs ({described}); a dataset has one GSD: pass "
        f"--target-gsd G to resample every scene to G m per pixel (e.g. --target-gsd "
        f"{coarsest}, the coarsest), or --gsd G if their georeference is wrong"
    )
