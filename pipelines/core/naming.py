"""How scene files are named: DeepGlobe's ``{id}_sat.jpg`` / ``{id}_mask.png`` and our outputs.

Every stage that finds, pairs or writes scene files (preprocess, predict, evaluate, the flows,
synth) asks this module, so a new accepted image type or output name is a one-line change.

**One matching rule**: a suffix matches whatever its case (``1_SAT.JPG``, ``1_Mask.TIF``), in
every stage; the scene id keeps its own spelling. Stages list a folder and filter with these
functions rather than glob on a suffix, because globs are case-sensitive on GCS and Linux.
"""

from __future__ import annotations

# The labeled training format, exactly as DeepGlobe ships it (and the names we write).
LABELED_IMAGE_SUFFIX = "_sat.jpg"
MASK_SUFFIX = "_mask.png"
# Labeled images and label masks preprocessing pairs: DeepGlobe's, and GeoTIFF training pairs
# (``{id}_sat.tif`` + ``{id}_mask.tif``, a label raster of class ids). Any image pairs with
# any mask of the same id.
LABELED_IMAGE_SUFFIXES: tuple[str, ...] = (LABELED_IMAGE_SUFFIX, "_sat.tif", "_sat.tiff")
LABEL_MASK_SUFFIXES: tuple[str, ...] = (MASK_SUFFIX, "_mask.tif", "_mask.tiff")
# File extensions of (Geo)TIFF rasters.
TIFF_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff")
# Images inference accepts, in the order that wins when one id has several files.
SCENE_IMAGE_SUFFIXES: tuple[str, ...] = (
    "_sat.jpg",
    "_sat.jpeg",
    "_sat.png",
    "_sat.tif",
    "_sat.tiff",
)
# A trained model's folder: the model and what it was trained on, how, and how well.
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
# Optional prediction outputs beside {id}_mask.png.
CLASSES_SUFFIX = "_classes.png"
PROBS_SUFFIX = "_probs.npz"


def image_name(scene_id: str) -> str:
    """The labeled image's file name: ``123`` → ``123_sat.jpg``."""
    return f"{scene_id}{LABELED_IMAGE_SUFFIX}"


def mask_name(scene_id: str) -> str:
    """The mask's file name (truth or prediction): ``123`` → ``123_mask.png``."""
    return f"{scene_id}{MASK_SUFFIX}"


def basename(uri: str) -> str:
    """The last part of a local path or ``scheme://bucket/…`` URI (``/`` separated in both)."""
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _strip(uri: str, suffixes: tuple[str, ...], *, any_case: bool) -> str | None:
    name = basename(uri)
    compared = name.lower() if any_case else name
    for suffix in suffixes:
        if compared.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def scene_id_of(uri: str) -> str | None:
    """``…/123_sat.jpg|png|tif…`` → ``123`` (any case: ``.TIF`` too); None otherwise."""
    return _strip(uri, SCENE_IMAGE_SUFFIXES, any_case=True)


def labeled_image_id_of(uri: str) -> str | None:
    """``…/123_sat.jpg`` or ``…/123_sat.tif`` → ``123``: the images preprocessing pairs with a
    mask (any case: ``.JPG`` too); None otherwise."""
    return _strip(uri, LABELED_IMAGE_SUFFIXES, any_case=True)


def mask_id_of(uri: str) -> str | None:
    """``…/123_mask.png`` or ``…/123_mask.tif`` → ``123`` (any case); None otherwise."""
    return _strip(uri, LABEL_MASK_SUFFIXES, any_case=True)


def is_tiff(uri: str) -> bool:
    """True for a ``.tif``/``.tiff`` name (any case)."""
    return basename(uri).lower().endswith(TIFF_EXTENSIONS)


def scene_rank(uri: str) -> int:
    """Position of the URI's suffix in :data:`SCENE_IMAGE_SUFFIXES` (lower wins a tie)."""
    lower = uri.lower()
    return next(i for i, suffix in enumerate(SCENE_IMAGE_SUFFIXES) if lower.endswith(suffix))
