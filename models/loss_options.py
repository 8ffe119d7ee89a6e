"""The loss options a run names (``--loss``, ``--class-weights``), checked without Keras.

``models.train.config`` validates a ``TrainConfig`` with these before TensorFlow loads;
``models.losses`` computes with them. Median-frequency weights (Eigen & Fergus 2015):
``w_c = median(f) / f_c`` over the classes present in the training pixels (``f_c`` the class's
pixel fraction), 0 for absent classes, so a class 10x rarer than the median weighs 10x more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES, UNKNOWN

LOSSES: tuple[str, ...] = ("dice", "dice+ce", "focal+dice")
# ``--dice-classes``: which classes a batch's Dice averages over. ``all``: every class, so a
# class absent from the batch's truth scores ~1 only when the model predicts almost none of it;
# ``present``: the classes present in the batch's truth (segmentation_models_pytorch's DiceLoss
# does the same), so a rare class is not pushed towards zero in every batch that lacks it.
DICE_CLASSES: tuple[str, ...] = ("all", "present")


def check_dice_classes(dice_classes: str) -> str:
    if dice_classes not in DICE_CLASSES:
        raise ValueError(f"unknown dice_classes {dice_classes!r}; valid: {', '.join(DICE_CLASSES)}")
    return dice_classes


def check_loss(loss: str) -> str:
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
    return loss


def validated_weights(class_weights: Sequence[float] | None) -> tuple[float, ...] | None:
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


def median_frequency_weights(class_pixels: Mapping[str, int] | Sequence[int]) -> tuple[float, ...]:
    """Median-frequency class weights in palette order from per-class pixel counts.

    ``class_pixels`` is the manifest's ``{name: count}`` (or counts in palette order). Classes
    with no pixels get weight 0 (nothing to learn from them); ValueError if all are empty.
    ``unknown`` gets weight 0 too: the DeepGlobe metric does not score it, and its few pixels
    made it the heaviest class by far (measured on deepglobe-512's train split: 2.9e4 against
    water's 2.4, so the weighted Dice was nearly unknown's alone).
    """
    if isinstance(class_pixels, Mapping):
        counts = [float(class_pixels.get(name, 0)) for name in CLASS_NAMES]
    else:
        counts = [float(n) for n in class_pixels]
    if len(counts) != NUM_CLASSES:
        raise ValueError(f"expected {NUM_CLASSES} class pixel counts, got {len(counts)}")
    counts[UNKNOWN] = 0.0
    total = sum(counts)
    present = sorted(n / total for n in counts if n > 0) if total > 0 else []
    if not present:
        raise ValueError("no labelled pixels: class weights cannot be derived")
    middle = len(present) // 2
    median = present[middle] if len(present) % 2 else (present[middle - 1] + present[middle]) / 2
    return tuple(median / (n / total) if n > 0 else 0.0 for n in counts)


def parse_class_weights(text: str) -> tuple[float, ...] | str | None:
    """``--class-weights``: ``none`` → None, ``auto`` → "auto", ``w1,…,w7`` → the weights."""
    value = text.strip().lower()
    if value in ("none", ""):
        return None
    if value == "auto":
        return "auto"
    try:
        weights = [float(part) for part in value.split(",")]
    except ValueError as error:
        raise ValueError(
            f"class weights must be auto, none or {NUM_CLASSES} numbers w1,…,w{NUM_CLASSES} "
            f"({', '.join(CLASS_NAMES)}), got {text!r}"
        ) from error
    validated = validated_weights(weights)
    assert validated is not None
    return validated
