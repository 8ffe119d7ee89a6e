"""Shared helpers for the model tests: one save → reload → compare routine (keras-hub style)
and one way to build a tiny dataset through the real commands.

Offered as a fixture rather than an importable module so it works under any pytest import mode.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from flows import cli


def assert_save_load_roundtrip(model, x: np.ndarray, tmp_path: Path):
    """Save ``model`` as ``model.keras``, reload it with the project loader, compare outputs.

    Loads through ``models.architectures.load_model`` (no ``custom_objects``), so a custom layer
    or loss that forgot its registration or ``get_config`` fails here. Returns the reloaded model
    for further checks.
    """
    from models.architectures import load_model

    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = load_model(str(path))
    assert reloaded.name == model.name
    assert [w.shape for w in reloaded.weights] == [w.shape for w in model.weights]
    expected = np.asarray(model(x, training=False))
    actual = np.asarray(reloaded(x, training=False))
    np.testing.assert_array_equal(actual, expected)
    return reloaded


@pytest.fixture
def save_load_roundtrip(tmp_path: Path) -> Callable:
    """``save_load_roundtrip(model, x)`` → the reloaded model, after asserting equal outputs."""
    return lambda model, x: assert_save_load_roundtrip(model, x, tmp_path)


@pytest.fixture(scope="module")
def make_records(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """``landcover synth`` → ``landcover preprocess`` into a fresh folder; returns the records URI.

    Through the command line on purpose: the model tests then train on exactly what a user's
    ``preprocess`` writes.
    """

    def make(
        *, scenes: int, size: int, patch: int, seed: int, val_fraction: float, extra: tuple = ()
    ) -> str:
        root = tmp_path_factory.mktemp("records")
        raw, out = str(root / "raw"), str(root / "records")
        synth = ["synth", "--output", raw, "--scenes", str(scenes), "--size", str(size)]
        assert cli.main([*synth, "--seed", str(seed)]) == 0
        preprocess = ["preprocess", "--input", raw, "--output", out, "--patch-size", str(patch)]
        assert cli.main([*preprocess, "--val-fraction", str(val_fraction), *extra]) == 0
        return out

    return make
