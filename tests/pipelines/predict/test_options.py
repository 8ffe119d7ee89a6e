"""PredictOptions: the one home of predict's options, its checks, and what is fingerprinted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.core.tiling import TILE_BATCH_SIZE, TILE_OVERLAP, TILE_SIZE, TTA_MODES
from pipelines.predict.cli import build_parser, options_from_args
from pipelines.predict.options import DEFAULT_SCENES_PER_WAVE, FORMATS, PredictOptions

REPO = Path(__file__).resolve().parents[3]


def test_defaults_are_the_shared_tiling_defaults() -> None:
    options = PredictOptions()
    assert (options.tile, options.overlap, options.batch_size) == (
        TILE_SIZE,
        TILE_OVERLAP,
        TILE_BATCH_SIZE,
    )
    assert (options.format, options.tta, options.overwrite) == (None, "none", False)
    assert TTA_MODES == ("none", "flip", "d4") and FORMATS == ("png", "cog")


def test_bad_values_fail_when_made_naming_the_option() -> None:
    with pytest.raises(ValueError, match="overlap"):
        PredictOptions(tile=64, overlap=40)  # more than half a tile
    with pytest.raises(ValueError, match="tile must be >= 1, got 0"):
        PredictOptions(tile=0, overlap=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        PredictOptions(batch_size=0)
    with pytest.raises(ValueError, match="unknown tta 'rot'; valid: none, flip, d4"):
        PredictOptions(tta="rot")
    with pytest.raises(ValueError, match="unknown format 'jpeg'"):
        PredictOptions(format="jpeg")
    with pytest.raises(ValueError, match="block_size must be >= 0"):
        PredictOptions(block_size=-1)
    with pytest.raises(ValueError, match="gsd must be a positive number of metres per pixel"):
        PredictOptions(gsd=-0.5)
    with pytest.raises(ValueError, match="gsd must be a positive number"):
        PredictOptions(gsd=float("inf"))
    with pytest.raises(ValueError, match="unknown vectors 'shp'"):
        PredictOptions(vectors="shp")
    with pytest.raises(ValueError, match="min_area must be >= 0"):
        PredictOptions(min_area=-1.0)


def test_the_vector_formats_are_the_writers() -> None:
    from pipelines.answers.vector_files import VECTOR_FORMATS as WRITERS
    from pipelines.predict.options import VECTOR_FORMATS

    assert VECTOR_FORMATS == WRITERS


def test_only_what_changes_the_output_bytes_is_fingerprinted() -> None:
    base = PredictOptions(tile=64, overlap=16, class_ids=True)
    assert base.output_options("png") == {
        "format": "png",
        "tile": 64,
        "overlap": 16,
        "tta": "none",
        "class_ids": True,
        "probabilities": False,
        "vectors": None,
        "min_area": 0.0,
        "simplify": 0.0,
    }
    assert base.output_options("cog")["class_ids"] is False  # a cog mask holds the ids
    # Polygon options change the outputs only when polygons are written.
    assert PredictOptions(min_area=5.0).output_options("cog") == PredictOptions().output_options(
        "cog"
    )
    with_vectors = PredictOptions(vectors="gpkg", min_area=5.0).output_options("cog")
    assert (with_vectors["vectors"], with_vectors["min_area"]) == ("gpkg", 5.0)
    # --gsd changes the bytes only through the resampling it causes, which the job fingerprints
    # per scene (its GSD and the model's), so a --gsd that changes nothing re-predicts nothing.
    for how_not_what in ({"batch_size": 4}, {"block_size": 0}, {"overwrite": True}, {"gsd": 1.0}):
        other = PredictOptions(tile=64, overlap=16, class_ids=True, **how_not_what)  # type: ignore[arg-type]
        assert other.output_options("png") == base.output_options("png")
    assert PredictOptions(tta="flip").output_options("png") != PredictOptions().output_options(
        "png"
    )


def test_format_and_waves_follow_the_scene_and_the_runner() -> None:
    assert PredictOptions().output_format(georeferenced=True) == "cog"
    assert PredictOptions().output_format(georeferenced=False) == "png"
    assert PredictOptions(format="png").output_format(georeferenced=True) == "png"
    assert PredictOptions().waves(local=True) == DEFAULT_SCENES_PER_WAVE
    assert PredictOptions().waves(local=False) == 0
    assert PredictOptions(scenes_per_wave=2).waves(local=False) == 2


def test_every_option_is_a_flag_with_its_default() -> None:
    args, beam_args = build_parser().parse_known_args(
        ["--model", "m", "--input", "i", "--output", "o", "--runner", "DataflowRunner"]
    )
    assert options_from_args(args) == PredictOptions()
    assert beam_args == ["--runner", "DataflowRunner"]
    argv = ["--model", "m", "--input", "i", "--output", "o", "--tile", "256", "--overlap", "32"]
    argv += ["--batch-size", "2", "--format", "cog", "--tta", "d4", "--block-size", "0"]
    argv += ["--class-ids", "--probabilities", "--overwrite", "--scenes-per-wave", "3"]
    argv += ["--gsd", "2.5"]
    assert options_from_args(build_parser().parse_args(argv)) == PredictOptions(
        tile=256,
        overlap=32,
        batch_size=2,
        format="cog",
        tta="d4",
        block_size=0,
        class_ids=True,
        probabilities=True,
        overwrite=True,
        scenes_per_wave=3,
        gsd=2.5,
    )


def test_the_options_load_neither_beam_nor_tensorflow() -> None:
    code = (
        "import sys, pipelines.predict.options, pipelines.predict.cli\n"
        "sys.exit(bool({'tensorflow', 'keras', 'apache_beam'} & set(sys.modules)))\n"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False).returncode == 0
