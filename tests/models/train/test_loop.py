"""Training: synth → preprocess → train for both architectures, strategy choice, Dice steps,
non-finite stop, and model + metadata on gs:// (the emulator)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from flows import cli
from models.losses import DiceLoss, dice_from_sums, dice_sums
from models.steps import (
    DiceSpec,
    batchnorm_statistics,
    confusion_counts,
    global_batch_dice_loss,
)
from models.strategy import ClusterSpec, parse_tf_config, resolve_strategy_name
from models.train.cli import config_from_args, main
from models.train.config import ARCHS, TrainConfig
from models.train.loop import (
    EXIT_NON_FINITE,
    NonFiniteLossError,
    default_steps_per_epoch,
    epoch_position,
    train,
)
from pipelines.core import metrics
from pipelines.core.manifest import Manifest
from pipelines.core.palette import NUM_CLASSES, UNKNOWN
from pipelines.core.records import RecordFormat
from pipelines.io import storage

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
    manifest = json.loads(Path(out, "manifest.json").read_text())
    assert manifest["patches"] == {"train": 4, "val": 4}
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
    assert metadata["val_miou"] == history[-1]["val_miou"]
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


# ---- pure pieces ---------------------------------------------------------------------------


def test_strategy_selection_from_tf_config() -> None:
    assert parse_tf_config("") == ClusterSpec()
    two = json.dumps(
        {
            "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
            "task": {"type": "worker", "index": 1},
        }
    )
    spec = parse_tf_config(two)
    assert (spec.num_workers, spec.task_type, spec.task_index, spec.is_chief) == (
        2,
        "worker",
        1,
        False,
    )
    assert parse_tf_config(two.replace('"index": 1', '"index": 0')).is_chief
    with_chief = {
        "cluster": {"chief": ["h:0"], "worker": ["h:1", "h:2"], "evaluator": ["h:3"]},
        "task": {"type": "worker", "index": 0},
    }
    spec = parse_tf_config(json.dumps(with_chief))
    assert spec.num_workers == 3 and not spec.is_chief  # the chief task is the chief
    one = {"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 0}}

    assert resolve_strategy_name("auto", parse_tf_config(two), num_gpus=0) == "multi_worker"
    assert resolve_strategy_name("auto", parse_tf_config(json.dumps(one)), 0) == "default"
    assert resolve_strategy_name("auto", ClusterSpec(), num_gpus=4) == "mirrored"
    assert resolve_strategy_name("auto", ClusterSpec(), num_gpus=1) == "default"
    assert resolve_strategy_name("auto", parse_tf_config(two), num_gpus=8) == "multi_worker"
    assert resolve_strategy_name("tpu", ClusterSpec(), num_gpus=0) == "tpu"
    assert resolve_strategy_name("mirrored", ClusterSpec(), num_gpus=0) == "mirrored"
    with pytest.raises(ValueError, match="valid: auto, default, mirrored, multi_worker, tpu"):
        resolve_strategy_name("horovod", ClusterSpec(), 0)
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        parse_tf_config("{not json")


def test_step_dice_equals_the_shared_dice_loss() -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, NUM_CLASSES, (2, 9, 7))
    ids[0, :3] = UNKNOWN
    y_true = tf.one_hot(ids, NUM_CLASSES)
    y_pred = tf.nn.softmax(tf.constant(rng.normal(size=(2, 9, 7, NUM_CLASSES)), tf.float32))
    for ignore in (False, True):
        for smooth in (1.0, 10.0):
            spec = DiceSpec(smooth=smooth, ignore_unknown=ignore)
            expected = float(DiceLoss(smooth=smooth, ignore_unknown=ignore)(y_true, y_pred))
            assert float(global_batch_dice_loss(y_true, y_pred, spec)) == pytest.approx(
                expected, rel=1e-6
            )
            # The validation path (host-side sums) agrees too.
            intersection, total = (
                t.numpy().astype(np.float64) for t in dice_sums(y_true, y_pred, ignore)
            )
            assert 1.0 - float(dice_from_sums(intersection, total, smooth=smooth)) == pytest.approx(
                expected, rel=1e-5
            )


def test_confusion_counts_match_the_shared_metric() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, NUM_CLASSES, (3, 5, 6))
    pred = rng.integers(0, NUM_CLASSES, (3, 5, 6))
    counts = confusion_counts(tf.one_hot(truth, NUM_CLASSES), tf.one_hot(pred, NUM_CLASSES))
    np.testing.assert_array_equal(
        counts.numpy().reshape(NUM_CLASSES, NUM_CLASSES), metrics.confusion_matrix(truth, pred)
    )


def test_batchnorm_statistics_are_found_in_nested_models() -> None:
    from models.architectures import build_model

    model = build_model("unet", base_filters=2)
    names = {v.path.rsplit("/", 1)[-1] for v in batchnorm_statistics(model)}
    assert names == {"moving_mean", "moving_variance"}
    batchnorms = [
        layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(batchnorm_statistics(model)) == 2 * len(batchnorms)


def test_config_and_cli_options() -> None:
    assert set(ARCHS) == set(__import__("models.architectures").architectures.ARCHITECTURES)
    argv = ["--data", "d", "--output", "o", "--arch", "resnet50_unet", "--batch-size", "2"]
    argv += ["--strategy", "mirrored", "--mixed-precision", "--jit", "--encoder-weights"]
    argv += ["imagenet", "--freeze-encoder-epochs", "1", "--val-steps", "3", "--crop-size", "256"]
    config = config_from_args(argv)
    assert (config.batch_size, config.strategy, config.mixed_precision, config.jit) == (
        2,
        "mirrored",
        True,
        True,
    )
    assert (config.encoder_weights, config.freeze_encoder_epochs) == ("imagenet", 1)
    assert (config.val_steps, config.crop_size, config.steps_per_epoch) == (3, 256, None)
    config.validate()
    with pytest.raises(ValueError, match="unet has no encoder"):
        TrainConfig(data="d", output="o", arch="unet", freeze_encoder_epochs=1).validate()
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        TrainConfig(data="d", output="o", arch="vgg").validate()
    with pytest.raises(ValueError, match="cannot be combined"):
        TrainConfig(data="d", output="o", jit=True, deterministic=True).validate()
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        TrainConfig(data="d", output="o", batch_size=0).validate()

    def manifest(train: int, val: int) -> Manifest:
        return Manifest.build(
            patch_size=64,
            record_format=RecordFormat(),
            scene_ids={"train": ["a"], "val": ["b"]},
            patches={"train": train, "val": val},
        )

    assert default_steps_per_epoch(manifest(10, 2), 4) == 2
    assert default_steps_per_epoch(manifest(3, 2), 4) == 1
    # A manifest that does not say how many patches there are does not parse at all.
    with pytest.raises(ValueError, match=r"lacks .*patches"):
        Manifest.from_dict({})
    # Resume positions: a checkpoint at global step 13 with 5 steps per epoch in epoch 2 (0-based).
    assert epoch_position(13, 2, 5) == 3
    assert epoch_position(10, 2, 5) == 0
    assert epoch_position(99, 2, 5) == 5


def test_xla_compiled_step_trains() -> None:
    from models.steps import make_train_step

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(NUM_CLASSES, 3, padding="same"),
            keras.layers.Softmax(),
        ]
    )
    optimizer = keras.optimizers.Adam(0.05)
    optimizer.build(model.trainable_variables)
    strategy = tf.distribute.get_strategy()
    rng = np.random.default_rng(0)
    images = rng.random((2, 8, 8, 3)).astype(np.float32)
    masks = tf.one_hot((images[..., 0] * NUM_CLASSES).astype(np.int32), NUM_CLASSES)
    iterator = iter(tf.data.Dataset.from_tensors((images, masks)).repeat())
    step = make_train_step(strategy, model, optimizer, DiceSpec(), jit_compile=True)
    losses = [float(step(iterator)) for _ in range(10)]
    assert losses[-1] < losses[0]


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
    train_epoch = train_module._train_epoch

    def train_epoch_and_snapshot(*args, **kwargs):  # type: ignore[no-untyped-def]
        entry = train_epoch(*args, **kwargs)
        snapshots.append(encoder_weights())
        return entry

    monkeypatch.setattr(architectures, "build_model", tiny_encoder_model)
    monkeypatch.setattr(train_module, "_train_epoch", train_epoch_and_snapshot)
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
