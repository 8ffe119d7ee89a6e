"""Soft multi-class Dice loss and the Dice coefficient metric.

Definition (``y_true`` one-hot ``(B, H, W, C)``, ``y_pred`` softmax probabilities, same shape)::

    I_c    = sum over batch and pixels of  y_true[..., c] * y_pred[..., c]
    S_c    = sum over batch and pixels of  y_true[..., c] + y_pred[..., c]
    Dice_c = (2 I_c + smooth) / (S_c + smooth)
    Dice   = sum_c w_c Dice_c / sum_c w_c            (w_c = 1 unless class_weights is given)
    loss   = 1 - Dice

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
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from models.registry import KERAS_PACKAGE
from pipelines.core.palette import ACTIVE_CLASSES, NUM_CLASSES, UNKNOWN


def _validated_weights(class_weights: Sequence[float] | None) -> tuple[float, ...] | None:
    if class_weights is None:
        return None
    weights = tuple(float(w) for w in class_weights)
    if len(weights) != NUM_CLASSES:
        raise ValueError(
            f"class_weights needs one weight per class in palette order ({NUM_CLASSES}), "
            f"got {len(weights)}"
        )
    if min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"class_weights must be >= 0 and not all 0, got {weights}")
    return weights


def dice_sums(y_true, y_pred, ignore_unknown: bool = False):
    """Per-class sums over batch and pixels: intersection ``I_c`` and ``S_c`` (truth + pred).

    Each ``(C,)`` float32, C = 7, or the 6 active classes with ``ignore_unknown`` (unknown-truth
    pixels dropped first). Exposed on its own because Dice is a ratio of sums: a distributed
    step all-reduces these sums and calls ``dice_from_sums`` to get the global batch's Dice.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    if ignore_unknown:
        known = 1.0 - y_true[..., UNKNOWN : UNKNOWN + 1]
        y_true = ops.take(y_true * known, list(ACTIVE_CLASSES), axis=-1)
        y_pred = ops.take(y_pred * known, list(ACTIVE_CLASSES), axis=-1)
    axes = tuple(range(len(y_true.shape) - 1))  # everything but the class axis
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return intersection, total


def dice_from_sums(
    intersection,
    total,
    *,
    smooth: float = 1.0,
    class_weights: Sequence[float] | None = None,
    ignore_unknown: bool = False,
):
    """(Weighted) mean over classes of ``(2 I_c + smooth) / (S_c + smooth)``, a scalar.

    ``class_weights`` are in palette order (7); with ``ignore_unknown`` the unknown weight is
    dropped to match the 6 sums.
    """
    per_class = (2.0 * intersection + smooth) / (total + smooth)
    weights = _validated_weights(class_weights)
    if weights is None:
        return ops.mean(per_class)
    if ignore_unknown:
        weights = tuple(weights[c] for c in ACTIVE_CLASSES)
    weights_tensor = ops.convert_to_tensor(weights, "float32")
    return ops.sum(per_class * weights_tensor) / ops.sum(weights_tensor)


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
):
    """The (weighted) mean over classes of ``soft_dice_per_class``, a scalar in [0, 1]."""
    intersection, total = dice_sums(y_true, y_pred, ignore_unknown)
    return dice_from_sums(
        intersection,
        total,
        smooth=smooth,
        class_weights=class_weights,
        ignore_unknown=ignore_unknown,
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
        name: str = "dice_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if smooth <= 0:
            raise ValueError(f"smooth must be > 0 (it keeps absent classes finite), got {smooth}")
        self.smooth = float(smooth)
        self.class_weights = _validated_weights(class_weights)
        self.ignore_unknown = bool(ignore_unknown)

    def call(self, y_true, y_pred):
        return 1.0 - soft_dice(
            y_true,
            y_pred,
            smooth=self.smooth,
            class_weights=self.class_weights,
            ignore_unknown=self.ignore_unknown,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "smooth": self.smooth,
            "class_weights": None if self.class_weights is None else list(self.class_weights),
            "ignore_unknown": self.ignore_unknown,
        }


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
def dice_coefficient(y_true, y_pred):
    """Soft Dice over all 7 classes with smooth=1, usable as a Keras metric (``1 - DiceLoss()``).

    A plain function so ``compile(metrics=[dice_coefficient])`` and a custom loop's
    ``keras.metrics.Mean`` can both use it; for the challenge's hard Dice per class, use
    ``pipelines.core.metrics.dice_from_confusion``.
    """
    return soft_dice(y_true, y_pred)
