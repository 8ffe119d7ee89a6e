"""The reference classifiers: majority class and nearest class mean in RGB."""

from __future__ import annotations

import numpy as np

from pipelines.core.baselines import class_rgb_means, majority_class, nearest_mean_prediction
from pipelines.core.palette import UNKNOWN


def test_majority_is_the_most_frequent_active_class() -> None:
    ids = np.array([[UNKNOWN] * 5 + [1, 1, 4]], np.uint8)  # unknown is never the answer
    assert majority_class([ids]) == 1


def test_nearest_mean_recovers_colour_coded_classes() -> None:
    image = np.zeros((2, 3, 3), np.uint8)
    ids = np.array([[0, 1, 2], [0, 1, 2]], np.uint8)
    image[ids == 0] = (200, 10, 10)
    image[ids == 1] = (10, 200, 10)
    image[ids == 2] = (10, 10, 200)
    means = class_rgb_means([(image, ids)])
    assert sorted(means) == [0, 1, 2]
    np.testing.assert_allclose(means[1], (10, 200, 10))
    noisy = np.clip(image.astype(int) + 20, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(nearest_mean_prediction(noisy, means), ids)
