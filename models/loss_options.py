"""The loss options a run names (``--loss``, ``--class-weights``), checked without Keras.

``models.train.config`` validates a ``TrainConfig`` with these before TensorFlow loads;
``models.losses`` computes with them. Median-frequency weights (Eigen & Fergus 2015):
``w_c = median(f) / f_c`` over the classes present in the training pixels (``f_c`` the class's
pixel fraction), 0 for absent classes, so a class 10x rarer than the median weighs 10x more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES

LOSSES: tuple[str, ...] = ("dice", "dice+ce", "focal+dice")


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
    """
    if isinstance(class_pixels, Mapping):
        counts = [float(class_pixels.get(name, 0)) for name in CLASS_NAMES]
    else:
        counts = [float(n) for n in class_pixels]
    if len(counts) != NUM_CLASSES:
        raise ValueError(f"expected {NUM_CLASSES} class pixel counts, got {len(counts)}")
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
