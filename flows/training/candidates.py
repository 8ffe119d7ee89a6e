"""Step 2 of the train flow: the candidates, one trained model per architecture.

:func:`candidate_configs` builds and checks every architecture's :class:`TrainConfig` before any
work (a typo must fail before an hour of preprocessing); training itself (a subflow here, or a
run of the ``train-model`` deployment on a GPU pool) is dispatched by :mod:`flows.train`, which
owns the ``train-model`` flow. What training wrote comes back as a :class:`Candidate`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flows import tasks
from flows.layout import Layout
from flows.options import train_config, with_preset
from models.train.config import TrainConfig
from pipelines.core.naming import METADATA_FILE
from pipelines.io import storage

# What the flow trains by default, over TrainConfig's defaults (one epoch of batch 4 suits a
# command-line smoke run; a scheduled or drop-triggered retraining trains longer).
FLOW_TRAINING: dict[str, Any] = {"epochs": 10, "batch_size": 8}
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


@dataclass(frozen=True)
class Candidate:
    """One architecture trained by this run: its config and what training recorded."""

    arch: str
    config: TrainConfig
    metadata: Mapping[str, Any] = field(default_factory=dict)  # the run's metadata.json

    @property
    def model_uri(self) -> str:
        return self.config.output

    @property
    def training_val_miou(self) -> float | None:
        """The val mIoU training measured on its val patches (its checkpoint choice)."""
        score = self.metadata.get("val_miou")
        return None if score is None else float(score)

    @property
    def epochs(self) -> int:
        """Epochs run (early stopping may end a run before ``config.epochs``)."""
        return len(self.metadata.get("history") or []) or self.config.epochs

    @property
    def wall_time_s(self) -> float | None:
        seconds = self.metadata.get("wall_time_s")
        return None if seconds is None else float(seconds)


def candidate_configs(
    archs: Sequence[str],
    training: Mapping[str, Any] | None,
    *,
    layout: Layout,
    dataset: str,
    version: str,
) -> dict[str, TrainConfig]:
    """arch → its validated :class:`TrainConfig`: the flow's defaults, then the values of
    ``training["preset"]`` (as ``landcover train --preset``), then ``training`` itself."""
    if not archs:
        raise ValueError("archs is empty: name at least one architecture")
    overrides = {**FLOW_TRAINING, **with_preset(training)}
    return {
        arch: train_config(
            overrides,
            data=layout.records(dataset),
            output=layout.model_dir(arch, version),
            arch=arch,
        )
        for arch in archs
    }


def read_candidates(configs: Mapping[str, TrainConfig]) -> list[Candidate]:
    """The candidates as their (finished) training runs left them in storage."""
    found = []
    for arch, config in configs.items():
        metadata = tasks.read_json(storage.join(config.output, METADATA_FILE))
        if metadata is None:
            raise FileNotFoundError(
                f"the {arch} run completed without {config.output}/{METADATA_FILE}"
            )
        found.append(Candidate(arch, config, metadata))
    return found


def wait_for_runs(run_ids: Mapping[str, Any], poll_s: float = 10.0) -> dict[str, str]:
    """Poll deployment runs until each is final; returns arch → final state name."""
    from prefect.client.orchestration import get_client

    states: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        while len(states) < len(run_ids):
            for arch, run_id in run_ids.items():
                if arch in states:
                    continue
                state = client.read_flow_run(run_id).state
                if state is not None and state.type.value in FINAL_STATES:
                    states[arch] = state.type.value
            if len(states) < len(run_ids):
                time.sleep(poll_s)
    return states
