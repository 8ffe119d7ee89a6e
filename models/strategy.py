"""Which ``tf.distribute`` strategy a training run uses, and which process is the chief.

The choice is a pure function of the request, ``TF_CONFIG`` and the visible GPUs
(:func:`resolve_strategy_name`), so it is unit-tested without creating a strategy; only
:func:`make_strategy` touches TensorFlow. ``auto`` picks:

- ``multi_worker`` (``MultiWorkerMirroredStrategy``) when ``TF_CONFIG`` names more than one
  worker (``chief`` + ``worker`` tasks): Vertex AI custom jobs and Kubernetes TFJobs set it;
- ``mirrored`` (``MirroredStrategy``) with more than one local GPU;
- ``default`` otherwise (one device, no replication).

``tpu`` is never picked by ``auto``: a TPU is asked for by name (``--strategy tpu``) and found by
``TPUClusterResolver`` (``TPU_NAME`` or the VM's local TPU).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tensorflow as tf

STRATEGIES: tuple[str, ...] = ("auto", "default", "mirrored", "multi_worker", "tpu")
# Task types that take part in synchronous training (an `evaluator` or `ps` task does not).
WORKER_TASK_TYPES: tuple[str, ...] = ("chief", "worker")


@dataclass(frozen=True)
class ClusterSpec:
    """What ``TF_CONFIG`` says about the cluster and this process's place in it."""

    num_workers: int = 1
    task_type: str | None = None
    task_index: int = 0
    has_chief_task: bool = False

    @property
    def is_chief(self) -> bool:
        """The chief writes the outputs: the ``chief`` task, else worker 0 (TF's convention)."""
        if self.task_type is None:
            return True
        if self.task_type == "chief":
            return True
        return self.task_type == "worker" and self.task_index == 0 and not self.has_chief_task


def parse_tf_config(raw: str | None = None) -> ClusterSpec:
    """``TF_CONFIG`` (JSON, from the environment when ``raw`` is None) → :class:`ClusterSpec`.

    A missing or empty ``TF_CONFIG`` is a single-process run. Malformed JSON is an error that
    names the variable: silently training alone when a cluster was meant would waste the
    cluster and diverge from the other workers.
    """
    text = os.environ.get("TF_CONFIG", "") if raw is None else raw
    if not text.strip():
        return ClusterSpec()
    try:
        config: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from None
    cluster = config.get("cluster") or {}
    task = config.get("task") or {}
    num_workers = sum(len(cluster.get(kind) or []) for kind in WORKER_TASK_TYPES)
    return ClusterSpec(
        num_workers=max(num_workers, 1),
        task_type=task.get("type"),
        task_index=int(task.get("index", 0)),
        has_chief_task=bool(cluster.get("chief")),
    )


def resolve_strategy_name(requested: str, cluster: ClusterSpec, num_gpus: int) -> str:
    """The concrete strategy (``default|mirrored|multi_worker|tpu``) for a request."""
    if requested not in STRATEGIES:
        raise ValueError(f"unknown strategy {requested!r}; valid: {', '.join(STRATEGIES)}")
    if requested != "auto":
        return requested
    if cluster.num_workers > 1:
        return "multi_worker"
    if num_gpus > 1:
        return "mirrored"
    return "default"


def make_strategy(requested: str = "auto") -> tuple[tf.distribute.Strategy, str]:
    """Create the strategy for ``requested``; returns it and its concrete name.

    Call this before any other TensorFlow work in the process: ``MultiWorkerMirroredStrategy``
    must set up its collective ops before the runtime is initialised.
    """
    import tensorflow as tf

    cluster = parse_tf_config()
    name = resolve_strategy_name(requested, cluster, len(tf.config.list_physical_devices("GPU")))
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy(), name
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(), name
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver), name
    return tf.distribute.get_strategy(), name


def strategy_is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes outputs (model, metadata, checkpoints, TensorBoard).

    For multi-worker strategies the task comes from the strategy's cluster resolver (what TF
    itself uses); single-process strategies are always the chief.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if resolver is None or task_type is None:
        return True
    spec = resolver.cluster_spec().as_dict() if hasattr(resolver, "cluster_spec") else {}
    return ClusterSpec(
        num_workers=max(1, sum(len(spec.get(kind) or []) for kind in WORKER_TASK_TYPES)),
        task_type=task_type,
        task_index=int(resolver.task_id or 0),
        has_chief_task=bool(spec.get("chief")),
    ).is_chief
