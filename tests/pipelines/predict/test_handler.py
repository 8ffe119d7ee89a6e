"""The RunInference handler: shared normalisation, batching, a seamless stitch, real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import normalization
from pipelines.core import tiling
from pipelines.core.palette import NUM_CLASSES
from pipelines.predict.handler import METRICS_NAMESPACE, KerasSegmentationHandler

TILE, OVERLAP = 128, 32


def test_stitched_odd_scene_equals_the_model_on_the_whole_padded_scene(
    model, make_image, predict_image, reference
):
    image = make_image(301, 257, seed=0)
    blender = predict_image(image, model, tile=TILE, overlap=OVERLAP, batch_size=4)
    expected = reference(model, image, TILE, OVERLAP)
    assert len(blender.grid) == 9
    np.testing.assert_allclose(blender.probabilities(), expected, atol=1e-5)
    np.testing.assert_array_equal(blender.class_ids(), expected.argmax(-1))


def test_handler_normalises_with_the_shared_function(
    model, make_image, monkeypatch: pytest.MonkeyPatch
):
    calls: list[tuple[int, ...]] = []
    shared = normalization.normalize_image

    def spy(batch):
        calls.append(batch.shape)
        return shared(batch)

    # the serving API calls the shared function through its module, so this spy sees it
    monkeypatch.setattr(normalization, "normalize_image", spy)
    tiles = tiling.cut_tiles(make_image(140, 130, seed=1), TILE, OVERLAP)
    handler = KerasSegmentationHandler("unused", batch_size=4)
    results = list(handler.run_inference(tiles, model))
    assert calls == [(4, TILE, TILE, 3)]
    expected = model.predict_on_batch(shared(np.stack(tiles)))
    for result, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(result.inference, want)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 4, "max_batch_size": 4}


def test_handler_rejects_an_empty_batch_size_and_sizes_batches_in_bytes(make_image):
    with pytest.raises(ValueError, match="batch size must be >= 1, got 0"):
        KerasSegmentationHandler("unused", batch_size=0)
    handler = KerasSegmentationHandler("unused", batch_size=2)
    tiles = tiling.cut_tiles(make_image(40, 40, seed=2), 32, 8)
    assert handler.get_num_bytes(tiles) == len(tiles) * 32 * 32 * 3
    assert handler.get_metrics_namespace() == METRICS_NAMESPACE == "landcover.predict"


@pytest.mark.slow
def test_handler_loads_a_model_written_by_landcover_train(tmp_path: Path, make_image):
    """The real hand-off: synth → preprocess → train (tiny) → model.keras → predict."""
    from models.train.config import TrainConfig
    from models.train.loop import train
    from pipelines import synth
    from pipelines.predict.job import run_predict
    from pipelines.predict.options import PredictOptions
    from pipelines.preprocess.job import run_preprocess

    synth.write_scenes(str(tmp_path / "raw"), 3, size=128, seed=0)
    run_preprocess(
        str(tmp_path / "raw"), str(tmp_path / "records"), patch_size=64, val_fraction=0.34
    )
    train(
        TrainConfig(
            data=str(tmp_path / "records"),
            output=str(tmp_path / "model"),
            epochs=1,
            steps_per_epoch=1,
            batch_size=2,
            base_filters=2,
            val_steps=1,
        )
    )
    handler = KerasSegmentationHandler(str(tmp_path / "model" / "model.keras"), 2)
    loaded = handler.load_model()
    tiles = tiling.cut_tiles(make_image(70, 64, seed=40), 64, 16)
    results = list(handler.run_inference(tiles[:2], loaded))
    assert [r.inference.shape for r in results] == [(64, 64, NUM_CLASSES)] * 2
    np.testing.assert_allclose([r.inference.sum(-1).mean() for r in results], 1.0, atol=1e-4)
    summary = run_predict(
        str(tmp_path / "model"),
        str(tmp_path / "raw"),
        str(tmp_path / "pred"),
        PredictOptions(tile=64, overlap=16),
    )
    assert (summary["predicted"], summary["failed"]) == (3, 0)
