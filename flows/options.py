"""The flows' option groups: training, preprocessing and inference, each with its defaults once.

A flow parameter is one of three groups instead of a loose keyword per option:

- ``training``: a dict of :class:`models.train.config.TrainConfig` field overrides (the same
  fields and defaults as ``landcover train``'s flags); the flow fills in ``data``, ``output``
  and ``arch``;
- ``preprocessing``: a dict of :class:`pipelines.preprocess.options.PreprocessOptions` field
  overrides (``patch_size``, ``val_fraction``, ``seed``, ``record_format``, ``num_shards``, as
  ``landcover preprocess``); the flow fills in the input and output URIs;
- ``inference``: a :class:`pipelines.predict.options.PredictOptions` (tile, overlap, batch,
  TTA, format, block size, … of batch inference, as ``landcover predict``'s flags).

Dicts keep the Prefect parameters JSON (a deployment, the UI and ``prefect deployment run
--param`` all pass JSON); they are validated here against the stage's own options class, with
its types (pydantic, so ``"3"`` is 3 and ``"jpeg"`` is no codec) and its ``validate()``, before
the flow spends an hour preprocessing. Importing this module loads neither Beam nor TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import TypeAdapter

from models.train.config import TrainConfig, preset_options
from pipelines.preprocess.options import PreprocessOptions

# The fields of each options class that a flow sets itself, never an override.
TRAINING_SET_BY_FLOW: frozenset[str] = frozenset({"data", "output", "arch"})
PREPROCESSING_SET_BY_FLOW: frozenset[str] = frozenset({"input_uri", "output_uri"})

Options = TypeVar("Options")


def _fields(cls: type) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


def _validated(cls: type[Options], what: str, values: Mapping[str, Any]) -> Options:
    """``cls`` built from ``values`` with its types checked; an unknown name fails."""
    unknown = sorted(set(values) - _fields(cls))
    if unknown:
        valid = ", ".join(sorted(_fields(cls)))
        raise ValueError(f"unknown {what} option(s) {', '.join(unknown)}; valid: {valid}")
    return TypeAdapter(cls).validate_python(dict(values))


def _overrides(
    what: str, overrides: Mapping[str, Any] | None, set_by_flow: frozenset[str]
) -> dict[str, Any]:
    chosen = dict(overrides or {})
    reserved = sorted(set(chosen) & set_by_flow)
    if reserved:
        raise ValueError(f"{what} option(s) {', '.join(reserved)} are set by the flow")
    return chosen


def train_config_of(fields: Mapping[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from its fields (as they travel through Prefect), validated."""
    config = _validated(TrainConfig, "training", fields)
    config.validate()
    return config


def with_preset(training: Mapping[str, Any] | None) -> dict[str, Any]:
    """Training overrides with their ``preset``'s values under them, as ``landcover train
    --preset`` gives them (explicit values win); an unknown preset fails, naming the valid."""
    chosen = dict(training or {})
    preset = chosen.get("preset")
    return {**(preset_options(preset) if preset else {}), **chosen}


def train_config(
    overrides: Mapping[str, Any] | None, *, data: str, output: str, arch: str
) -> TrainConfig:
    """The :class:`TrainConfig` of one architecture: overrides on its defaults, validated."""
    chosen = _overrides("training", overrides, TRAINING_SET_BY_FLOW)
    return train_config_of({**chosen, "data": data, "output": output, "arch": arch})


def preprocess_options(
    overrides: Mapping[str, Any] | None, *, input_uri: str, output_uri: str
) -> PreprocessOptions:
    """The :class:`PreprocessOptions` of a run: overrides on its defaults, type-checked.

    The ranges (patch size, val fraction, shards) are the job's to check: it runs first.
    """
    chosen = _overrides("preprocessing", overrides, PREPROCESSING_SET_BY_FLOW)
    return _validated(
        PreprocessOptions,
        "preprocessing",
        {**chosen, "input_uri": input_uri, "output_uri": output_uri},
    )


def recorded_options(options: PreprocessOptions) -> dict[str, Any]:
    """What a preprocessing run depends on besides its input files: the records' fingerprint.

    The output URI is left out (it is where the fingerprint lives) and so is the input (its
    files are fingerprinted one by one).
    """
    recorded = options.to_dict()
    for uri in ("input", "output"):
        recorded.pop(uri)
    return recorded
