"""One epoch of a training run: the run's state, an epoch's input, its steps, its validation.

``models.train.loop`` drives the epochs (strategy, model, optimizer, checkpoints, best-epoch
selection); this module is what happens inside one: :func:`train_epoch` runs the steps after
the ones a resumed run already did, :func:`validate` scores whole val patches (Dice and the
DeepGlobe mIoU of ``pipelines.core.metrics``), :func:`log_epoch` writes the epoch's line and
TensorBoard scalars. :class:`TrainRun` is the state both share and that a checkpoint records.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from models.input import InputConfig, make_input, release_in_background
from models.strategy import parse_tf_config
from models.train.budget import BudgetPlan
from models.train.config import TrainConfig, config_fingerprint_parts
from models.train.data_check import DataCheck
from pipelines.core.manifest import Manifest
from pipelines.core.palette import ACTIVE_CLASSES, CLASS_NAMES, NUM_CLASSES
from pipelines.core.provenance import fingerprint
from pipelines.io import records

if TYPE_CHECKING:
    import tensorflow as tf

LOG = logging.getLogger("landcover.train")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: training stopped (exit status 3 on the command line)."""

    def __init__(self, loss: float, step: int, epoch: int, checkpoint: str | None) -> None:
        where = f"the last good checkpoint is {checkpoint}" if checkpoint else "no checkpoint yet"
        super().__init__(
            f"non-finite loss {loss} at step {step} (epoch {epoch}): training stopped; {where}. "
            "Lower --learning-rate, or check the input data; with --mixed-precision try "
            "without it."
        )
        self.loss = loss
        self.step = step
        self.epoch = epoch


@dataclass
class TrainRun:
    """Where one run stands: its placement (strategy, replicas, batch) and its progress."""

    config: TrainConfig
    strategy: Any
    strategy_name: str
    is_chief: bool
    replicas: int
    global_batch: int
    steps_per_epoch: int
    manifest: Manifest
    data: DataCheck
    class_weights: tuple[float, ...] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from_step: list[int] = field(default_factory=list)
    last_checkpoint: str | None = None
    best: dict[str, Any] | None = None  # {"epoch", "val_miou", "weights"} of the best epoch
    early_stopped: bool = False
    budget: BudgetPlan | None = None  # --max-minutes: the steps that fit, planned once
    budget_spent: bool = False  # the budget ended the run (no more epochs, also on resume)
    budget_clock: float = field(default_factory=time.monotonic)  # when the budget began
    recent_step_s: float | None = None  # moving average of the last steps' seconds
    recent_epoch_end_s: float | None = None  # the last recalibration + validation + checkpoint

    def budget_used_s(self) -> float:
        """Seconds of the budget spent so far, over every invocation of this run."""
        return time.monotonic() - self.budget_clock

    def out_of_budget(self) -> bool:
        """Whether one more step would overrun what ``--max-minutes`` keeps for the end."""
        return self.budget is not None and self.budget.should_stop(
            self.budget_clock, step_s=self.recent_step_s, epoch_overhead_s=self.recent_epoch_end_s
        )

    def observe_step(self, seconds: float) -> None:
        """Fold one step's wall time into :attr:`recent_step_s` (weight 0.2: a few steps)."""
        previous = self.recent_step_s
        self.recent_step_s = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    @property
    def config_parts(self) -> dict[str, Any]:
        return config_fingerprint_parts(self.config)

    def state(self) -> dict[str, Any]:
        """``train_state.json``: what a resume needs besides the checkpoint, and its identity."""
        return {
            "history": self.history,
            "resumed_from_step": self.resumed_from_step,
            "best": self.best,
            "early_stopped": self.early_stopped,
            "budget": None if self.budget is None else self.budget.to_dict(),
            "budget_spent": self.budget_spent,
            "budget_used_s": round(self.budget_used_s(), 3),
            "data_fingerprint": self.data.fingerprint,
            "data": self.data.fingerprint_parts(),
            "config_fingerprint": fingerprint(self.config_parts),
            "config": self.config_parts,
        }


def val_metrics(
    intersection: np.ndarray, total: np.ndarray, cm: np.ndarray, smooth: float
) -> dict[str, Any]:
    """Epoch validation metrics from summed Dice terms and the confusion matrix."""
    from models.losses import dice_from_sums
    from pipelines.core import metrics

    dice = float(dice_from_sums(intersection, total, smooth=smooth))  # unweighted: comparable
    iou = metrics.iou_from_confusion(cm)
    hard_dice = metrics.dice_from_confusion(cm)

    def clean(value: float) -> float | None:
        return None if math.isnan(value) else float(value)

    return {
        "val_loss": 1.0 - dice,
        "val_dice": dice,
        "val_miou": clean(metrics.miou_from_confusion(cm)),
        "val_pixel_accuracy": clean(metrics.pixel_accuracy(cm)),
        "val_per_class_iou": {CLASS_NAMES[c]: clean(iou[c]) for c in ACTIVE_CLASSES},
        "val_per_class_dice": {CLASS_NAMES[c]: clean(hard_dice[c]) for c in ACTIVE_CLASSES},
        "val_confusion": np.asarray(cm, np.int64).tolist(),  # truth rows × predicted columns
    }


def epoch_input(run: TrainRun, split: str, epoch: int) -> tf.data.Dataset:
    """The (global-batch) dataset of one epoch; its seed depends on the epoch."""
    config = run.config
    training = split == "train"
    cluster = parse_tf_config()
    input_config = InputConfig(
        batch_size=run.global_batch,
        training=training,
        augment=config.augment and training,
        color_jitter=config.color_jitter if training else 0.0,
        crop_size=config.crop_size if training else None,  # validation: whole patches
        shuffle_buffer=config.shuffle_buffer,
        repeat=training,
        deterministic=config.deterministic,
        seed=config.seed * 1000 + epoch,
    )
    return make_input(run.data.folder, split, input_config, num_workers=cluster.num_workers)


def validate(run: TrainRun, eval_step: Any) -> dict[str, Any]:
    config = run.config
    if not records.split_files(run.data.folder, "val"):
        LOG.warning("no val shards under %s: skipping validation", run.data.folder)
        return {}
    dataset = epoch_input(run, "val", 0)
    if run.strategy_name == "tpu":  # TPUs need static shapes: drop the last partial batch
        dataset = dataset.unbatch().batch(run.global_batch, drop_remainder=True)
    if config.val_steps is not None:
        dataset = dataset.take(config.val_steps)
    intersection = total = None
    counts = np.zeros(NUM_CLASSES * NUM_CLASSES, np.int64)
    for batch in run.strategy.experimental_distribute_dataset(dataset):
        batch_i, batch_s, batch_cm = (np.asarray(v, np.float64) for v in eval_step(batch))
        intersection = batch_i if intersection is None else intersection + batch_i
        total = batch_s if total is None else total + batch_s
        counts += np.rint(batch_cm).astype(np.int64)
    if intersection is None or total is None:
        return {}
    cm = counts.reshape(NUM_CLASSES, NUM_CLASSES)
    return val_metrics(intersection, total, cm, config.dice_smooth)


def train_epoch(
    run: TrainRun,
    epoch: int,
    done: int,
    train_step: Any,
    step_var: Any,
    save_checkpoint: Callable[[], None],
) -> dict[str, Any]:
    """Run the steps of ``epoch`` after the ``done`` ones; returns its history entry (train part).

    Stops with :class:`NonFiniteLossError` on the first non-finite loss, before that step can be
    checkpointed.
    """
    import tensorflow as tf

    config = run.config
    dataset = epoch_input(run, "train", epoch)
    if done:
        LOG.info("epoch %d: skipping the %d batches already trained on", epoch + 1, done)
        dataset = dataset.skip(done)
    iterator = iter(run.strategy.experimental_distribute_dataset(dataset))
    losses: list[float] = []
    window_start, window_steps = time.monotonic(), 0
    epoch_start = window_start
    for index in range(done, run.steps_per_epoch):
        if run.out_of_budget():
            run.budget_spent = True
            LOG.info(
                "budget of %s min spent: epoch %d ends after %d of %d steps",
                config.max_minutes,
                epoch + 1,
                index,
                run.steps_per_epoch,
            )
            break
        tick = time.monotonic()
        loss = float(train_step(iterator))
        if index > done:  # the first step of an epoch also pays for tracing and the input
            run.observe_step(time.monotonic() - tick)
        step_var.assign_add(1)
        step = int(step_var.numpy())
        if not math.isfinite(loss):
            raise NonFiniteLossError(loss, step, epoch + 1, run.last_checkpoint)
        losses.append(loss)
        if index == done and run.steps_per_epoch - done > 1:
            # The first step of an epoch pays for tracing and the input's warm-up: not counted.
            window_start = time.monotonic()
        else:
            window_steps += 1
        if (index + 1 - done) % config.log_every == 0 or index + 1 == run.steps_per_epoch:
            elapsed = time.monotonic() - window_start
            rate = window_steps * run.global_batch / elapsed if window_steps else math.nan
            LOG.info(
                "epoch %d/%d step %d/%d (global %d) loss %.4f%s %.1f patches/s",
                epoch + 1,
                config.epochs,
                index + 1,
                run.steps_per_epoch,
                step,
                loss,
                f" (dice {1.0 - loss:.4f})" if config.loss == "dice" else f" ({config.loss})",
                rate,
            )
            tf.summary.scalar("train/loss", loss, step=step)
            if config.loss == "dice":  # 1 − loss is a Dice only when the loss is Dice alone
                tf.summary.scalar("train/dice", 1.0 - loss, step=step)
            if window_steps:
                tf.summary.scalar("train/patches_per_s", rate, step=step)
            window_start, window_steps = time.monotonic(), 0
        if step % config.checkpoint_every == 0 and index + 1 < run.steps_per_epoch:
            save_checkpoint()
    seconds = time.monotonic() - epoch_start
    finished = [iterator]
    del iterator
    release_in_background(finished)  # its destruction may block for seconds
    trained = len(losses)
    train_loss = float(np.mean(losses)) if losses else math.nan
    return {
        "epoch": epoch + 1,
        "steps": trained,
        "resumed_at_step_of_epoch": done or None,
        "train_loss": train_loss,
        "train_dice": 1.0 - train_loss if config.loss == "dice" else None,
        "train_loss_first_step": losses[0] if losses else None,
        "train_loss_last_step": losses[-1] if losses else None,
        "train_patches_per_s": trained * run.global_batch / max(seconds, 1e-9),
    }


def log_epoch(entry: dict[str, Any], step: int) -> None:
    import tensorflow as tf

    for key in ("train_loss", "train_dice", "val_loss", "val_dice", "val_miou"):
        value = entry.get(key)
        if value is not None and math.isfinite(value):
            tf.summary.scalar(f"epoch/{key}", value, step=step)

    def show(key: str) -> str:
        value = entry.get(key)
        return "n/a" if value is None else f"{value:.4f}"

    LOG.info(
        "epoch %d done: train loss %s%s | val dice %s mIoU %s",
        entry["epoch"],
        show("train_loss"),
        "" if entry.get("train_dice") is None else f" dice {show('train_dice')}",
        show("val_dice"),
        show("val_miou"),
    )
