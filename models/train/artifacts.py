"""What a training run publishes: ``model.keras`` and ``metadata.json`` in ``OUTPUT``.

``metadata.json`` is the record downstream stages and people read (the flows compare and promote
models by it, inference keys predictions by its version): the options, the strategy, the data
manifest, the per-epoch history, the final validation scores, the input convention and the code
and library versions that produced the model. It is assembled here, apart from the loop, so its
contents are one function (:func:`build_metadata`) tested on its own.

The saved model is always float32 (:func:`float32_model`): mixed precision is a training choice,
not something inference should inherit. Both files go through ``pipelines.io.storage`` (local or
``gs://``, emulator included); only the chief publishes, but every worker saves, because saving
may take part in collectives (TensorFlow's multi-worker advice).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from models.normalization import describe_normalization
from models.train.config import TrainConfig
from pipelines.core.gsd import MODEL_GSD_KEY
from pipelines.core.manifest import Manifest
from pipelines.core.naming import METADATA_FILE, MODEL_FILE, basename
from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES
from pipelines.io import storage
from pipelines.io.code_version import code_version

if TYPE_CHECKING:
    import keras

LOG = logging.getLogger("landcover.train")
METADATA_VERSION = 1


def build_metadata(
    config: TrainConfig,
    *,
    strategy: str,
    replicas: int,
    workers: int,
    global_batch: int,
    steps_per_epoch: int,
    manifest: Manifest,
    history: list[dict[str, Any]],
    resumed_from_step: list[int],
    steps: int,
    best: dict[str, Any] | None = None,
    early_stopped: bool = False,
    class_weights: tuple[float, ...] | None = None,
    data_version: str | None = None,
    data_fingerprint: str | None = None,
    optimizer_iterations: int,
    wall_time_s: float,
    schedule: dict[str, Any] | None = None,
    budget: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The contents of ``metadata.json`` for a run that ended at global step ``steps``.

    The scores at the top level (``val_miou``, ``val_dice``, ``val_per_class_iou``) are those of
    the published model: the ``best_epoch`` when one was chosen, else the last epoch.
    """
    import keras
    import tensorflow as tf

    chosen_epoch = best["epoch"] if best else (history[-1]["epoch"] if history else None)
    chosen = next((h for h in history if h["epoch"] == chosen_epoch), {})
    if best and chosen.get("val_miou") != best.get("val_miou"):
        chosen = {**chosen, "val_miou": best.get("val_miou")}  # the score its weights earned
    return {
        "metadata_version": METADATA_VERSION,
        "version": config.version or basename(config.output),
        "arch": config.arch,
        "model_file": MODEL_FILE,
        "options": asdict(config),
        "strategy": strategy,
        "replicas": replicas,
        "workers": workers,
        "batch_size_per_replica": config.batch_size,
        "global_batch_size": global_batch,
        "steps_per_epoch": steps_per_epoch,
        "steps": steps,
        "patches_seen": steps * global_batch,
        "data": config.data,
        "data_manifest": manifest.to_dict(),
        "data_version": data_version,
        "data_fingerprint": data_fingerprint,
        "input": {
            "normalization": describe_normalization(),
            "patch_size": manifest.patch_size,
            "train_size": config.crop_size or manifest.patch_size,
            "num_classes": NUM_CLASSES,
            "class_names": list(CLASS_NAMES),
            # The GSD the model was trained at (its dataset's): predict resamples to it.
            MODEL_GSD_KEY: None if manifest.gsd is None else manifest.gsd.metres,
        },
        "loss": {
            "name": config.loss,
            "smooth": config.dice_smooth,
            "ignore_unknown": config.ignore_unknown,
            "dice_classes": config.dice_classes,
            "focal_gamma": config.focal_gamma if config.loss == "focal+dice" else None,
            "class_weights": None if class_weights is None else list(class_weights),
            "class_weights_option": config.class_weights,
            "distributed": "loss of the global batch: per-class sums all-reduced (models.steps)",
        },
        "optimizer": {
            "name": "AdamW",
            "learning_rate": config.learning_rate,
            "lr_schedule": config.lr_schedule,
            "warmup_fraction": config.warmup_fraction,
            "decay_fraction": config.decay_fraction,
            "min_lr_fraction": config.min_lr_fraction,
            "weight_decay": config.weight_decay,
            "schedule": schedule,  # the plan in steps (models.train.schedule.SchedulePlan)
        },
        "batchnorm_recalibration_batches": config.bn_recalibration_batches,
        "budget": budget,  # --max-minutes: the plan, and whether the budget ended the run
        "history": history,
        "selection": "best val mIoU over epochs (validation on whole patches)",
        "best_epoch": chosen_epoch,
        "epochs_run": len(history),
        "early_stopped": early_stopped,
        "val_miou": chosen.get("val_miou"),
        "val_dice": chosen.get("val_dice"),
        "val_per_class_iou": chosen.get("val_per_class_iou"),
        "resumed_from_step": resumed_from_step,
        "code_version": code_version(),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_time_s": round(wall_time_s, 3),
        "optimizer_iterations": optimizer_iterations,
    }


def float32_model(model: keras.Model, config: TrainConfig) -> keras.Model:
    """The trained weights in a float32 copy of the model, to save.

    A model built under ``mixed_float16`` saves that policy in every layer's config, so whoever
    loads ``model.keras`` (inference, on CPUs without fast float16) would compute in float16.
    The policy is a training choice: the variables are float32 either way, so they copy over.
    """
    from models import architectures

    exported = architectures.build_model(
        config.arch, base_filters=config.base_filters, encoder_weights="none"
    )
    exported.set_weights(model.get_weights())
    return exported


def save_outputs(
    output: str, model: keras.Model, metadata: dict[str, Any], *, is_chief: bool
) -> None:
    """Every worker saves (saving may involve collectives); only the chief publishes to OUTPUT."""
    with tempfile.TemporaryDirectory(prefix="landcover-model-") as tmp:
        local = os.path.join(tmp, MODEL_FILE)
        model.save(local)
        if is_chief:
            storage.upload_file(local, storage.join(output, MODEL_FILE))
    if is_chief:
        storage.write_text(storage.join(output, METADATA_FILE), json.dumps(metadata, indent=2))
        LOG.info("wrote %s and %s to %s", MODEL_FILE, METADATA_FILE, output)
