"""How a batch-inference run tiles, runs and writes: :class:`PredictOptions`.

The one home of predict's options: ``landcover predict`` builds its flags from these fields
(``pipelines.core.options``), the job takes a ``PredictOptions``, the flows pass one as their
``inference`` parameter and the benchmarks build theirs from it, so a default (tile, overlap,
batch, TTA, format, block size, …) is stated once. Importing this module loads neither Beam
nor TensorFlow.

Which options change a scene's output bytes (and so its done-record's fingerprint) is
:meth:`PredictOptions.output_options`; the rest (batch size, block size, waves, overwrite) only
change how the work is done: block-parallel output equals the single-worker path pixel for
pixel, and the batch does not change a tile's prediction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pipelines.core import tiling
from pipelines.core.gsd import DEEPGLOBE_GSD_M, check_gsd
from pipelines.core.options import check_fields, option
from pipelines.core.tiling import TILE_BATCH_SIZE, TILE_OVERLAP, TILE_SIZE, TTA_MODES

FORMATS: tuple[str, ...] = ("png", "cog")
# Polygon formats (pipelines.answers.vector_files.VECTOR_FORMATS, without importing pyarrow;
# a test keeps them equal).
VECTOR_FORMATS: tuple[str, ...] = ("gpkg", "parquet")
# Scenes with a side above this are split into blocks predicted as separate elements.
DEFAULT_BLOCK_SIZE = 4096
# Scenes per pipeline run on local runners (the DirectRunner materialises a stage's outputs
# before the next starts, so a wave bounds local memory); distributed runners get one run.
DEFAULT_SCENES_PER_WAVE = 8


@dataclass(frozen=True)
class PredictOptions:
    """How ``landcover predict`` tiles, runs and writes; every field is one flag."""

    tile: int = option(
        TILE_SIZE,
        help="largest tile side in px (the memory bound); each scene is tiled with the side "
        "that covers it with the fewest model pixels, a multiple of the model's stride",
        minimum=1,
    )
    overlap: int = option(TILE_OVERLAP, help="overlap of neighbouring tiles in px", minimum=0)
    batch_size: int = option(TILE_BATCH_SIZE, help="tiles per forward pass", minimum=1)
    format: str | None = option(
        None,
        help="output format; none: cog for georeferenced inputs, png otherwise",
        choices=FORMATS,
    )
    tta: str = option(
        "none",
        help="test-time augmentation: none, the mean over 4 flips, or over the 8 dihedral "
        "transforms",
        choices=TTA_MODES,
    )
    block_size: int = option(
        DEFAULT_BLOCK_SIZE,
        help="split cog scenes with a side above this into blocks predicted in parallel (0: never)",
        minimum=0,
    )
    class_ids: bool = option(
        False, help="png format: also write {id}_classes.png (class ids 0..6); a cog mask holds ids"
    )
    probabilities: bool = option(
        False,
        help="also write {id}_probs.npz (png: float16 H×W×7) or {id}_probs.tif (cog: uint8 band "
        "per class); cog scenes are then not split into blocks",
    )
    gsd: float | None = option(
        None,
        help="ground sample distance of every input scene in metres per pixel, overriding a "
        "wrong or missing georeference; none: a GeoTIFF's transform in its CRS's units, "
        f"{DEEPGLOBE_GSD_M:g} m (DeepGlobe's) for JPEG/PNG. A scene at another GSD than the "
        "model's (metadata.json) is predicted at the model's and written on its own grid",
        check=check_gsd,
        metavar="METRES",
    )
    vectors: str | None = option(
        None,
        help="also write class polygons {id}_polygons.gpkg (GeoPackage) or .parquet "
        "(GeoParquet) with class, pixels and area, in the raster's CRS; none: no polygons",
        choices=VECTOR_FORMATS,
    )
    min_area: float = option(
        0.0, help="with --vectors: leave out polygons under this many m²", minimum=0
    )
    simplify: float = option(
        0.0,
        help="with --vectors: simplify outlines with this tolerance in pixels (0: exact edges)",
        minimum=0,
    )
    overwrite: bool = option(False, help="re-predict scenes that are done")
    scenes_per_wave: int | None = option(
        None,
        help=f"scenes per pipeline run, bounding local memory; none: {DEFAULT_SCENES_PER_WAVE} on "
        "local runners, all at once on distributed ones",
        minimum=1,
    )

    def __post_init__(self) -> None:
        # Checked when made, so a flow parameter, a CLI flag or a Python caller with a bad
        # value fails at once (before an hour of training), naming the option.
        self.validate()

    def validate(self) -> PredictOptions:
        """Refuse values the job cannot run with (ValueError naming the option); returns
        ``self``. Tile and overlap follow the core's tiling rule."""
        check_fields(self)
        tiling.tile_origins(self.tile, self.tile, self.overlap)
        return self

    def output_format(self, georeferenced: bool) -> str:
        """The format a scene gets: the chosen one, else cog when georeferenced, png otherwise."""
        return self.format or ("cog" if georeferenced else "png")

    def output_options(self, fmt: str) -> dict[str, Any]:
        """The options that change a scene's output bytes in format ``fmt`` (fingerprinted)."""
        return {
            "format": fmt,
            "tile": self.tile,
            "overlap": self.overlap,
            "tta": self.tta,
            "class_ids": self.class_ids and fmt == "png",
            "probabilities": self.probabilities,
            "vectors": self.vectors,
            "min_area": self.min_area if self.vectors else 0.0,
            "simplify": self.simplify if self.vectors else 0.0,
        }

    def waves(self, local: bool) -> int:
        """Scenes per pipeline run: the chosen number, else the local or distributed default
        (0: all at once)."""
        if self.scenes_per_wave is not None:
            return self.scenes_per_wave
        return DEFAULT_SCENES_PER_WAVE if local else 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
