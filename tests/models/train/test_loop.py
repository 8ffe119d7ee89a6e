"""Training runs: synth → preprocess → train for both architectures, the non-finite stop, model +
metadata on gs:// (the emulator), mixed precision and the encoder freeze schedule."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from flows import cli
from models.train.cli import main
from models.train.config import TrainConfig
from models.train.epoch import NonFiniteLossError
from models.train.loop import EXIT_NON_FINITE, train
from pipelines.core.palette import NUM_CLASSES
from pipelines.io import storage
from pipelines.io.records import read_manifest

METADATA_KEYS = {
    "arch",
    "options",
    "data_manifest",
    "history",
    "val_miou",
    "code_version",
    "wall_time_s",
    "version",
    "strategy",
    "replicas",
    "global_batch_size",
}


@pytest.fixture(scope="module")
def records_uri(make_records: Callable[..., str]) -> str:
    """``landcover synth`` → ``landcover preprocess``: 2 scenes of 128 px, 64 px patches.

    One scene per split, so the train split is exactly 4 patches: with batch 4 and no
    augmentation every step sees the same batch, and the loss must go down (the classic
    "overfit one batch" check, robust for any seed).
    """
    out = make_records(scenes=2, size=128, patch=64, seed=1, val_fraction=0.5)
    assert read_manifest(out).patches == {"train": 4, "val": 4}
    return out


def tiny(records: str, output: str, arch: str, **overrides) -> TrainConfig:
    options = {
        "data": records,
        "output": output,
        "arch": arch,
        "epochs": 1,
        "steps_per_epoch": 8,
        "batch_size": 4,
        "learning_rate": 3e-3,
        "base_filters": 4,
        "augment": False,
        "deterministic": True,
        "log_every": 4,
        "seed": 0,
    }
    options.update(overrides)
    return TrainConfig(**options)


# ---- end to end ----------------------------------------------------------------------------


def test_unet_end_to_end_from_the_command_line(records_uri: str, tmp_path: Path) -> None:
    output = tmp_path / "unet"
    argv = ["train", "--data", records_uri, "--output", str(output), "--arch", "unet"]
    argv += ["--epochs", "2", "--steps-per-epoch", "6", "--batch-size", "4", "--base-filters"]
    argv += ["4", "--learning-rate", "0.003", "--no-augment", "--deterministic", "--log-every"]
    argv += ["3", "--checkpoint-every", "4"]
    assert cli.main(argv) == 0

    metadata = json.loads((output / "metadata.json").read_text())
    assert set(metadata) >= METADATA_KEYS
    assert metadata["arch"] == "unet" and metadata["version"] == "unet"
    assert metadata["options"]["base_filters"] == 4
    assert metadata["data_manifest"]["patches"] == {"train": 4, "val": 4}
    assert (metadata["strategy"], metadata["replicas"], metadata["global_batch_size"]) == (
        "default",
        1,
        4,
    )
    assert metadata["steps"] == 12 and metadata["optimizer_iterations"] == 12
    history = metadata["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[-1]["train_loss_last_step"] < history[0]["train_loss_first_step"] - 0.02
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    for entry in history:
        assert 0.0 <= entry["val_dice"] <= 1.0
        assert 0.0 <= entry["val_miou"] <= 1.0
        assert entry["train_dice"] == pytest.approx(1.0 - entry["train_loss"])
    assert metadata["val_miou"] == max(h["val_miou"] for h in history)  # the best epoch's
    assert metadata["code_version"] != "unknown"

    # Checkpoints (mid-epoch ones included) and TensorBoard scalars sit beside the model.
    assert tf.train.latest_checkpoint(str(output / "checkpoints")).endswith("ckpt-12")
    assert (output / "checkpoints" / "ckpt-8.index").exists()  # mid-epoch (keeps 3)
    assert list((output / "logs").glob("events.out.tfevents.*"))

    from models.architectures import load_model

    model = load_model(str(output / "model.keras"))
    probabilities = np.asarray(model(np.zeros((1, 64, 64, 3), np.float32)))
    assert probabilities.shape == (1, 64, 64, NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)


def test_resnet50_unet_end_to_end(records_uri: str, tmp_path: Path) -> None:
    config = tiny(records_uri, str(tmp_path / "resnet"), "resnet50_unet", steps_per_epoch=6)
    metadata = train(config)
    assert metadata["arch"] == "resnet50_unet"
    entry = metadata["history"][0]
    assert entry["encoder_trainable"] is True
    assert entry["train_loss_last_step"] < entry["train_loss_first_step"]
    assert (tmp_path / "resnet" / "model.keras").exists()
    assert json.loads((tmp_path / "resnet" / "metadata.json").read_text())["steps"] == 6


def test_model_and_metadata_go_to_gcs(records_uri: str, gcs_root: str, tmp_path: Path) -> None:
    output = f"{gcs_root}/models/unet/v7"
    # TF's own gs:// ignores the emulator: checkpoints and logs go to a local folder here.
    config = tiny(
        records_uri,
        output,
        "unet",
        steps_per_epoch=2,
        checkpoint_dir=str(tmp_path / "ckpt"),
        log_dir=str(tmp_path / "logs"),
    )
    metadata = train(config)
    assert storage.exists(f"{output}/model.keras")
    written = json.loads(storage.read_text(f"{output}/metadata.json"))
    assert written["version"] == "v7" and written["steps"] == metadata["steps"] == 2
    from models.architectures import load_model

    with storage.local_copy(f"{output}/model.keras") as path:
        assert load_model(path).name == "unet"
    assert tf.train.latest_checkpoint(str(tmp_path / "ckpt")).endswith("ckpt-2")


def test_non_finite_loss_stops_the_run(
    records_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "nan"
    argv = ["--data", records_uri, "--output", str(output), "--arch", "unet", "--base-filters"]
    argv += ["2", "--batch-size", "2", "--steps-per-epoch", "20", "--learning-rate", "1e30"]
    argv += ["--checkpoint-every", "50"]
    # A huge learning rate blows the weights up to inf on the first update: NaN at step 2.
    assert main(argv) == EXIT_NON_FINITE
    message = capsys.readouterr().err
    assert "non-finite loss nan at step 2 (epoch 1)" in message
    assert "Lower --learning-rate" in message
    assert not (output / "model.keras").exists()
    assert tf.train.latest_checkpoint(str(output / "checkpoints")) is None  # nothing NaN saved
    error = NonFiniteLossError(float("inf"), 7, 2, "/x/ckpt-5")
    assert "non-finite loss inf at step 7 (epoch 2)" in str(error) and "ckpt-5" in str(error)


def test_mixed_precision_step_runs(records_uri: str, tmp_path: Path) -> None:
    previous = keras.config.dtype_policy().name
    config = tiny(records_uri, str(tmp_path / "mp"), "unet", steps_per_epoch=1, batch_size=1)
    config.mixed_precision, config.base_filters, config.val_steps = True, 2, 1
    metadata = train(config)
    assert keras.config.dtype_policy().name == previous  # the global policy is put back
    assert np.isfinite(metadata["history"][0]["train_loss"])
    from models.architectures import load_model

    # Mixed precision is a training choice: the saved model computes in float32.
    model = load_model(str(tmp_path / "mp" / "model.keras"))
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}


def test_encoder_frozen_for_the_first_epochs_then_trained(
    records_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The freeze schedule, on a tiny stand-in for resnet50_unet (same nested encoder name)."""
    from models import architectures
    from models.train import loop as train_module

    built: list[keras.Model] = []

    def encoder_weights() -> list[np.ndarray]:
        return [w.numpy() for w in built[0].get_layer(architectures.ENCODER_NAME).weights]

    def tiny_encoder_model(name: str, **_: object) -> keras.Model:
        inner = keras.Input((None, None, 3))
        conv = keras.layers.Conv2D(4, 3, padding="same")(inner)
        encoder = keras.Model(inner, conv, name=architectures.ENCODER_NAME)
        image = keras.Input((None, None, 3))
        features = keras.layers.BatchNormalization()(encoder(image))
        outputs = keras.layers.Conv2D(NUM_CLASSES, 1, activation="softmax")(features)
        built.append(keras.Model(image, outputs, name=name))
        snapshots.append(encoder_weights())  # the initial weights
        return built[-1]

    snapshots: list[list[np.ndarray]] = []
    train_epoch = train_module.train_epoch

    def train_epoch_and_snapshot(*args, **kwargs):  # type: ignore[no-untyped-def]
        entry = train_epoch(*args, **kwargs)
        snapshots.append(encoder_weights())
        return entry

    monkeypatch.setattr(architectures, "build_model", tiny_encoder_model)
    monkeypatch.setattr(train_module, "train_epoch", train_epoch_and_snapshot)
    config = tiny(records_uri, str(tmp_path / "freeze"), "resnet50_unet", epochs=2)
    config.steps_per_epoch, config.freeze_encoder_epochs, config.learning_rate = 3, 1, 0.05
    metadata = train(config)

    assert [h["encoder_trainable"] for h in metadata["history"]] == [False, True]
    initial, after_first, after_second = snapshots
    for before, frozen in zip(initial, after_first, strict=True):
        np.testing.assert_array_equal(before, frozen)  # epoch 1: the encoder is untouched
    assert any(not np.array_equal(a, b) for a, b in zip(after_first, after_second, strict=True))
    # The saved model is left trainable, whatever the schedule ended with.
    from models.architectures import load_model

    reloaded = load_model(str(tmp_path / "freeze" / "model.keras"))
    assert reloaded.get_layer(architectures.ENCODER_NAME).trainable


# ---- a budget in minutes -----------------------------------------------------------------------


def test_a_budgeted_run_stops_within_its_budget_and_keeps_the_best_epoch(
    records_uri: str, tmp_path: Path
) -> None:
    import time

    minutes = 0.75
    config = tiny(
        records_uri,
        str(tmp_path / "budget"),
        "unet",
        steps_per_epoch=None,
        epochs=3,
        max_minutes=minutes,
        bn_recalibration_batches=2,
        augment=True,
    )
    started = time.monotonic()
    metadata = train(config)
    elapsed = time.monotonic() - started
    assert elapsed <= minutes * 60 * 1.15  # the final save is kept back; 15 % for noise
    budget = metadata["budget"]
    assert budget["total_steps"] == 3 * budget["steps_per_epoch"] >= 3
    assert budget["step_s"] > 0 and budget["used_s"] <= minutes * 60
    # the schedule is the plan's: warm-up and decay as fractions of the planned steps
    schedule = metadata["optimizer"]["schedule"]
    assert schedule["total_steps"] == budget["total_steps"]
    assert schedule["warmup_steps"] == round(config.warmup_fraction * budget["total_steps"])
    assert metadata["steps"] <= budget["total_steps"]
    scores = {h["epoch"]: h["val_miou"] for h in metadata["history"]}
    best_epoch = max(scores, key=lambda e: (scores[e], -e))
    assert metadata["best_epoch"] == best_epoch and metadata["val_miou"] == scores[best_epoch]


def test_the_budget_probe_changes_only_the_plan(
    records_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing the steps trains nothing that stays: a budgeted run (its plan fixed here, so
    the clock cannot decide it) equals an unbudgeted run of the same length, loss for loss."""
    from models.train import budget, loop

    def fixed_plan(max_minutes: float, probe: budget.Probe, *, epochs: int, spent_s: float):
        assert probe.step_s > 0 and probe.recalibration_s > 0 and probe.validation_s > 0
        plan = budget.plan_budget(600.0, probe, epochs=epochs, spent_s=spent_s)
        return budget.BudgetPlan.from_dict({**plan.to_dict(), "steps_per_epoch": 5})

    monkeypatch.setattr(loop, "plan_budget", fixed_plan)
    budgeted = train(
        tiny(
            records_uri,
            str(tmp_path / "a"),
            "unet",
            steps_per_epoch=None,
            epochs=2,
            max_minutes=600.0,
            bn_recalibration_batches=2,
        )
    )
    plain = train(
        tiny(
            records_uri,
            str(tmp_path / "b"),
            "unet",
            steps_per_epoch=5,
            epochs=2,
            bn_recalibration_batches=2,
        )
    )
    assert budgeted["budget"]["steps_per_epoch"] == 5 and not budgeted["budget"]["spent"]
    assert budgeted["optimizer"]["schedule"] == plain["optimizer"]["schedule"]
    for first, second in zip(budgeted["history"], plain["history"], strict=True):
        assert first["steps"] == second["steps"] == 5
        for key in ("train_loss_first_step", "train_loss", "val_miou", "val_dice"):
            assert first[key] == second[key], key


def test_budget_and_steps_per_epoch_are_one_choice(records_uri: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--max-minutes"):
        train(tiny(records_uri, str(tmp_path / "c"), "unet", max_minutes=1.0))
