"""Scene names with glob characters are names, not patterns, through the whole predict job."""

from __future__ import annotations

from pathlib import Path

from pipelines.predict.job import run_predict
from pipelines.predict.options import PredictOptions

OPTIONS = PredictOptions(tile=64, overlap=16, batch_size=2)


def test_a_scene_named_tile_1_in_brackets_leaves_tile1s_record_alone(
    tmp_path: Path, model_dir: Path, make_image, encode_image
) -> None:
    """``tile[1]`` re-predicted after its input changed retracts its own done-record; Beam's
    pattern delete took ``tile[1].done.json`` for a pattern and deleted ``tile1.done.json``."""
    scenes, out = tmp_path / "in", tmp_path / "out"
    scenes.mkdir()
    (scenes / "tile1_sat.png").write_bytes(encode_image(make_image(40, 40, 1), "PNG"))
    (scenes / "tile[1]_sat.png").write_bytes(encode_image(make_image(40, 40, 2), "PNG"))
    (scenes / "a*b_sat.png").write_bytes(encode_image(make_image(40, 40, 3), "PNG"))
    first = run_predict(str(model_dir), str(scenes), str(out), OPTIONS)
    assert (first["predicted"], first["failed"]) == (3, 0)
    done = sorted(p.name for p in out.glob("*.done.json"))
    assert done == ["a*b.done.json", "tile1.done.json", "tile[1].done.json"]
    kept = (out / "tile1.done.json").read_bytes()

    (scenes / "tile[1]_sat.png").write_bytes(encode_image(make_image(40, 40, 4), "PNG"))
    second = run_predict(str(model_dir), str(scenes), str(out), OPTIONS)
    assert (second["predicted"], second["skipped"], second["failed"]) == (1, 2, 0)
    assert (out / "tile1.done.json").read_bytes() == kept
    third = run_predict(str(model_dir), str(scenes), str(out), OPTIONS)
    assert (third["predicted"], third["skipped"], third["failed"]) == (0, 3, 0)
