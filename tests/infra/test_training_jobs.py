"""Multi-worker job specs: the TF_CONFIG their platforms set is what models/strategy.py expects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.strategy import parse_tf_config, resolve_strategy_name


def tf_configs(cluster: dict[str, list[str]]) -> list[str]:
    """The TF_CONFIG each task of ``cluster`` gets (chief and workers)."""
    return [
        json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})
        for kind, hosts in cluster.items()
        for index in range(len(hosts))
    ]


def check_cluster(cluster: dict[str, list[str]]) -> None:
    specs = [parse_tf_config(raw) for raw in tf_configs(cluster)]
    size = sum(len(hosts) for hosts in cluster.values())
    assert all(spec.num_workers == size for spec in specs)
    assert sum(spec.is_chief for spec in specs) == 1
    assert all(resolve_strategy_name("auto", spec, num_gpus=1) == "multi_worker" for spec in specs)


def check_train_args(command: list[str], args: list[str]) -> None:
    from models.train.cli import config_from_args

    assert command == ["landcover", "train"]
    config = config_from_args(args)
    assert config.strategy in ("auto", "multi_worker")
    assert config.output.startswith("gs://") and config.data.startswith("gs://")
    config.validate()


def test_vertex_custom_job(infra: Path) -> None:
    text = (infra / "training" / "vertex-multiworker.yaml").read_text()
    spec: dict[str, Any] = yaml.safe_load(text)
    chief, workers = spec["workerPoolSpecs"]
    assert chief["replicaCount"] == 1 and workers["replicaCount"] >= 1
    for pool in (chief, workers):
        assert pool["machineSpec"]["acceleratorCount"] >= 1
        container = pool["containerSpec"]
        assert container["imageUri"].split("/")[-1].startswith("trainer:")
        check_train_args(container["command"], container["args"])
    assert chief["containerSpec"]["args"] == workers["containerSpec"]["args"]
    # Vertex AI: worker pool 0 → "chief", pool 1 → "worker".
    check_cluster(
        {
            "chief": ["workerpool0-0:2222"],
            "worker": [f"workerpool1-{i}:2222" for i in range(workers["replicaCount"])],
        }
    )


def test_kubeflow_tfjob(infra: Path) -> None:
    job: dict[str, Any] = yaml.safe_load((infra / "training" / "tfjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "TFJob")
    replicas = job["spec"]["tfReplicaSpecs"]
    assert set(replicas) == {"Chief", "Worker"}
    assert replicas["Chief"]["replicas"] == 1
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    for replica in replicas.values():
        (container,) = replica["template"]["spec"]["containers"]
        assert container["name"] == "tensorflow"  # the operator injects TF_CONFIG here
        assert container["resources"]["limits"]["nvidia.com/gpu"] >= 1
        check_train_args(container["command"], container["args"])
    check_cluster(
        {
            kind.lower(): [
                f"{name}-{kind.lower()}-{i}.{namespace}.svc:2222" for i in range(r["replicas"])
            ]
            for kind, r in replicas.items()
        }
    )


def test_single_process_without_tf_config() -> None:
    assert parse_tf_config("").num_workers == 1


@pytest.mark.parametrize("spec_file", ["vertex-multiworker.yaml", "tfjob.yaml"])
def test_specs_use_the_trainer_image(infra: Path, spec_file: str) -> None:
    text = (infra / "training" / spec_file).read_text()
    assert "landcover/trainer:" in text
