"""The deployments, defined once: served locally by ``landcover up``, deployed by prefect.yaml.

:data:`DEPLOYMENTS` is the single definition. :func:`runner_deployments` turns it into
``RunnerDeployment`` objects for ``prefect.serve`` (the embedded default: one local process runs
every flow), and ``infra/prefect.yaml``, generated from it (``python -m infra.generated``),
spells out the same deployments for ``prefect deploy`` onto work pools.

- ``train/landcover``: started by ``imagery-drop`` (new labels) or by hand; CPU process pool;
  trains every architecture of ``models.registry`` (its description lists them from there).
- ``train-model/landcover``: started by ``train``, once per architecture; GPU pool (Vertex AI).
- ``imagery-drop/landcover``: event ``landcover.imagery.dropped``; CPU process pool.
- ``nightly-inference/landcover``: cron ``0 2 * * *`` (UTC); CPU process pool.

``root`` is the one environment-specific parameter: ``prefect.yaml`` writes it as
``{{ $LANDCOVER_ROOT }}`` (``prefect deploy`` fills it from the environment) and
:func:`runner_deployments` substitutes the ``--root`` given to ``landcover up``. Stage options
are not spelled out here: the flows take them as three JSON groups (``training``,
``preprocessing``, ``inference``; :mod:`flows.options`) whose defaults live with the stages, so
a deployment sets only what it changes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flows.drops.events import drop_trigger
from models.registry import ARCHITECTURES, architectures_text

DEPLOYMENT_NAME = "landcover"
ROOT_PLACEHOLDER = "{{ $LANDCOVER_ROOT }}"
NIGHTLY_CRON = "0 2 * * *"
TIMEZONE = "UTC"
PROCESS_POOL = "landcover-process"
GPU_POOL = "landcover-gpu"


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment, in the terms both ``flow.to_deployment`` and prefect.yaml use."""

    entrypoint: str  # "flows/train.py:train", relative to the project root
    description: str
    work_pool: str
    parameters: dict[str, Any] = field(default_factory=dict)
    cron: str | None = None
    triggers: tuple[dict[str, Any], ...] = ()
    tags: tuple[str, ...] = ("landcover",)
    concurrency_limit: int | None = None
    name: str = DEPLOYMENT_NAME
    # Where this flow's parameters take training overrides (TrainConfig fields), if anywhere:
    # ("training",) for the train flow, ("train_parameters", "training") for the drop flow.
    training_path: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        path = self.entrypoint.split(":", 1)[0]
        return path.removesuffix(".py").replace("/", ".")

    @property
    def function(self) -> str:
        return self.entrypoint.split(":", 1)[1]

    def load_flow(self) -> Any:
        return getattr(importlib.import_module(self.module), self.function)

    def resolved_parameters(
        self, root: str, training: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The parameters with ``root`` filled in and, where the flow takes them, ``training``
        overrides (how ``landcover up --train-preset`` sizes drop-triggered retraining)."""
        resolved: dict[str, Any] = {
            k: (root if v == ROOT_PLACEHOLDER else v) for k, v in self.parameters.items()
        }
        if training and self.training_path:
            *outer, last = self.training_path
            target: dict[str, Any] = resolved
            for key in outer:  # copies: the definitions' own dicts stay as they are
                target[key] = dict(target.get(key) or {})
                target = target[key]
            target[last] = {**target.get(last, {}), **training}
        return resolved


DEPLOYMENTS: tuple[DeploymentSpec, ...] = (
    DeploymentSpec(
        entrypoint="flows/train.py:train",
        description=f"Preprocess raw/ (if changed), train the {len(ARCHITECTURES)} registered "
        f"architectures ({architectures_text(sep=', ')}), evaluate each on the val scenes, "
        "promote the best if it beats the promoted model.",
        work_pool=PROCESS_POOL,
        parameters={"root": ROOT_PLACEHOLDER, "train_deployment": f"train-model/{DEPLOYMENT_NAME}"},
        # Promotion is read-compare-write on one pointer: never two training runs at once.
        concurrency_limit=1,
        training_path=("training",),
    ),
    DeploymentSpec(
        entrypoint="flows/train.py:train_model",
        description="Train one architecture (started by the train flow, one run per "
        "architecture, so each can get its own GPU worker).",
        work_pool=GPU_POOL,
    ),
    DeploymentSpec(
        entrypoint="flows/drops/drop.py:imagery_drop",
        description="Validate and unpack an imagery drop; retrain on new labels, predict new "
        "unlabeled scenes. Triggered by landcover.imagery.dropped events.",
        work_pool=PROCESS_POOL,
        parameters={"root": ROOT_PLACEHOLDER, "train_deployment": f"train/{DEPLOYMENT_NAME}"},
        triggers=(drop_trigger(),),
        training_path=("train_parameters", "training"),
    ),
    DeploymentSpec(
        entrypoint="flows/inference.py:nightly_inference",
        description="Predict masks with the promoted model for every scene in incoming/ that "
        "has none yet.",
        work_pool=PROCESS_POOL,
        parameters={"root": ROOT_PLACEHOLDER},
        cron=NIGHTLY_CRON,
    ),
)


def runner_deployments(
    root: str,
    specs: Sequence[DeploymentSpec] = DEPLOYMENTS,
    training: Mapping[str, Any] | None = None,
) -> list[Any]:
    """``RunnerDeployment`` objects for ``prefect.serve`` with ``root`` (and ``training``
    overrides, see :meth:`DeploymentSpec.resolved_parameters`) filled in.

    Serving ignores work pools (the serving process runs every flow itself) and ``paused``
    is left to Prefect: a stopped ``serve`` pauses its deployments, a new one resumes them.
    """
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.deployments.runner import EntrypointType
    from prefect.events import DeploymentEventTrigger

    deployments = []
    for spec in specs:
        flow = spec.load_flow()
        deployments.append(
            flow.to_deployment(
                name=spec.name,
                description=spec.description,
                parameters=spec.resolved_parameters(root, training),
                schedule=CronSchedule(cron=spec.cron, timezone=TIMEZONE) if spec.cron else None,
                triggers=[DeploymentEventTrigger(**t) for t in spec.triggers] or None,
                tags=list(spec.tags),
                concurrency_limit=spec.concurrency_limit,
                # `flows.drops.drop.imagery_drop` rather than a file path: the package is installed,
                # so served runs find their flow whatever the working directory.
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return deployments


def serve(
    root: str, *, limit: int | None = None, training: Mapping[str, Any] | None = None
) -> None:
    """Serve every deployment from this process until it is stopped (SIGTERM or Ctrl-C)."""
    from prefect import serve as prefect_serve

    deployments = runner_deployments(root, training=training)
    prefect_serve(*deployments, limit=limit, print_starting_message=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.deployments",
        description="Serve the landcover deployments against the Prefect API in PREFECT_API_URL.",
    )
    parser.add_argument("--root", required=True, help="data root (folder or gs:// URI)")
    parser.add_argument("--limit", type=int, default=None, help="max concurrent flow runs")
    parser.add_argument(
        "--training",
        type=json.loads,
        default=None,
        help='TrainConfig overrides (JSON) for the flows that train, e.g. {"preset": "cpu"}',
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    serve(args.root, limit=args.limit, training=args.training)
    return 0


if __name__ == "__main__":
    sys.exit(main())
