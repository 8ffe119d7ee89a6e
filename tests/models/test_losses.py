"""Soft Dice loss against a NumPy reference written out here, plus hand-computed cases."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.loss_options import median_frequency_weights, parse_class_weights
from models.losses import (
    DiceLoss,
    cross_entropy_sums,
    dice_coefficient,
    segmentation_loss,
    soft_dice_per_class,
)
from pipelines.core.palette import ACTIVE_CLASSES, NUM_CLASSES, UNKNOWN, one_hot


def reference_dice_loss(
    truth: np.ndarray,
    probs: np.ndarray,
    smooth: float = 1.0,
    weights=None,
    ignore_unknown: bool = False,
) -> float:
    """1 - weighted mean over classes of (2 Σ t·p + s) / (Σ t + Σ p + s), sums over batch+pixels."""
    t = truth.astype(np.float64)
    p = probs.astype(np.float64)
    w = np.ones(NUM_CLASSES) if weights is None else np.asarray(weights, np.float64)
    if ignore_unknown:
        known = 1.0 - t[..., UNKNOWN : UNKNOWN + 1]
        keep = list(ACTIVE_CLASSES)
        t, p, w = (t * known)[..., keep], (p * known)[..., keep], w[keep]
    axes = (0, 1, 2)
    dice = (2 * (t * p).sum(axes) + smooth) / (t.sum(axes) + p.sum(axes) + smooth)
    return float(1.0 - (w * dice).sum() / w.sum())


def _random_case(seed: int = 0, shape=(2, 9, 7)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, NUM_CLASSES, size=shape)
    logits = rng.normal(size=(*shape, NUM_CLASSES))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return one_hot(ids).astype("float32"), probs.astype("float32")


def _loss(truth, probs, **options) -> float:
    return float(DiceLoss(**options)(truth, probs))


def test_perfect_prediction_has_zero_loss():
    truth, _ = _random_case()
    assert _loss(truth, truth) == pytest.approx(0.0, abs=1e-6)
    assert _loss(truth, truth, ignore_unknown=True) == pytest.approx(0.0, abs=1e-6)


def test_disjoint_prediction_has_loss_near_one():
    ids = np.random.default_rng(1).integers(0, 6, size=(2, 16, 16))
    truth = one_hot(ids).astype("float32")
    wrong = one_hot((ids + 1) % 6).astype("float32")  # every pixel another class
    expected = reference_dice_loss(truth, wrong)
    assert _loss(truth, wrong) == pytest.approx(expected, rel=1e-6)
    # the 6 present classes score s / (S_c + s) ~ 0; unknown, absent from both, scores 1
    assert expected == pytest.approx(6 / 7, abs=0.01)
    assert _loss(truth, wrong, ignore_unknown=True) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("smooth", [1.0, 0.5, 10.0])
@pytest.mark.parametrize("ignore_unknown", [False, True])
@pytest.mark.parametrize("weights", [None, (1, 2, 3, 0, 5, 1, 4)])
def test_matches_numpy_reference(smooth, ignore_unknown, weights):
    truth, probs = _random_case(seed=3)
    options = {"smooth": smooth, "class_weights": weights, "ignore_unknown": ignore_unknown}
    expected = reference_dice_loss(truth, probs, smooth, weights, ignore_unknown)
    assert _loss(truth, probs, **options) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("smooth", "expected"),
    [
        # class 0: (2·1 + s) / (2 + 1 + s); class 1: s / (1 + s); classes 2-6 absent: s / s = 1
        (1.0, 1 - (3 / 4 + 1 / 2 + 5) / 7),
        (0.5, 1 - (2.5 / 3.5 + 0.5 / 1.5 + 5) / 7),
    ],
)
def test_smoothing_constant_by_hand(smooth, expected):
    truth = np.zeros((1, 1, 2, NUM_CLASSES), "float32")
    truth[..., 0] = 1.0  # both pixels class 0
    probs = np.zeros_like(truth)
    probs[..., 0] = probs[..., 1] = 0.5  # half on the right class, half on class 1
    assert _loss(truth, probs, smooth=smooth) == pytest.approx(expected, rel=1e-6)


def test_class_absent_everywhere_scores_one_and_keeps_gradients_finite():
    truth = np.zeros((1, 4, 4, NUM_CLASSES), "float32")
    truth[..., 0] = 1.0
    probs = tf.Variable(truth)
    per_class = np.asarray(soft_dice_per_class(truth, truth))
    np.testing.assert_allclose(per_class, np.ones(NUM_CLASSES), rtol=1e-6)
    with tf.GradientTape() as tape:
        loss = DiceLoss()(truth, probs)
    assert np.isfinite(tape.gradient(loss, probs).numpy()).all()


def test_ignore_unknown_drops_truth_unknown_pixels():
    truth, probs = _random_case(seed=5)
    unknown = truth[..., UNKNOWN] == 1
    assert unknown.any()
    other = probs.copy()
    other[unknown] = np.roll(other[unknown], 3, axis=-1)  # change predictions there only
    assert _loss(truth, probs, ignore_unknown=True) == pytest.approx(
        _loss(truth, other, ignore_unknown=True), rel=1e-6
    )
    assert _loss(truth, probs) != pytest.approx(_loss(truth, other), rel=1e-6)


def test_predicting_unknown_at_known_pixels_costs():
    truth = one_hot(np.zeros((1, 4, 4), np.uint8)).astype("float32")
    unsure = truth * 0.5
    unsure[..., UNKNOWN] = 0.5
    assert _loss(truth, unsure, ignore_unknown=True) > _loss(truth, truth, ignore_unknown=True)


def test_class_weights_select_classes():
    truth, probs = _random_case(seed=6)
    weights = [1, 0, 0, 0, 0, 0, 0]  # class 0 only
    per_class = np.asarray(soft_dice_per_class(truth, probs))
    assert _loss(truth, probs, class_weights=weights) == pytest.approx(1 - per_class[0], rel=1e-6)


def test_dice_coefficient_is_one_minus_default_loss():
    truth, probs = _random_case(seed=7)
    assert float(dice_coefficient(truth, probs)) == pytest.approx(1 - _loss(truth, probs), 1e-6)


def test_serializes_with_its_options():
    loss = DiceLoss(smooth=0.5, class_weights=[1, 2, 3, 4, 5, 6, 7], ignore_unknown=True)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, DiceLoss)
    assert (restored.smooth, restored.class_weights, restored.ignore_unknown) == (
        0.5,
        (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0),
        True,
    )
    assert keras.saving.get_registered_object("landcover>dice_coefficient") is dice_coefficient


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"smooth": 0.0}, "smooth must be > 0"),
        ({"class_weights": [1, 1]}, "one weight per class"),
        ({"class_weights": [0] * 7}, "not all 0"),
    ],
)
def test_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        DiceLoss(**options)


def test_sums_of_split_batches_give_the_whole_batch_dice():
    """What a distributed step relies on: Dice of summed per-part sums = Dice of the whole."""
    from models.losses import dice_from_sums, dice_sums

    truth, probs = _random_case(seed=8, shape=(4, 6, 5))
    weights = (1, 2, 1, 1, 3, 1, 1)
    parts = [dice_sums(truth[i : i + 2], probs[i : i + 2], True) for i in (0, 2)]
    intersection = sum(np.asarray(part[0]) for part in parts)
    total = sum(np.asarray(part[1]) for part in parts)
    combined = dice_from_sums(
        intersection, total, smooth=1.0, class_weights=weights, ignore_unknown=True
    )
    expected = reference_dice_loss(truth, probs, 1.0, weights, ignore_unknown=True)
    assert 1 - float(combined) == pytest.approx(expected, rel=1e-5)


# ---- compound losses and class weights ---------------------------------------------------------


def reference_cross_entropy(
    truth: np.ndarray, probs: np.ndarray, weights=None, gamma: float = 0.0, ignore_unknown=False
) -> float:
    """Σ_i w_{y_i} (1 - p_i)^γ (-log p_i) / Σ_i w_{y_i}, p_i the probability of the true class."""
    t = truth.astype(np.float64).reshape(-1, NUM_CLASSES)
    p = np.clip(probs.astype(np.float64).reshape(-1, NUM_CLASSES), 1e-7, 1.0)
    w = np.ones(NUM_CLASSES) if weights is None else np.asarray(weights, np.float64).copy()
    if ignore_unknown:
        w[UNKNOWN] = 0.0
    labels = t.argmax(-1)
    p_true = p[np.arange(len(p)), labels]
    per_pixel = -np.log(p_true) * (1.0 - p_true) ** gamma
    pixel_w = w[labels]
    return float((pixel_w * per_pixel).sum() / pixel_w.sum())


WEIGHTS = (0.5, 2.0, 1.0, 3.0, 0.25, 1.5, 1.0)


@pytest.mark.parametrize("loss", ["dice", "dice+ce", "focal+dice"])
@pytest.mark.parametrize("weights", [None, WEIGHTS])
@pytest.mark.parametrize("ignore_unknown", [False, True])
def test_segmentation_losses_match_the_numpy_reference(loss, weights, ignore_unknown) -> None:
    truth, probs = _random_case(seed=3)
    expected = reference_dice_loss(truth, probs, weights=weights, ignore_unknown=ignore_unknown)
    if loss != "dice":
        gamma = 2.0 if loss == "focal+dice" else 0.0
        expected += reference_cross_entropy(truth, probs, weights, gamma, ignore_unknown)
    got = segmentation_loss(
        truth,
        probs,
        loss=loss,
        class_weights=weights,
        ignore_unknown=ignore_unknown,
        focal_gamma=2.0,
    )
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_focal_term_is_smaller_than_cross_entropy_on_confident_pixels() -> None:
    truth, probs = _random_case(seed=4)
    dice_only = float(segmentation_loss(truth, probs, loss="dice"))
    ce = float(segmentation_loss(truth, probs, loss="dice+ce")) - dice_only
    focal = float(segmentation_loss(truth, probs, loss="focal+dice")) - dice_only
    assert 0 < focal < ce


def test_cross_entropy_sums_are_the_weighted_mean_parts() -> None:
    truth, probs = _random_case(seed=5)
    weighted, total = cross_entropy_sums(truth, probs, class_weights=WEIGHTS)
    labels = truth.reshape(-1, NUM_CLASSES).argmax(-1)
    assert float(total) == pytest.approx(float(np.asarray(WEIGHTS)[labels].sum()), rel=1e-6)
    assert float(weighted) / float(total) == pytest.approx(
        reference_cross_entropy(truth, probs, WEIGHTS), rel=1e-5
    )


def test_median_frequency_weights_match_the_reference() -> None:
    counts = {
        "urban": 100,
        "agriculture": 1000,
        "rangeland": 200,
        "forest": 400,
        "water": 50,
        "barren": 0,
        "unknown": 10,
    }
    # unknown (10 pixels) is not a class the metric scores: weight 0, left out of the median
    freqs = np.array([100, 1000, 200, 400, 50, 0, 0], np.float64)
    freqs /= freqs.sum()
    median = np.median(freqs[freqs > 0])
    expected = np.where(freqs > 0, median / np.where(freqs > 0, freqs, 1), 0.0)
    np.testing.assert_allclose(median_frequency_weights(counts), expected, rtol=1e-12)
    np.testing.assert_allclose(
        median_frequency_weights([100, 1000, 200, 400, 50, 0, 10]), expected, rtol=1e-12
    )
    weights = median_frequency_weights(counts)
    assert weights[UNKNOWN] == 0.0
    assert weights[4] == pytest.approx(200 / 50)  # water: median (rangeland 200) / 50
    with pytest.raises(ValueError, match="no labelled pixels"):
        median_frequency_weights([0] * NUM_CLASSES)
    with pytest.raises(ValueError, match="no labelled pixels"):
        median_frequency_weights([0, 0, 0, 0, 0, 0, 500])  # only unknown


def test_present_classes_dice_averages_over_the_truth_classes_only() -> None:
    truth, probs = _random_case(3)
    ids = truth.argmax(-1)
    ids[ids == 4] = 1  # water absent from the truth
    truth = one_hot(ids).astype("float32")
    present = [c for c in range(NUM_CLASSES) if (ids == c).any()]
    assert 4 not in present
    t, p = truth.astype(np.float64), probs.astype(np.float64)
    axes = (0, 1, 2)
    dice = (2 * (t * p).sum(axes) + 1.0) / (t.sum(axes) + p.sum(axes) + 1.0)
    expected = 1.0 - dice[present].mean()
    assert _loss(truth, probs, dice_classes="present") == pytest.approx(expected, rel=1e-5)
    assert _loss(truth, probs) == pytest.approx(1.0 - dice.mean(), rel=1e-5)
    # An absent class's predictions cost only through the present classes' overlap: moving
    # probability onto water lowers the truth classes' Dice, not a water term.
    shifted = probs.copy()
    shifted[..., 4] += 0.5
    shifted /= shifted.sum(-1, keepdims=True)
    assert _loss(truth, shifted, dice_classes="present") > _loss(
        truth, probs, dice_classes="present"
    )
    weights = (1.0, 2.0, 1.0, 1.0, 9.0, 1.0, 1.0)
    w = np.asarray(weights)[present]
    weighted = 1.0 - (w * dice[present]).sum() / w.sum()
    assert _loss(truth, probs, dice_classes="present", class_weights=weights) == pytest.approx(
        weighted, rel=1e-5
    )


def test_present_classes_dice_of_a_batch_with_no_scored_class_is_one() -> None:
    truth = np.zeros((1, 4, 4, NUM_CLASSES), "float32")
    truth[..., UNKNOWN] = 1.0
    probs = np.full_like(truth, 1.0 / NUM_CLASSES)
    loss = _loss(truth, probs, dice_classes="present", ignore_unknown=True)
    assert loss == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="dice_classes"):
        DiceLoss(dice_classes="some")


def test_class_weight_option_parsing() -> None:
    assert parse_class_weights("none") is None
    assert parse_class_weights("AUTO") == "auto"
    assert parse_class_weights("1,2,3,4,5,6,0") == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0)
    with pytest.raises(ValueError, match="one weight per class"):
        parse_class_weights("1,2")
    with pytest.raises(ValueError, match="auto, none or 7 numbers"):
        parse_class_weights("heavy")
    with pytest.raises(ValueError, match="unknown loss"):
        segmentation_loss(*_random_case(), loss="ce")
