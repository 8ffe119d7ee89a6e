"""Multi-worker training for real: two processes on loopback, TF_CONFIG, the real train loop.

Also checks the Dice-under-distribution choice (``models.steps``): one synchronous step on two
replicas gives the same loss and the same updated weights as one device on the global batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pipelines.io.records import split_files

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
TIMEOUT_S = 300

# Runs the real `landcover train` in a worker process, recording what the test checks:
# the final weights (every worker), whether it was the chief and which outputs it published.
WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import models.train.artifacts as artifacts
    import models.train.cli as train_cli
    from pipelines.io import storage

    dump, report, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    published = []
    upload_file, write_text = storage.upload_file, storage.write_text

    def recorded_upload(local, uri):
        published.append(uri)
        upload_file(local, uri)

    def recorded_write(uri, text):
        published.append(uri)
        write_text(uri, text)

    storage.upload_file, storage.write_text = recorded_upload, recorded_write
    save_outputs = artifacts.save_outputs

    def save_and_dump(output, model, metadata, *, is_chief):
        np.savez(dump, *[np.asarray(w.numpy()) for w in model.weights])
        save_outputs(output, model, metadata, is_chief=is_chief)
        with open(report, "w") as handle:
            json.dump({"is_chief": is_chief, "published": published}, handle)

    artifacts.save_outputs = save_and_dump
    sys.exit(train_cli.main(argv))
    """
)

TWO_REPLICAS = textwrap.dedent(
    """
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from models.steps import LossSpec, make_train_step

    rng = np.random.default_rng(0)
    images = rng.random((4, 12, 12, 3)).astype("float32")
    masks = tf.one_hot(rng.integers(0, 7, (4, 12, 12)), 7).numpy()

    def one_step(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = keras.Sequential([
                keras.Input((None, None, 3)),
                keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                keras.layers.Conv2D(7, 1, activation="softmax"),
            ])
            optimizer = keras.optimizers.SGD(5.0)
            optimizer.build(model.trainable_variables)
        dataset = tf.data.Dataset.from_tensors((images, masks)).repeat()
        iterator = iter(strategy.experimental_distribute_dataset(dataset))
        step = make_train_step(strategy, model, optimizer, LossSpec(ignore_unknown=True))
        loss = float(step(iterator))
        return loss, [v.numpy() for v in model.trainable_variables]

    loss1, weights1 = one_step(tf.distribute.get_strategy())
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    loss2, weights2 = one_step(mirrored)
    moved = max(float(np.abs(w - w0).max()) for w, w0 in zip(weights1, weights2))
    print("LOSSES", loss1, loss2, "MAXDIFF", moved)
    assert abs(loss1 - loss2) < 1e-6, (loss1, loss2)
    for a, b in zip(weights1, weights2):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    print("OK")
    """
)


@pytest.fixture(scope="module")
def records_uri(make_records: Callable[..., str]) -> str:
    """2 scenes → 4 train patches in 2 shards, so each worker reads its own shard (FILE)."""
    out = make_records(
        scenes=2, size=128, patch=64, seed=1, val_fraction=0.5, extra=("--num-shards", "2")
    )
    assert len(split_files(out, "train")) == 2
    return out


def test_two_workers_train_identically_and_only_the_chief_writes(
    records_uri: str, tmp_path: Path, free_port: Callable[[], int]
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    output = tmp_path / "model"
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    argv = ["--data", records_uri, "--output", str(output), "--arch", "unet", "--base-filters"]
    argv += ["4", "--batch-size", "2", "--epochs", "1", "--steps-per-epoch", "3"]
    argv += [
        "--checkpoint-every",
        "2",
        "--log-every",
        "1",
        "--strategy",
        "auto",
        "--val-steps",
        "1",
    ]
    processes = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
        }
        command = [
            sys.executable,
            str(script),
            str(tmp_path / f"weights{index}.npz"),
            str(tmp_path / f"report{index}.json"),
            *argv,
        ]
        log = open(tmp_path / f"worker{index}.log", "w")  # noqa: SIM115 (closed below)
        processes.append(
            (subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log), log)
        )
    try:
        codes = [process.wait(timeout=TIMEOUT_S) for process, _ in processes]
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.kill()
            log.close()
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], "\n\n".join(log[-3000:] for log in logs)

    weights = [np.load(tmp_path / f"weights{i}.npz") for i in range(2)]
    assert len(weights[0].files) == len(weights[1].files) > 0
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)

    reports = [json.loads((tmp_path / f"report{i}.json").read_text()) for i in range(2)]
    assert [r["is_chief"] for r in reports] == [True, False]
    assert sorted(Path(uri).name for uri in reports[0]["published"]) == [
        "metadata.json",
        "model.keras",
    ]
    assert reports[1]["published"] == []
    assert sorted(p.name for p in output.iterdir()) == [
        "checkpoints",
        "logs",
        "metadata.json",
        "model.keras",
    ]
    metadata = json.loads((output / "metadata.json").read_text())
    assert (metadata["strategy"], metadata["workers"], metadata["replicas"]) == (
        "multi_worker",
        2,
        2,
    )
    assert metadata["global_batch_size"] == 4 and metadata["steps"] == 3
    assert "ckpt-2.index" in {p.name for p in (output / "checkpoints").iterdir()}
    assert "2 replica(s), global batch 4" in logs[0]


def test_two_replicas_step_equals_one_device_on_the_global_batch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", TWO_REPLICAS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stdout + result.stderr[-3000:]
