"""Two reference classifiers a trained model must beat: majority class and nearest RGB mean.

Pure NumPy. ``landcover bench quality`` scores them beside the models on held-out real scenes,
and ``landcover demo`` on its synthetic holdout: a model that does not beat a per-pixel colour
rule has learned nothing a colour lookup could not, which is what makes a holdout meaningful.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipelines.core.palette import ACTIVE_CLASSES, NUM_CLASSES, class_pixel_counts


def majority_class(train_ids: Sequence[np.ndarray]) -> int:
    """The most frequent active class of the training pixels (class-id arrays)."""
    counts = np.sum([class_pixel_counts(ids) for ids in train_ids], axis=0)
    active = np.asarray(ACTIVE_CLASSES)
    return int(active[np.argmax(np.asarray(counts)[active])])


def class_rgb_means(train: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[int, np.ndarray]:
    """Mean RGB (float64, (3,)) of each active class present in ``(image, ids)`` pairs."""
    sums = np.zeros((NUM_CLASSES, 3))
    counts = np.zeros(NUM_CLASSES)
    for image, ids in train:
        flat_ids = ids.ravel()
        pixels = image.reshape(-1, 3).astype(np.float64)
        for channel in range(3):
            sums[:, channel] += np.bincount(flat_ids, pixels[:, channel], minlength=NUM_CLASSES)
        counts += np.bincount(flat_ids, minlength=NUM_CLASSES)
    return {c: sums[c] / counts[c] for c in ACTIVE_CLASSES if counts[c] > 0}


def nearest_mean_prediction(image: np.ndarray, means: dict[int, np.ndarray]) -> np.ndarray:
    """Per pixel, the class whose mean RGB is nearest (Euclidean), (H, W) uint8."""
    classes = np.asarray(list(means), np.uint8)
    centers = np.stack([means[int(c)] for c in classes])  # (K, 3)
    pixels = image.reshape(-1, 3).astype(np.float32)
    distances = ((pixels[:, None, :] - centers[None].astype(np.float32)) ** 2).sum(-1)
    return classes[np.argmin(distances, axis=1)].reshape(image.shape[:2])
