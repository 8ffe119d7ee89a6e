"""Predict reads a scene as its files say: a PNG's alpha 0 is no data, a JPEG/PNG with a world
file is georeferenced (or the summary says its georeference was ignored)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

from pipelines.core.palette import CLASS_COLORS, UNKNOWN
from pipelines.predict.job import run_predict
from pipelines.predict.options import PredictOptions

OPTIONS = PredictOptions(tile=64, overlap=16, batch_size=2)


def test_transparent_png_borders_are_no_data_and_world_files_georeference(
    tmp_path: Path, model_dir: Path, make_image, encode_image
) -> None:
    scenes, out = tmp_path / "in", tmp_path / "out"
    scenes.mkdir()
    rgba = np.dstack([make_image(40, 48, 1), np.full((40, 48), 255, np.uint8)])
    Image.fromarray(rgba[..., :3]).save(scenes / "o_sat.png")  # the same pixels, opaque
    rgba[:, :10, 3] = 0  # a transparent border
    Image.fromarray(rgba, "RGBA").save(scenes / "t_sat.png")
    (scenes / "w_sat.png").write_bytes(encode_image(make_image(40, 48, 2), "PNG"))
    (scenes / "w_sat.pgw").write_text("0.5\n0\n0\n-0.5\n500000.25\n4000000.25\n")
    summary = run_predict(str(model_dir), str(scenes), str(out), OPTIONS)
    assert (summary["predicted"], summary["failed"]) == (3, 0)

    mask = np.asarray(Image.open(out / "t_mask.png").convert("RGB"))
    assert (mask[:, :10] == CLASS_COLORS[UNKNOWN]).all()  # never given a class
    opaque = np.asarray(Image.open(out / "o_mask.png").convert("RGB"))
    assert not (opaque[:, :10] == CLASS_COLORS[UNKNOWN]).all()  # the model gives them classes

    with rasterio.open(out / "w_mask.tif") as cog:  # georeferenced by its world file
        # a world file names the centre of the first pixel: corners are half a pixel out
        assert tuple(cog.transform)[:6] == (0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.5)
    assert not (out / "w_mask.png").exists()

    forced = run_predict(
        str(model_dir),
        str(scenes),
        str(tmp_path / "png"),
        PredictOptions(**{**vars(OPTIONS), "format": "png"}),
    )
    assert any("world file" in w and "w" in w for w in forced["warnings"]), forced["warnings"]
