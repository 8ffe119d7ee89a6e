"""Which strategy a run uses and which process is the chief, from ``TF_CONFIG`` alone."""

from __future__ import annotations

import json

import pytest

from models.strategy import ClusterSpec, parse_tf_config, resolve_strategy_name


def test_strategy_selection_from_tf_config() -> None:
    assert parse_tf_config("") == ClusterSpec()
    two = json.dumps(
        {
            "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
            "task": {"type": "worker", "index": 1},
        }
    )
    spec = parse_tf_config(two)
    assert (spec.num_workers, spec.task_type, spec.task_index, spec.is_chief) == (
        2,
        "worker",
        1,
        False,
    )
    assert parse_tf_config(two.replace('"index": 1', '"index": 0')).is_chief
    with_chief = {
        "cluster": {"chief": ["h:0"], "worker": ["h:1", "h:2"], "evaluator": ["h:3"]},
        "task": {"type": "worker", "index": 0},
    }
    spec = parse_tf_config(json.dumps(with_chief))
    assert spec.num_workers == 3 and not spec.is_chief  # the chief task is the chief
    one = {"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 0}}

    assert resolve_strategy_name("auto", parse_tf_config(two), num_gpus=0) == "multi_worker"
    assert resolve_strategy_name("auto", parse_tf_config(json.dumps(one)), 0) == "default"
    assert resolve_strategy_name("auto", ClusterSpec(), num_gpus=4) == "mirrored"
    assert resolve_strategy_name("auto", ClusterSpec(), num_gpus=1) == "default"
    assert resolve_strategy_name("auto", parse_tf_config(two), num_gpus=8) == "multi_worker"
    assert resolve_strategy_name("tpu", ClusterSpec(), num_gpus=0) == "tpu"
    assert resolve_strategy_name("mirrored", ClusterSpec(), num_gpus=0) == "mirrored"
    with pytest.raises(ValueError, match="valid: auto, default, mirrored, multi_worker, tpu"):
        resolve_strategy_name("horovod", ClusterSpec(), 0)
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        parse_tf_config("{not json")
