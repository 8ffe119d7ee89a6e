"""Shared helpers for the model tests (keras-hub style: one save → reload → compare routine).

Offered as a fixture rather than an importable module so it works under any pytest import mode.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


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
