"""The segmentation losses: soft multi-class Dice (the default), Dice + cross-entropy and
focal + Dice, and the Dice coefficient metric.

Definition (``y_true`` one-hot ``(B, H, W, C)``, ``y_pred`` softmax probabilities, same shape)::

    I_c    = sum over batch and pixels of  y_true[..., c] * y_pred[..., c]
    S_c    = sum over batch and pixels of  y_true[..., c] + y_pred[..., c]
    Dice_c = (2 I_c + smooth) / (S_c + smooth)
    Dice   = sum_c w_c Dice_c / sum_c w_c            (w_c = 1 unless class_weights is given)
    loss   = 1 - Dice

With ``dice_classes="present"`` the sums over c run over the classes present in the batch's
truth (``T_c = sum y_true[..., c] > 0``); a batch with none present has Dice 1 (loss 0).

Per class, then averaged: a class's Dice does not depend on how many pixels it covers, so rare
classes (water, barren) weigh as much as agriculture, which covers most of DeepGlobe; that is
why Dice suits this imbalanced data better than pixel-wise cross-entropy. Sums run over the
whole batch (not per image) so a class absent from one patch is not a 0/0 case in that patch.

``smooth`` (default 1.0, in pixel units): when a class is absent from the truth and nearly
absent from the prediction, ``I_c`` and ``S_c`` are both ~0, and without it Dice_c would be 0/0
(NaN loss, exploding gradients). With it, such a class scores ~1 (no penalty for correctly
predicting nothing) and its gradient stays bounded. Against the ~375k pixels of one 612x612
patch, one pixel of smoothing changes a present class's Dice by < 1e-5.

``ignore_unknown``: drop the ``unknown`` channel and the pixels whose truth is ``unknown`` (the
DeepGlobe metric does not score them), so the model is neither rewarded nor punished there.
Probability the model puts on ``unknown`` at a known pixel is lost from the truth class's
intersection, so predicting ``unknown`` still costs, as in the challenge metric.

Under ``tf.distribute``, a replica's ``DiceLoss`` is the Dice of its local batch only; to train
on the global batch's Dice, all-reduce ``dice_sums`` and apply ``dice_from_sums`` (as the
training step does).

**Compound losses** (``--loss dice+ce`` / ``focal+dice``): ``loss = (1 - Dice) + CE`` where CE
is the pixel-wise cross-entropy, class-weighted the usual way (PyTorch's ``weight=``)::

    CE = sum_i w_{y_i} * ce_i / sum_i w_{y_i}      ce_i = -log p_i[y_i]
    focal: ce_i = -(1 - p_i[y_i]) ** gamma * log p_i[y_i]      (Lin et al. 2017)

Dice trains the per-class overlap directly but its gradient is weak for confident mistakes and
noisy at the start; the pixel term gives every pixel a well-conditioned gradient (the usual
DeepGlobe/remote-sensing recipe). Focal down-weights pixels already classified well, which
keeps the abundant agriculture class from dominating. Like Dice, CE is a ratio of sums
(:func:`cross_entropy_sums`), so a distributed step all-reduces two more floats.

**Class weights** (``--class-weights auto``): :func:`median_frequency_weights` (Eigen & Fergus
2015) from the manifest's per-class pixel counts: ``w_c = median(f) / f_c`` over the classes
present, 0 for absent ones, so a class 10x rarer than the median weighs 10x more.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from models.loss_options import (
    LOSSES,
    check_dice_classes,
    check_loss,
    median_frequency_weights,
    validated_weights,
)
from models.registry import KERAS_PACKAGE
from pipelines.core.palette import ACTIVE_CLASSES, NUM_CLASSES, UNKNOWN

__all__ = ["LOSSES", "median_frequency_weights"]  # re-exported: the loss options' one home
EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1] before the log


def cross_entropy_sums(
    y_true,
    y_pred,
    *,
    class_weights: Sequence[float] | None = None,
    ignore_unknown: bool = False,
    focal_gamma: float = 0.0,
):
    """Sums over batch and pixels of the (class-weighted, optionally focal) cross-entropy and of
    the pixels' weights: ``(sum_i w_{y_i} ce_i, sum_i w_{y_i})``, two float32 scalars.

    Their ratio is the weighted mean CE; kept apart so a distributed step can all-reduce them.
    ``ignore_unknown`` gives unknown-truth pixels weight 0.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.clip(ops.cast(y_pred, "float32"), EPSILON, 1.0)
    p_true = ops.sum(y_true * y_pred, axis=-1)
    per_pixel = -ops.log(p_true)
    if focal_gamma:
        per_pixel = per_pixel * ops.power(1.0 - p_true, focal_gamma)
    weights = list(validated_weights(class_weights) or (1.0,) * NUM_CLASSES)
    if ignore_unknown:
        weights[UNKNOWN] = 0.0
    pixel_weight = ops.sum(y_true * ops.convert_to_tensor(weights, "float32"), axis=-1)
    return ops.sum(per_pixel * pixel_weight), ops.sum(pixel_weight)


def cross_entropy_from_sums(weighted_sum, weight_total):
    """The weighted mean cross-entropy (0 when no pixel has weight)."""
    return weighted_sum / ops.maximum(weight_total, EPSILON)


def dice_sums(y_true, y_pred, ignore_unknown: bool = False):
    """Per-class sums over batch and pixels: intersection ``I_c`` and ``S_c`` (truth + pred).

    Each ``(C,)`` float32, C = 7, or the 6 active classes with ``ignore_unknown`` (unknown-truth
    pixels dropped first). Exposed on its own because Dice is a ratio of sums: a distributed
    step all-reduces these sums and calls ``dice_from_sums`` to get the global batch's Dice.
    """
    y_true, y_pred = _scored(y_true, y_pred, ignore_unknown=ignore_unknown)
    axes = _pixel_axes(y_true)
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return intersection, total


def truth_sums(y_true, ignore_unknown: bool = False):
    """Per-class truth pixels ``T_c`` over batch and pixels, ``(C,)`` float32 (as ``dice_sums``:
    6 classes with ``ignore_unknown``); ``dice_classes="present"`` keeps the classes with
    ``T_c > 0``. A distributed step all-reduces them like the Dice sums."""
    (y_true,) = _scored(y_true, ignore_unknown=ignore_unknown)
    return ops.sum(y_true, axis=_pixel_axes(y_true))


def _scored(y_true, *others, ignore_unknown: bool):
    """``y_true`` and ``others`` as float32; with ``ignore_unknown``, unknown-truth pixels zeroed
    in all of them and the unknown channel dropped (the 6 active classes)."""
    tensors = [ops.cast(t, "float32") for t in (y_true, *others)]
    if ignore_unknown:
        known = 1.0 - tensors[0][..., UNKNOWN : UNKNOWN + 1]
        tensors = [ops.take(t * known, list(ACTIVE_CLASSES), axis=-1) for t in tensors]
    return tensors


def _pixel_axes(tensor) -> tuple[int, ...]:
    """Every axis but the class axis (the last): batch and pixels."""
    return tuple(range(len(tensor.shape) - 1))


def dice_from_sums(
    intersection,
    total,
    *,
    smooth: float = 1.0,
    class_weights: Sequence[float] | None = None,
    ignore_unknown: bool = False,
    truth=None,
):
    """(Weighted) mean over classes of ``(2 I_c + smooth) / (S_c + smooth)``, a scalar.

    ``class_weights`` are in palette order (7); with ``ignore_unknown`` the unknown weight is
    dropped to match the 6 sums. ``truth`` (``truth_sums``, for ``dice_classes="present"``)
    restricts the mean to the classes with truth pixels; with none, the Dice is 1.
    """
    per_class = (2.0 * intersection + smooth) / (total + smooth)
    weights = validated_weights(class_weights)
    if weights is None and truth is None:
        return ops.mean(per_class)
    if weights is None:
        weights = (1.0,) * NUM_CLASSES
    if ignore_unknown:
        weights = tuple(weights[c] for c in ACTIVE_CLASSES)
    weights_tensor = ops.convert_to_tensor(weights, "float32")
    if truth is not None:
        weights_tensor = weights_tensor * ops.cast(ops.convert_to_tensor(truth) > 0, "float32")
    weight_total = ops.sum(weights_tensor)
    weighted = ops.sum(per_class * weights_tensor) / ops.maximum(weight_total, EPSILON)
    return ops.where(weight_total > 0, weighted, ops.ones_like(weighted))


def soft_dice_per_class(y_true, y_pred, *, smooth: float = 1.0, ignore_unknown: bool = False):
    """Dice_c for each class (``(C,)`` float32; ``(C - 1,)`` without unknown if ignored)."""
    intersection, total = dice_sums(y_true, y_pred, ignore_unknown)
    return (2.0 * intersection + smooth) / (total + smooth)


def soft_dice(
    y_true,
    y_pred,
    *,
    smooth: float = 1.0,
    class_weights: Sequence[float] | None = None,
    ignore_unknown: bool = False,
    dice_classes: str = "all",
):
    """The (weighted) mean over classes of ``soft_dice_per_class``, a scalar in [0, 1]."""
    check_dice_classes(dice_classes)
    intersection, total = dice_sums(y_true, y_pred, ignore_unknown)
    return dice_from_sums(
        intersection,
        total,
        smooth=smooth,
        class_weights=class_weights,
        ignore_unknown=ignore_unknown,
        truth=truth_sums(y_true, ignore_unknown) if dice_classes == "present" else None,
    )


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class DiceLoss(keras.losses.Loss):
    """``1 - soft_dice``: soft multi-class Dice loss (see the module docstring).

    Returns one scalar for the batch (Dice is not a sum of per-pixel terms, so there is no
    per-sample vector to reduce); ``sample_weight`` is not supported.
    """

    def __init__(
        self,
        smooth: float = 1.0,
        class_weights: Sequence[float] | None = None,
        ignore_unknown: bool = False,
        dice_classes: str = "all",
        name: str = "dice_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if smooth <= 0:
            raise ValueError(f"smooth must be > 0 (it keeps absent classes finite), got {smooth}")
        self.smooth = float(smooth)
        self.class_weights = validated_weights(class_weights)
        self.ignore_unknown = bool(ignore_unknown)
        self.dice_classes = check_dice_classes(dice_classes)

    def call(self, y_true, y_pred):
        return 1.0 - soft_dice(
            y_true,
            y_pred,
            smooth=self.smooth,
            class_weights=self.class_weights,
            ignore_unknown=self.ignore_unknown,
            dice_classes=self.dice_classes,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "smooth": self.smooth,
            "class_weights": None if self.class_weights is None else list(self.class_weights),
            "ignore_unknown": self.ignore_unknown,
            "dice_classes": self.dice_classes,
        }


def segmentation_loss(
    y_true,
    y_pred,
    *,
    loss: str = "dice",
    smooth: float = 1.0,
    class_weights: Sequence[float] | None = None,
    ignore_unknown: bool = False,
    focal_gamma: float = 2.0,
    dice_classes: str = "all",
):
    """The loss ``--loss`` names, on one batch: ``dice``, ``dice+ce`` or ``focal+dice``."""
    check_loss(loss)
    value = 1.0 - soft_dice(
        y_true,
        y_pred,
        smooth=smooth,
        class_weights=class_weights,
        ignore_unknown=ignore_unknown,
        dice_classes=dice_classes,
    )
    if loss == "dice":
        return value
    gamma = focal_gamma if loss == "focal+dice" else 0.0
    ce_sum, weight_total = cross_entropy_sums(
        y_true,
        y_pred,
        class_weights=class_weights,
        ignore_unknown=ignore_unknown,
        focal_gamma=gamma,
    )
    return value + cross_entropy_from_sums(ce_sum, weight_total)


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
def dice_coefficient(y_true, y_pred):
    """Soft Dice over all 7 classes with smooth=1, usable as a Keras metric (``1 - DiceLoss()``).

    A plain function so ``compile(metrics=[dice_coefficient])`` and a custom loop's
    ``keras.metrics.Mean`` can both use it; for the challenge's hard Dice per class, use
    ``pipelines.core.metrics.dice_from_confusion``.
    """
    return soft_dice(y_true, y_pred)
