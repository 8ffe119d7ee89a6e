"""The train flow's logic (with fast fakes for the stages) and its pure helpers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from flows import tasks
from flows.layout import Layout
from flows.registry import read_promoted
from flows.train import labeled_inputs, paired_ids, train, val_scene_ids
from pipelines.core.manifest import Manifest
from pipelines.core.records import RecordFormat
from pipelines.core.tiling import PATCH_SIZE, TILE_BATCH_SIZE
from pipelines.io.records import write_manifest
from pipelines.predict.options import PredictOptions
from pipelines.preprocess.options import PreprocessOptions


def test_labeled_inputs_and_pairs() -> None:
    files = [
        ("1_sat.jpg", 10),
        ("1_mask.png", 2),
        ("2_sat.jpg", 9),
        ("x.txt", 1),
        ("3_mask.png", 1),
    ]
    assert labeled_inputs(files) == [f for f in files if f[0] != "x.txt"]
    assert paired_ids([name for name, _ in files]) == ["1"]


def test_val_ids_prefer_the_manifest_list() -> None:
    manifest = _manifest({"train": ["1"], "val": ["3", "2"]})
    assert val_scene_ids(manifest) == ["2", "3"]
    with pytest.raises(ValueError, match="re-run preprocess"):
        Manifest.from_dict({"scenes": {"train": 1, "val": 1}})


def _manifest(scene_ids: dict[str, list[str]], options: dict[str, Any] | None = None) -> Manifest:
    """A complete manifest listing which scenes went where (counts follow from the lists)."""
    return Manifest.build(
        patch_size=64,
        record_format=RecordFormat(),
        scene_ids=scene_ids,
        patches={split: 4 * len(ids) for split, ids in scene_ids.items()},
        options=options,
    )


class FakeStages:
    """Stand-ins for the Beam/TF stages: they write what the real ones write, instantly."""

    def __init__(self, scores: dict[str, float], baseline: float | None = None) -> None:
        self.scores, self.baseline = scores, baseline
        self.preprocess_calls: list[PreprocessOptions] = []
        self.fit_calls: list[dict[str, Any]] = []
        self.predict_calls: list[tuple[str, str, str]] = []
        self.predict_options: list[PredictOptions] = []

    def preprocess(self, options: PreprocessOptions, *, beam_args: list[str]) -> Manifest:
        self.preprocess_calls.append(options)
        ids = paired_ids([p.name for p in Path(options.input_uri).iterdir()])
        val, train_ids = ids[-2:], ids[:-2]  # like preprocess, list which scenes went where
        manifest = _manifest({"train": train_ids, "val": val}, options.to_dict())
        Path(options.output_uri).mkdir(parents=True, exist_ok=True)
        write_manifest(options.output_uri, manifest)
        return manifest

    def fit(self, config: dict[str, Any]) -> dict[str, Any]:
        self.fit_calls.append(config)
        metadata = {"arch": config["arch"], "val_miou": 0.1, "history": [{}] * config["epochs"]}
        Path(config["output"]).mkdir(parents=True, exist_ok=True)
        Path(config["output"], "metadata.json").write_text(json.dumps(metadata))
        # Promotion verifies the model file is there before it points at it.
        Path(config["output"], "model.keras").write_bytes(config["arch"].encode())
        return metadata

    def predict(
        self,
        model_uri: str,
        input_uri: str,
        output_uri: str,
        *,
        options: PredictOptions,
        **_: Any,
    ) -> dict[str, Any]:
        self.predict_calls.append((model_uri, input_uri, output_uri))
        self.predict_options.append(options)
        Path(output_uri).mkdir(parents=True, exist_ok=True)
        return {"predicted": 0, "skipped": 0, "failed": 0, "output": output_uri}

    def evaluate(self, pred_uri: str, truth_uri: str, output_uri: str, **_: Any) -> dict[str, Any]:
        name = Path(output_uri).name
        score = self.baseline if name.startswith("promoted-") else self.scores[name]
        Path(output_uri, "scenes").mkdir(parents=True, exist_ok=True)
        Path(output_uri, "confusion_matrix.png").write_bytes(b"png")
        Path(output_uri, "scenes", "1.png").write_bytes(b"png")
        return {
            "miou": score,
            "per_class_iou": {"urban": score, "agriculture": None},
            "per_class_dice": {"urban": score},
            "pixel_accuracy": 0.9,
        }

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("preprocess", "fit", "predict", "evaluate"):
            monkeypatch.setattr(tasks, name, getattr(self, name))


SMALL: dict[str, Any] = {
    "training": {"epochs": 2, "steps_per_epoch": 3, "base_filters": 4},
    "preprocessing": {"patch_size": 64, "val_fraction": 0.34},
}


def read_artifact(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:  # the latest version of the keyed artifact
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert found, f"no artifact {key}"
    return str(found[0].data)


def test_train_flow_preprocesses_once_trains_each_arch_and_promotes_the_best(
    prefect_harness: None, root_with_raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(root_with_raw)
    stages = FakeStages({"unet": 0.42, "resnet50_unet": 0.55, "deeplabv3plus": 0.5})
    stages.install(monkeypatch)

    result = train(root=root, **SMALL)

    assert len(stages.preprocess_calls) == 1 and result["preprocessed"]
    assert stages.preprocess_calls[0].patch_size == 64
    assert stages.preprocess_calls[0].input_uri == Layout(root).raw
    # every registered architecture by default, compared and the best promoted
    assert [c["arch"] for c in stages.fit_calls] == ["unet", "resnet50_unet", "deeplabv3plus"]
    layout = Layout(root)
    for config in stages.fit_calls:
        assert config["data"] == layout.records("default")
        assert config["output"] == layout.model_dir(config["arch"], result["run"])
        assert (config["epochs"], config["steps_per_epoch"], config["base_filters"]) == (2, 3, 4)
    # Val scenes: staged from raw/ with their truths, predicted by both models.
    assert result["val_scenes"]
    val_images = Path(result["report"], "val", "images")
    assert sorted(p.name for p in val_images.iterdir()) == [
        f"{i}_sat.jpg" for i in result["val_scenes"]
    ]
    assert {call[1] for call in stages.predict_calls} == {str(val_images)}
    assert set(stages.predict_options) == {PredictOptions()}  # predict's defaults
    pointer = read_promoted(root)
    assert result["promoted"] and pointer is not None
    assert pointer["arch"] == "resnet50_unet" and pointer["val_miou"] == pytest.approx(0.55)
    report = Path(result["report"], "report.md").read_text()
    assert "| urban | 0.420 | 0.420 | 0.550 | 0.550 |" in report
    assert "**Promoted** `resnet50_unet-" in report
    assert "scenes/1.png" in report
    assert read_artifact("landcover-training-report") == report

    # Same raw/ and options: no preprocessing; the promoted model is re-scored on the same
    # scenes (0.50 now) and the new unet (0.52) beats it, the new resnet (0.45) does not matter.
    stages.scores = {"unet": 0.52, "resnet50_unet": 0.45, "deeplabv3plus": 0.40}
    stages.baseline = 0.50
    again = train(root=root, **SMALL)
    assert len(stages.preprocess_calls) == 1 and not again["preprocessed"]
    assert any("promoted-resnet50_unet-" in call[2] for call in stages.predict_calls)
    pointer = read_promoted(root)
    assert again["promoted"] and pointer is not None and pointer["arch"] == "unet"
    assert pointer["previous"]["val_miou"] == pytest.approx(0.50)

    # Worse than the re-scored promoted model: kept.
    stages.scores = {"unet": 0.3, "resnet50_unet": 0.35, "deeplabv3plus": 0.3}
    stages.baseline = 0.52
    third = train(root=root, archs=("resnet50_unet",), **SMALL)
    assert not third["promoted"]
    assert read_promoted(root)["version"] == again["run"]  # type: ignore[index]

    # Different options: the records are rebuilt.
    train(root=root, **{**SMALL, "preprocessing": {"patch_size": 32, "val_fraction": 0.34}})
    assert len(stages.preprocess_calls) == 2


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"training": {"epochz": 3}}, "unknown training option"),
        ({"training": {"epochs": 0}}, "epochs must be >= 1"),
        ({"training": {"data": "/elsewhere"}}, "set by the flow"),
        ({"preprocessing": {"patch": 64}}, "unknown preprocessing option"),
        ({"preprocessing": {"record_format": {"codec": "jpeg"}}}, "codec"),
        # A typed parameter: Prefect rejects it before the flow even starts.
        ({"inference": {"tile": 64, "overlap": 48}}, "overlap must be in"),
    ],
)
def test_a_bad_option_fails_before_any_work(
    prefect_harness: None,
    root_with_raw: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    error: str,
) -> None:
    stages = FakeStages({})
    stages.install(monkeypatch)
    from prefect.exceptions import ParameterTypeError

    with pytest.raises((ValueError, ParameterTypeError), match=error):
        train(root=str(root_with_raw), **options)
    assert stages.preprocess_calls == [] and stages.fit_calls == []


def test_option_groups_arrive_as_json_and_default_once(
    prefect_harness: None, root_with_raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a deployment passes them: plain JSON, validated into the typed options."""
    from models.train.config import TrainConfig

    stages = FakeStages({"unet": 0.4})
    stages.install(monkeypatch)
    parameters = train.validate_parameters(
        {
            "root": str(root_with_raw),
            "archs": ["unet"],
            "training": {"steps_per_epoch": "2"},
            "preprocessing": {"record_format": {"codec": "png", "compression": "none"}},
            "inference": {"tile": 64, "overlap": 16},
        }
    )
    tiny = PredictOptions(tile=64, overlap=16, batch_size=TILE_BATCH_SIZE)
    assert parameters["inference"] == tiny
    train(**parameters)
    (config,) = stages.fit_calls
    # The flow's own choice (FLOW_TRAINING), the override (a string coerced), the rest
    # TrainConfig's defaults, and the seed is not borrowed from preprocessing.
    assert (config["epochs"], config["batch_size"]) == (10, 8)
    assert config["steps_per_epoch"] == 2
    defaults = TrainConfig(data="d", output="o")
    assert (config["learning_rate"], config["seed"]) == (defaults.learning_rate, defaults.seed)
    (options,) = stages.preprocess_calls
    assert options.record_format == RecordFormat("png", "none")
    assert options.patch_size == PATCH_SIZE
    assert stages.predict_options == [tiny]


def test_val_ids_recomputed_match_what_preprocess_wrote(
    root_with_raw: Path, tmp_path: Path
) -> None:
    """The recomputed split equals the scenes preprocessing really put in the val shards."""
    from pipelines.io.records import decode_patch, split_files
    from pipelines.preprocess.job import run_preprocess

    out = tmp_path / "records"
    manifest = run_preprocess(
        str(root_with_raw / "raw"), str(out), patch_size=64, val_fraction=0.34, seed=7
    )
    import tensorflow as tf

    fmt = manifest.record_format
    written = {
        decode_patch(bytes(record.numpy()), fmt)["scene_id"]
        for path in split_files(str(out), "val")
        for record in tf.data.TFRecordDataset(path, compression_type=fmt.tf_compression)
    }
    assert written and val_scene_ids(manifest) == sorted(written)
    shutil.rmtree(out)


def test_deployed_training_starts_one_run_per_arch_and_reads_their_metadata(
    prefect_harness: None, root_with_raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``train_deployment`` each arch becomes a deployment run (e.g. on a GPU pool)."""
    from flows.training import candidates

    stages = FakeStages({"unet": 0.4, "resnet50_unet": 0.3, "deeplabv3plus": 0.2})
    stages.install(monkeypatch)
    started: list[tuple[str, dict[str, Any]]] = []

    def start_deployment(name: str, parameters: dict[str, Any]) -> str:
        started.append((name, parameters))
        stages.fit({**parameters["config"], "arch": parameters["arch"]})  # the remote run
        return f"run-{parameters['arch']}"

    monkeypatch.setattr(tasks, "start_deployment", start_deployment)
    monkeypatch.setattr(
        candidates, "wait_for_runs", lambda runs, poll_s=10.0: dict.fromkeys(runs, "COMPLETED")
    )
    result = train(root=str(root_with_raw), train_deployment="train-model/landcover", **SMALL)
    assert [(n, p["arch"]) for n, p in started] == [
        ("train-model/landcover", "unet"),
        ("train-model/landcover", "resnet50_unet"),
        ("train-model/landcover", "deeplabv3plus"),
    ]
    assert started[0][1]["config"]["output"] == Layout(str(root_with_raw)).model_dir(
        "unet", result["run"]
    )
    assert result["promoted"] and read_promoted(str(root_with_raw))["arch"] == "unet"  # type: ignore[index]

    monkeypatch.setattr(
        candidates, "wait_for_runs", lambda runs, poll_s=10.0: dict.fromkeys(runs, "FAILED")
    )
    with pytest.raises(RuntimeError, match="did not complete"):
        train(root=str(root_with_raw), train_deployment="train-model/landcover", **SMALL)


def test_the_up_to_date_check_reads_the_folder_training_reads(
    prefect_harness: None, tmp_path: Path
) -> None:
    """One answer to "which folder is the dataset": the published version, else a legacy one."""
    from flows.train import published_manifest
    from pipelines.io import versions
    from pipelines.io.records import resolve_dataset

    dataset = Layout(str(tmp_path)).records("default")
    assert published_manifest(dataset) is None  # nothing published: preprocess runs
    legacy = _manifest({"train": ["1"], "val": ["2"]})
    Path(dataset).mkdir(parents=True)
    write_manifest(dataset, legacy)  # a pre-versions dataset: its manifest in the root
    assert published_manifest(dataset) == legacy.to_dict()
    assert resolve_dataset(dataset) == dataset

    version_id, folder = versions.new_version(dataset)
    published = _manifest({"train": ["1", "3"], "val": ["2"]})
    Path(folder).mkdir(parents=True)
    write_manifest(folder, published)
    versions.publish(dataset, version_id)
    # The published version wins over the legacy manifest still in the root, for both readers.
    assert published_manifest(dataset) == published.to_dict() != legacy.to_dict()
    assert resolve_dataset(dataset) == folder
    # A pointer to a version that is gone: training refuses it, the flow preprocesses again.
    Path(folder, "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="points at version"):
        resolve_dataset(dataset)
    assert published_manifest(dataset) is None


def _label_tif(path: Path, class_ids: Any, compress: str = "deflate") -> None:
    import rasterio

    profile = {"driver": "GTiff", "height": class_ids.shape[0], "width": class_ids.shape[1]}
    with rasterio.open(path, "w", count=1, dtype="uint8", compress=compress, **profile) as dst:
        dst.write(class_ids, 1)


def test_geotiff_labels_are_fingerprinted_and_staged_as_they_are(
    prefect_harness: None, root_with_raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``{id}_sat.jpg`` + ``{id}_mask.tif`` scenes: the fingerprint covers the ``_mask.tif``
    files (a relabelled scene is preprocessed again) and the val staging copies the label file
    each scene has (it copied ``{id}_mask.png``, which these scenes do not have)."""
    import numpy as np
    from PIL import Image

    from pipelines.core.palette import decode_mask

    raw = root_with_raw / "raw"
    for mask in sorted(raw.glob("*_mask.png")):
        ids = decode_mask(np.asarray(Image.open(mask).convert("RGB")))
        _label_tif(raw / mask.name.replace("_mask.png", "_mask.tif"), ids)
        mask.unlink()
    assert labeled_inputs([("1_mask.tif", 5), ("1_sat.jpg", 9), ("1_mask.tfw", 1)]) == [
        ("1_mask.tif", 5),
        ("1_sat.jpg", 9),
    ]
    stages = FakeStages({"unet": 0.4})
    stages.install(monkeypatch)
    result = train(root=str(root_with_raw), archs=("unet",), **SMALL)
    assert result["preprocessed"] and result["val_scenes"]
    truth = Path(result["report"], "val", "truth")
    assert sorted(p.name for p in truth.iterdir()) == [
        f"{i}_mask.tif" for i in result["val_scenes"]
    ]

    assert not train(root=str(root_with_raw), archs=("unet",), **SMALL)["preprocessed"]
    first = sorted(raw.glob("*_mask.tif"))[0]
    _label_tif(first, np.zeros((128, 128), np.uint8), compress="lzw")  # relabelled
    assert train(root=str(root_with_raw), archs=("unet",), **SMALL)["preprocessed"]
    assert len(stages.preprocess_calls) == 2
