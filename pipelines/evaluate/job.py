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
import math
import time
from typing import Any

import numpy as np
from rasterio.windows import Window

from pipelines.core import metrics
from pipelines.core.catalog import LABEL, Catalog, build_catalog, scene_file, scene_key
from pipelines.core.errors import ERRORS_DIR, BadInputError, ErrorRecord
from pipelines.core.naming import PROBS_SUFFIX
from pipelines.core.palette import ACTIVE_CLASSES, CLASS_NAMES, NUM_CLASSES, UNKNOWN, MaskRule
from pipelines.evaluate.cli import DEFAULT_LABELS
from pipelines.evaluate.pictures import confusion_picture, scene_picture
from pipelines.io import storage
from pipelines.io.imaging import dataset_class_ids, strict_decoding, valid_pixels
from pipelines.io.labeled import same_crs
from pipelines.io.raster_read import RasterInfo, RasterReader, open_raster
from pipelines.io.scenes import decode_scene, find_scenes

STAGE = "evaluate"
METRICS_NAME = "metrics.json"
CONFUSION_NAME = "confusion_matrix.png"
SCENES_DIR = "scenes"
# Rows read at a time when scoring a pair: one strip of both files and its (int64) codes, so a
# 16384-px-wide pair holds ~8 MB of pixels and ~67 MB of codes at once, whatever its height.
STRIP_ROWS = 512
# How predictions are read: predict's PNG colours, or its COG's class ids (colour table = legend).
PREDICTION_RULE = MaskRule()


class NothingScoredError(ValueError):
    """The run scored no scene (no pairs, or every pair failed): the reason says which."""


def masks_by_id(folder_uri: str) -> dict[str, str]:
    """``{id: uri}`` of the label files (``{id}_mask.png|tif|tiff``) directly under a folder.

    Which files are a scene's label is the scene catalog's answer (any format, ids compared up
    to case and Unicode form); a second label of one id is left out here and reported by
    :func:`label_problems`.
    """
    return {s.scene_id: s.label.uri for s in _catalog(folder_uri).scenes if s.label is not None}


def _catalog(folder_uri: str) -> Catalog:
    storage.check_readable_root(folder_uri)
    return build_catalog(storage.list_files(folder_uri))


def label_problems(folder_uri: str) -> list[ErrorRecord]:
    """Label files of a folder the catalog could not use (a second label of one scene)."""
    return [
        ErrorRecord(p.uri, p.reason, STAGE, p.scene_id)
        for p in _catalog(folder_uri).problems
        if (found := scene_file(p.uri)) is not None and found.role == LABEL
    ]


def _grid_problem(pred: RasterInfo, truth: RasterInfo) -> str | None:
    """Why a prediction does not lie on its truth's grid (size, transform, CRS), or None.

    The rule preprocessing applies to an image and its label (``labeled.check_aligned``): the
    same size always; the same transform and CRS when both files are georeferenced.
    """
    if (pred.height, pred.width) != (truth.height, truth.width):
        return (
            f"size {pred.width}x{pred.height} differs from the truth's "
            f"{truth.width}x{truth.height} ({truth.uri})"
        )
    if not (pred.georeferenced and truth.georeferenced):
        return None  # a plain PNG on one side: pixel grids only (preprocess's rule too)
    pixel = max(abs(truth.transform[0]), abs(truth.transform[4]), 1e-12)
    if not all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=pixel * 1e-6)
        for a, b in zip(pred.transform, truth.transform, strict=True)
    ):
        return f"transform {pred.transform} differs from the truth's {truth.transform}"
    if (pred.crs is None) != (truth.crs is None) or (
        pred.crs is not None and truth.crs is not None and not same_crs(pred.crs, truth.crs)
    ):
        return f"CRS differs from the truth's ({truth.uri})"
    return None


def _class_ids(
    reader: RasterReader, rule: MaskRule, window: Window | None
) -> tuple[np.ndarray, np.ndarray]:
    """(class ids, valid) of a window: ids by ``rule``, valid by the file's nodata/alpha/mask."""
    ids = dataset_class_ids(reader.dataset, reader.uri, rule, window)
    return ids, valid_pixels(reader.dataset, reader.uri, window)


def score_pair(
    pred_uri: str, truth_uri: str, rule: MaskRule = PREDICTION_RULE, *, whole: bool = False
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """The confusion matrix of one prediction against its truth, read by strips of rows.

    Both files must share one grid (:func:`_grid_problem`; BadInputError naming the prediction
    otherwise). Pixels either file marks as no data are left out (scored as truth-``unknown``).
    ``whole``: also return the (truth, prediction) class ids of the whole scene, for pictures.
    """
    with strict_decoding(), open_raster(truth_uri) as truth, open_raster(pred_uri) as pred:
        problem = _grid_problem(pred.info, truth.info)
        if problem is not None:
            raise BadInputError(pred_uri, problem)
        height, width = truth.info.height, truth.info.width
        cm = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
        for row in range(0, height, STRIP_ROWS):
            window = Window(0, row, width, min(STRIP_ROWS, height - row))
            truth_ids, truth_valid = _class_ids(truth, rule, window)
            pred_ids, pred_valid = _class_ids(pred, PREDICTION_RULE, window)
            truth_ids[~(truth_valid & pred_valid)] = UNKNOWN
            cm += metrics.confusion_matrix(truth_ids, pred_ids)
        if not whole:
            return cm, None
        truth_ids, truth_valid = _class_ids(truth, rule, None)
        pred_ids, pred_valid = _class_ids(pred, PREDICTION_RULE, None)
        truth_ids[~(truth_valid & pred_valid)] = UNKNOWN
        return cm, (truth_ids, pred_ids)


def _scene_scores(cm: np.ndarray) -> dict[str, float | None]:
    report = metrics.metrics_report(cm)
    return {"miou": report["miou"], "pixel_accuracy": report["pixel_accuracy"]}


def _scene_images(images_uri: str) -> dict[str, str]:
    return {
        scene_key(scene.scene_id): scene.uri
        for scene in find_scenes(images_uri)
        if not scene.problem
    }


def _load_probabilities(pred_uri: str, scene_id: str) -> np.ndarray | None:
    uri = storage.join(pred_uri, f"{scene_id}{PROBS_SUFFIX}")
    if not storage.exists(uri):
        return None
    with np.load(io.BytesIO(storage.read_bytes(uri))) as data:
        return np.asarray(data["probabilities"], dtype=np.float32)


def _by_key(found: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {scene_key(scene_id): (scene_id, uri) for scene_id, uri in found.items()}


# ---- evaluation ------------------------------------------------------------------------------


def evaluate(
    pred_uri: str,
    truth_uri: str,
    output_uri: str,
    *,
    images_uri: str | None = None,
    second_pred_uri: str | None = None,
    labels: tuple[str, ...] = DEFAULT_LABELS,
    rule: MaskRule | None = None,
) -> dict[str, Any]:
    """Score ``pred_uri`` against ``truth_uri``; write and return the ``metrics.json`` dict.

    Predictions and truths are label files of any format the catalog knows (DeepGlobe PNGs,
    predict's COGs, GeoTIFF label rasters), paired by scene id; truths are read by ``rule``
    (``--mask-kind``/``--label-map``; default: colours for RGB, class ids for one band).
    Top-level metrics are the first prediction's; a second prediction (``second_pred_uri``)
    is scored on the same truths under ``second_prediction`` and drawn in the pictures.
    ``labels`` name the prediction(s) in pictures and tables.

    Raises :class:`NothingScoredError` (after writing ``metrics.json`` and the errors) when no
    scene could be scored, naming why.
    """
    rule = rule or MaskRule()
    label = labels[0] if labels else DEFAULT_LABELS[0]
    second_label = labels[1] if len(labels) > 1 else DEFAULT_LABELS[1]
    predictions = _by_key(masks_by_id(pred_uri))
    truths = _by_key(masks_by_id(truth_uri))
    seconds = _by_key(masks_by_id(second_pred_uri)) if second_pred_uri else {}
    images = _scene_images(images_uri) if images_uri else {}
    paired = sorted(predictions.keys() & truths.keys(), key=lambda k: truths[k][0])
    errors: list[ErrorRecord] = [*label_problems(pred_uri), *label_problems(truth_uri)]

    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    cm_second = np.zeros_like(cm)
    per_scene: dict[str, dict[str, Any]] = {}
    second_scenes = 0
    pictures: list[str] = []
    for key in paired:
        scene_id, truth_file = truths[key]
        pred_file = predictions[key][1]
        picture = bool(images_uri and key in images)
        try:
            scene_cm, arrays = score_pair(pred_file, truth_file, rule, whole=picture)
        except BadInputError as error:
            errors.append(ErrorRecord.from_error(error, STAGE, scene_id))
            continue
        cm += scene_cm
        per_scene[scene_id] = _scene_scores(scene_cm)
        second: np.ndarray | None = None
        if key in seconds:
            try:
                second_cm, second_arrays = score_pair(
                    seconds[key][1], truth_file, rule, whole=picture
                )
            except BadInputError as error:
                errors.append(ErrorRecord.from_error(error, STAGE, scene_id))
            else:
                second = None if second_arrays is None else second_arrays[1]
                cm_second += second_cm
                second_scenes += 1
                per_scene[scene_id]["second_prediction"] = _scene_scores(second_cm)
        if picture and arrays is not None:
            truth, predicted = arrays
            try:
                image = decode_scene(storage.read_bytes(images[key]), images[key])
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
            "predictions_without_truth": sorted(
                predictions[k][0] for k in predictions.keys() - truths.keys()
            ),
            "truths_without_prediction": sorted(
                truths[k][0] for k in truths.keys() - predictions.keys()
            ),
        },
        failed=len(errors),
        per_scene=per_scene,
        pictures=len(pictures),
    )
    if images_uri:
        report["scenes_without_image"] = sorted(s for s in per_scene if scene_key(s) not in images)
    if second_pred_uri:
        report["second_prediction"] = {
            **metrics.metrics_report(cm_second),
            "label": second_label,
            "pred": second_pred_uri,
            "scenes": second_scenes,
            "truths_without_prediction": sorted(
                s for s in per_scene if scene_key(s) not in seconds
            ),
        }
    if errors:
        errors_uri = storage.join(
            output_uri, ERRORS_DIR, f"{STAGE}-{time.strftime('%Y%m%dT%H%M%S')}.jsonl"
        )
        storage.write_text(errors_uri, "".join(record.to_json() + "\n" for record in errors))
        report["errors"] = errors_uri
    if not per_scene:
        report["reason"] = _nothing_scored(len(predictions), len(truths), len(paired), errors)
    miou = "n/a" if report["miou"] is None else f"{report['miou']:.3f}"
    title = f"{label}: mIoU {miou} over {len(per_scene)} scenes"
    storage.write_bytes(storage.join(output_uri, CONFUSION_NAME), confusion_picture(cm, title))
    storage.write_text(storage.join(output_uri, METRICS_NAME), json.dumps(report, indent=2) + "\n")
    if not per_scene:
        raise NothingScoredError(report["reason"])
    return report


def _nothing_scored(predictions: int, truths: int, paired: int, errors: list[ErrorRecord]) -> str:
    """Why a run scored no scene, in one line a person can act on."""
    found = f"{predictions} prediction(s) and {truths} truth(s) found"
    if not paired:
        return (
            f"no scene scored: {found}, none with the same scene id (label files are "
            "{id}_mask.png|tif|tiff)"
        )
    first = next((e for e in errors if e.scene_id), errors[0] if errors else None)
    example = f"; first: {first.uri}: {first.reason}" if first else ""
    return f"no scene scored: {found}, {paired} paired, every pair failed{example}"


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
