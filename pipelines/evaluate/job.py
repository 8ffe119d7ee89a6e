"""Score predicted masks against ground truth the DeepGlobe way, and draw what the scores mean.

``evaluate`` pairs ``{id}_mask.png`` files of a prediction folder and a truth folder, decodes both
with the challenge rule (``palette.decode_mask``: threshold 128, palette lookup, off-palette →
unknown) and accumulates ONE confusion matrix over all pixels of all scenes. Every score comes
from that matrix through ``pipelines.core.metrics`` (the single definition shared with training):
mIoU over the active classes present in truth or prediction, truth-``unknown`` pixels ignored,
predicted ``unknown`` counted wrong; per-class IoU and Dice; pixel accuracy.

Outputs under ``output_uri``: ``metrics.json``, ``confusion_matrix.png`` and, when the scene
images are given, ``scenes/{id}.png`` side by side (image | truth | prediction [| second
prediction]), with a row of per-class probability maps when the prediction folder holds
``{id}_probs.npz`` (``landcover predict --probabilities``), like the original write-up's figures.
Unpaired masks are listed in ``metrics.json`` (``unmatched``), and masks that cannot be decoded
or whose size differs from their truth go to ``errors/evaluate-*.jsonl``; neither is dropped
silently.

The pictures are drawn by ``pipelines.evaluate.pictures``; scene images are found and decoded
by ``pipelines.io.scenes``, exactly as batch inference reads them. This module reads, scores,
writes and formats the report table.

Plain Python rather than Beam: scoring is a sum over scenes that a loop reads at disk speed
(~0.2 s a 2448² pair); only pictures cost more, and they are optional.

Python API: :func:`evaluate`. CLI: ``landcover evaluate``.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import numpy as np

from pipelines.core import metrics
from pipelines.core.errors import ERRORS_DIR, BadInputError, ErrorRecord
from pipelines.core.naming import MASK_SUFFIX, PROBS_SUFFIX, mask_id_of
from pipelines.core.palette import ACTIVE_CLASSES, CLASS_NAMES, NUM_CLASSES
from pipelines.evaluate.cli import DEFAULT_LABELS
from pipelines.evaluate.pictures import confusion_picture, scene_picture
from pipelines.io import storage
from pipelines.io.imaging import decode_mask_bytes
from pipelines.io.scenes import decode_scene, find_scenes

STAGE = "evaluate"
METRICS_NAME = "metrics.json"
CONFUSION_NAME = "confusion_matrix.png"
SCENES_DIR = "scenes"


def masks_by_id(folder_uri: str) -> dict[str, str]:
    """``{id: uri}`` of the ``{id}_mask.png`` files directly under a folder."""
    storage.check_readable_root(folder_uri)
    uris = storage.match(storage.join(folder_uri, f"*{MASK_SUFFIX}"))
    return {scene_id: uri for uri in uris if (scene_id := mask_id_of(uri)) is not None}


def _read_mask(uri: str) -> np.ndarray:
    try:
        data = storage.read_bytes(uri)
    except FileNotFoundError:
        raise BadInputError(uri, "file vanished before it could be read") from None
    return decode_mask_bytes(data, uri)


def _scene_scores(cm: np.ndarray) -> dict[str, float | None]:
    report = metrics.metrics_report(cm)
    return {"miou": report["miou"], "pixel_accuracy": report["pixel_accuracy"]}


def _scene_images(images_uri: str) -> dict[str, str]:
    return {scene.scene_id: scene.uri for scene in find_scenes(images_uri) if not scene.problem}


def _load_probabilities(pred_uri: str, scene_id: str) -> np.ndarray | None:
    uri = storage.join(pred_uri, f"{scene_id}{PROBS_SUFFIX}")
    if not storage.exists(uri):
        return None
    with np.load(io.BytesIO(storage.read_bytes(uri))) as data:
        return np.asarray(data["probabilities"], dtype=np.float32)


# ---- evaluation ------------------------------------------------------------------------------


def evaluate(
    pred_uri: str,
    truth_uri: str,
    output_uri: str,
    *,
    images_uri: str | None = None,
    second_pred_uri: str | None = None,
    labels: tuple[str, ...] = DEFAULT_LABELS,
) -> dict[str, Any]:
    """Score ``pred_uri`` against ``truth_uri``; write and return the ``metrics.json`` dict.

    Top-level metrics are the first prediction's; a second prediction (``second_pred_uri``)
    is scored on the same truths under ``second_prediction`` and drawn in the pictures.
    ``labels`` name the prediction(s) in pictures and tables.
    """
    label = labels[0] if labels else DEFAULT_LABELS[0]
    second_label = labels[1] if len(labels) > 1 else DEFAULT_LABELS[1]
    predictions = masks_by_id(pred_uri)
    truths = masks_by_id(truth_uri)
    seconds = masks_by_id(second_pred_uri) if second_pred_uri else {}
    images = _scene_images(images_uri) if images_uri else {}
    paired = sorted(predictions.keys() & truths.keys())

    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    cm_second = np.zeros_like(cm)
    per_scene: dict[str, dict[str, Any]] = {}
    errors: list[ErrorRecord] = []
    second_scenes = 0
    pictures: list[str] = []
    for scene_id in paired:
        try:
            truth = _read_mask(truths[scene_id])
            predicted = _read_mask(predictions[scene_id])
            if predicted.shape != truth.shape:
                raise BadInputError(
                    predictions[scene_id],
                    f"size {predicted.shape[1]}x{predicted.shape[0]} differs from the truth's "
                    f"{truth.shape[1]}x{truth.shape[0]}",
                )
        except BadInputError as error:
            errors.append(ErrorRecord.from_error(error, STAGE, scene_id))
            continue
        scene_cm = metrics.confusion_matrix(truth, predicted)
        cm += scene_cm
        per_scene[scene_id] = _scene_scores(scene_cm)
        second: np.ndarray | None = None
        if scene_id in seconds:
            try:
                second = _read_mask(seconds[scene_id])
                if second.shape != truth.shape:
                    raise BadInputError(seconds[scene_id], "size differs from the truth's")
            except BadInputError as error:
                errors.append(ErrorRecord.from_error(error, STAGE, scene_id))
                second = None
            else:
                second_cm = metrics.confusion_matrix(truth, second)
                cm_second += second_cm
                second_scenes += 1
                per_scene[scene_id]["second_prediction"] = _scene_scores(second_cm)
        if images_uri and scene_id in images:
            try:
                image = decode_scene(storage.read_bytes(images[scene_id]), images[scene_id])
            except BadInputError as error:
                errors.append(ErrorRecord.from_error(error, STAGE, scene_id))
                image = None
            panels: list[tuple[str, np.ndarray | None]] = [(label, predicted)]
            if second_pred_uri:
                panels.append((second_label, second))
            picture_uri = storage.join(output_uri, SCENES_DIR, f"{scene_id}.png")
            storage.write_bytes(
                picture_uri,
                scene_picture(
                    scene_id, image, truth, panels, _load_probabilities(pred_uri, scene_id)
                ),
            )
            pictures.append(picture_uri)

    report: dict[str, Any] = metrics.metrics_report(cm)
    report.update(
        scenes=len(per_scene),
        label=label,
        pred=pred_uri,
        truth=truth_uri,
        unmatched={
            "predictions_without_truth": sorted(predictions.keys() - truths.keys()),
            "truths_without_prediction": sorted(truths.keys() - predictions.keys()),
        },
        failed=len(errors),
        per_scene=per_scene,
        pictures=len(pictures),
    )
    if images_uri:
        report["scenes_without_image"] = sorted(set(per_scene) - images.keys())
    if second_pred_uri:
        report["second_prediction"] = {
            **metrics.metrics_report(cm_second),
            "label": second_label,
            "pred": second_pred_uri,
            "scenes": second_scenes,
            "truths_without_prediction": sorted(set(per_scene) - seconds.keys()),
        }
    if errors:
        errors_uri = storage.join(
            output_uri, ERRORS_DIR, f"{STAGE}-{time.strftime('%Y%m%dT%H%M%S')}.jsonl"
        )
        storage.write_text(errors_uri, "".join(record.to_json() + "\n" for record in errors))
        report["errors"] = errors_uri
    miou = "n/a" if report["miou"] is None else f"{report['miou']:.3f}"
    title = f"{label}: mIoU {miou} over {len(per_scene)} scenes"
    storage.write_bytes(storage.join(output_uri, CONFUSION_NAME), confusion_picture(cm, title))
    storage.write_text(storage.join(output_uri, METRICS_NAME), json.dumps(report, indent=2) + "\n")
    return report


def _fmt(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.3f}"


def format_table(report: dict[str, Any]) -> str:
    """The report as a fixed-width table a person can read in a terminal."""
    cm = np.asarray(report["confusion_matrix"], dtype=np.int64)
    columns = [(report.get("label", "prediction"), report)]
    if "second_prediction" in report:
        columns.append((report["second_prediction"]["label"], report["second_prediction"]))
    header = f"{'class':<12}" + "".join(f"{name[:17]:>18}" for name, _ in columns)
    lines = [header, f"{'':<12}" + "     IoU    Dice   " * len(columns) + "  truth px"]
    for c in ACTIVE_CLASSES:
        name = CLASS_NAMES[c]
        cells = "".join(
            f"  {_fmt(r['per_class_iou'][name])}  {_fmt(r['per_class_dice'][name])}  "
            for _, r in columns
        )
        lines.append(f"{name:<12}{cells}{int(cm[c].sum()):>10,}")
    lines.append(f"{'mIoU':<12}" + "".join(f"  {_fmt(r['miou'])}          " for _, r in columns))
    lines.append(
        f"{'pixel acc.':<12}"
        + "".join(f"  {_fmt(r['pixel_accuracy'])}          " for _, r in columns)
    )
    unmatched = report["unmatched"]
    lines.append(
        f"scenes scored: {report['scenes']}; failed: {report['failed']}; "
        f"predictions without truth: {len(unmatched['predictions_without_truth'])}; "
        f"truths without prediction: {len(unmatched['truths_without_prediction'])}"
    )
    return "\n".join(lines)
