"""What a run publishes: metadata.json contents, the float32 model, who writes what."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import pytest

from models.train.artifacts import (
    METADATA_VERSION,
    build_metadata,
    code_version,
    float32_model,
    save_outputs,
)
from models.train.config import TrainConfig
from pipelines.core.manifest import Manifest
from pipelines.core.palette import CLASS_NAMES
from pipelines.core.records import RecordFormat


def small_manifest() -> Manifest:
    return Manifest.build(
        patch_size=64,
        record_format=RecordFormat(),
        scene_ids={"train": ["1"], "val": ["2"]},
        patches={"train": 4, "val": 4},
        created_at="2026-01-01T00:00:00+00:00",
    )


def test_metadata_publishes_the_best_epoch_with_the_full_history() -> None:
    config = TrainConfig(data="/d", output="/m/unet/v4", epochs=3, loss="dice+ce")
    history = [
        {"epoch": 1, "val_miou": 0.30, "val_dice": 0.5, "val_per_class_iou": {"urban": 0.1}},
        {"epoch": 2, "val_miou": 0.45, "val_dice": 0.6, "val_per_class_iou": {"urban": 0.2}},
        {"epoch": 3, "val_miou": 0.40, "val_dice": 0.7, "val_per_class_iou": {"urban": 0.3}},
    ]
    metadata = build_metadata(
        config,
        strategy="default",
        replicas=1,
        workers=1,
        global_batch=4,
        steps_per_epoch=3,
        manifest=small_manifest(),
        history=history,
        resumed_from_step=[],
        steps=9,
        optimizer_iterations=9,
        wall_time_s=1.0,
        best={"epoch": 2, "val_miou": 0.45, "weights": "/m/unet/v4/checkpoints/best-epoch-2"},
        class_weights=(1.0,) * 7,
    )
    assert metadata["best_epoch"] == 2 and metadata["epochs_run"] == 3
    assert (metadata["val_miou"], metadata["val_dice"]) == (0.45, 0.6)
    assert metadata["val_per_class_iou"] == {"urban": 0.2}
    assert metadata["history"] == history
    assert metadata["loss"]["name"] == "dice+ce" and metadata["loss"]["class_weights"] == [1.0] * 7
    assert metadata["optimizer"]["name"] == "AdamW"


def test_code_version_names_the_checkout() -> None:
    assert code_version().startswith("git:")


def test_metadata_says_what_produced_the_model() -> None:
    config = TrainConfig(data="/d", output="/m/unet/v3", batch_size=2, crop_size=32)
    manifest = small_manifest()
    history = [{"epoch": 1, "val_miou": 0.25, "val_dice": 0.5, "val_per_class_iou": {"urban": 0}}]
    metadata = build_metadata(
        config,
        strategy="mirrored",
        replicas=2,
        workers=1,
        global_batch=4,
        steps_per_epoch=3,
        manifest=manifest,
        history=history,
        resumed_from_step=[2],
        steps=3,
        optimizer_iterations=3,
        wall_time_s=1.23456,
    )
    assert metadata["metadata_version"] == METADATA_VERSION
    assert (metadata["version"], metadata["arch"], metadata["model_file"]) == (
        "v3",
        "unet",
        "model.keras",
    )
    assert (
        metadata["options"]["crop_size"] == 32 and metadata["data_manifest"] == manifest.to_dict()
    )
    assert (metadata["global_batch_size"], metadata["patches_seen"]) == (4, 12)
    assert metadata["input"] == {
        "normalization": "models.normalization.normalize_image (uint8 / 255 → float32)",
        "patch_size": 64,
        "train_size": 32,
        "num_classes": 7,
        "class_names": list(CLASS_NAMES),
        "gsd_m": None,  # the manifest predates GSDs: unknown
    }
    assert (metadata["val_miou"], metadata["val_dice"]) == (0.25, 0.5)
    assert metadata["resumed_from_step"] == [2] and metadata["wall_time_s"] == 1.235
    assert metadata["tensorflow_version"] and metadata["keras_version"] == keras.__version__
    assert list(metadata)[-1] == "optimizer_iterations"
    assert json.loads(json.dumps(metadata, allow_nan=False)) == metadata


def test_the_saved_model_computes_in_float32() -> None:
    config = TrainConfig(data="/d", output="/m", arch="unet", base_filters=2)
    keras.config.set_dtype_policy("mixed_float16")
    try:
        from models.architectures import build_model

        trained = build_model("unet", base_filters=2)
    finally:
        keras.config.set_dtype_policy("float32")
    exported = float32_model(trained, config)
    assert {layer.dtype_policy.name for layer in exported.layers} == {"float32"}
    for got, want in zip(exported.get_weights(), trained.get_weights(), strict=True):
        assert (got == want).all()


@pytest.mark.parametrize("is_chief", [True, False])
def test_only_the_chief_publishes(tmp_path: Path, is_chief: bool) -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    output = tmp_path / "out"
    save_outputs(str(output), model, {"steps": 1}, is_chief=is_chief)
    if is_chief:
        assert sorted(p.name for p in output.iterdir()) == ["metadata.json", "model.keras"]
        assert json.loads((output / "metadata.json").read_text()) == {"steps": 1}
    else:
        assert not output.exists()


def test_metadata_records_the_gsd_the_model_was_trained_at() -> None:
    from dataclasses import replace

    from pipelines.core.gsd import DatasetGsd, model_gsd

    manifest = replace(small_manifest(), gsd=DatasetGsd(2.0, {"0.5": 2}, target=2.0))
    metadata = build_metadata(
        TrainConfig(data="/d", output="/m/unet/v5"),
        strategy="default",
        replicas=1,
        workers=1,
        global_batch=4,
        steps_per_epoch=1,
        manifest=manifest,
        history=[],
        resumed_from_step=[],
        steps=1,
        optimizer_iterations=1,
        wall_time_s=1.0,
    )
    assert metadata["input"]["gsd_m"] == 2.0
    assert model_gsd(json.loads(json.dumps(metadata))) == 2.0  # what predict reads back
    assert metadata["data_manifest"]["gsd"]["native"] == {"0.5": 2}
