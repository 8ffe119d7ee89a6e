"""Step 3 of the train flow: every candidate, and the promoted model, on the val scenes.

The val scenes are the ones preprocessing wrote to the val split (the manifest's
``scene_ids``). Their images and truth masks are copied into ``reports/<run>/val/`` (batch
inference and the evaluator read whole folders, and ``raw/`` holds every split); each candidate
predicts them with the same batch inference nightly runs use, and the evaluator scores the
masks into ``reports/<run>/<arch>/``. The promoted model is re-scored on the same scenes, so
promotion compares on equal footing (its stored score was measured on whatever val set existed
when it won). Without val scenes the candidates keep the score training measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flows import tasks
from flows.layout import Layout
from flows.logs import run_logger
from flows.training.candidates import Candidate
from pipelines.core.catalog import build_catalog
from pipelines.io import storage
from pipelines.predict.options import PredictOptions

PROMOTED_PREFIX = "promoted-"


@dataclass(frozen=True)
class ValScenes:
    """The val scenes, staged for batch inference and the evaluator."""

    ids: tuple[str, ...]
    images: str
    truth: str


@dataclass(frozen=True)
class Scores:
    """One model's evaluation on the val scenes (the evaluator's metrics and pictures)."""

    metrics: Mapping[str, Any]
    pictures: tuple[str, ...] = ()

    @property
    def miou(self) -> float | None:
        score = self.metrics.get("miou")
        return None if score is None else float(score)

    @property
    def per_class_iou(self) -> Mapping[str, Any] | None:
        return self.metrics.get("per_class_iou")


@dataclass(frozen=True)
class Evaluation:
    """What the run measured: each candidate on the val scenes, and the promoted model."""

    dataset: str
    report: str  # reports/<run>/
    val_ids: tuple[str, ...]
    scores: Mapping[str, Scores] = field(default_factory=dict)  # arch → (empty: no val scenes)
    baseline: float | None = None  # the promoted model on the same scenes, when it could be

    def report_uri(self, arch: str) -> str:
        return storage.join(self.report, arch)

    def of(self, arch: str) -> Scores | None:
        return self.scores.get(arch)

    def score(self, candidate: Candidate) -> float | None:
        """The candidate's mIoU on the val scenes, else the one its training measured."""
        scored = self.scores.get(candidate.arch)
        return scored.miou if scored is not None else candidate.training_val_miou

    @property
    def evaluated_on(self) -> str:
        return f"{len(self.val_ids)} val scenes of records/{self.dataset}"


def report_pictures(folder: str) -> tuple[str, ...]:
    """The evaluator's pictures in a report folder: confusion matrix, then one per scene."""
    found = storage.match_in(folder, "*.png")
    found += storage.match_in(storage.join(folder, "scenes"), "*.png")
    return tuple(sorted(set(found), key=lambda uri: ("/scenes/" in uri, uri)))


def stage_val_scenes(layout: Layout, ids: Sequence[str], report: str) -> ValScenes:
    """Copy the val scenes' images (with their world files) and label files, whatever their
    format, into ``<report>/val/images`` and ``<report>/val/truth``.

    Which files a scene has is the scene catalog's answer over ``raw/`` (``a_sat.jpg`` +
    ``a_mask.tif`` as well as DeepGlobe's pair); a val id that has no labeled scene in ``raw/``
    any more is a ValueError naming it.
    """
    base = storage.join(report, "val")
    images, truth = storage.join(base, "images"), storage.join(base, "truth")
    listed = build_catalog(name for name, _ in tasks.list_files(layout.raw))
    moves = []
    missing = []
    for scene_id in ids:
        scene = listed.get(scene_id)
        if scene is None or scene.image is None or scene.label is None:
            missing.append(scene_id)
            continue
        for name in (scene.image.uri, scene.world_file):
            if name:
                moves.append((storage.join(layout.raw, name), storage.join(images, name)))
        label = scene.label.uri
        moves.append((storage.join(layout.raw, label), storage.join(truth, label)))
    if missing:
        raise ValueError(
            f"val scenes without an image and a label in {layout.raw}: {', '.join(missing)}"
        )
    tasks.copy_files(moves)
    return ValScenes(tuple(ids), images, truth)


def predict_val(
    model_uri: str, val: ValScenes, output: str, inference: PredictOptions, beam_args: list[str]
) -> str:
    """Batch inference of one model over the staged val images; the masks' folder."""
    masks = storage.join(output, "masks")
    tasks.predict(model_uri, val.images, masks, options=inference, beam_args=beam_args)
    return masks


def evaluate_candidates(
    layout: Layout,
    report: str,
    dataset: str,
    candidates: Sequence[Candidate],
    val_ids: Sequence[str],
    promoted: Mapping[str, Any] | None,
    inference: PredictOptions,
    beam_args: list[str],
) -> Evaluation:
    """Predict and score every candidate (and ``promoted``, the current pointer) on the val
    scenes; each candidate's pictures show its masks beside the next candidate's."""
    logger = run_logger()
    if not val_ids:
        logger.warning("no val scenes in records/%s: comparing by training val mIoU", dataset)
        return Evaluation(dataset, report, ())
    logger.info("evaluating on %d val scenes: %s", len(val_ids), ", ".join(val_ids))
    val = stage_val_scenes(layout, val_ids, report)
    archs = [c.arch for c in candidates]
    masks = {
        c.arch: predict_val(c.model_uri, val, storage.join(report, c.arch), inference, beam_args)
        for c in candidates
    }
    scores = {}
    for arch in archs:
        others = [a for a in archs if a != arch]
        folder = storage.join(report, arch)
        metrics = tasks.evaluate(
            masks[arch],
            val.truth,
            folder,
            images_uri=val.images,
            second_pred_uri=masks[others[0]] if others else None,
            labels=(arch, *others[:1]),
        )
        scores[arch] = Scores(metrics, report_pictures(folder))
    baseline = None
    if promoted is not None:
        baseline = evaluate_promoted(promoted, val, report, inference, beam_args)
    return Evaluation(dataset, report, tuple(val_ids), scores, baseline)


def evaluate_promoted(
    promoted: Mapping[str, Any],
    val: ValScenes,
    report: str,
    inference: PredictOptions,
    beam_args: list[str],
) -> float | None:
    """The promoted model's mIoU on these val scenes, or ``None`` if it cannot be scored."""
    name = PROMOTED_PREFIX + str(promoted.get("model_version", "model"))
    folder = storage.join(report, name)
    try:
        masks = predict_val(str(promoted["model_uri"]), val, folder, inference, beam_args)
        metrics = tasks.evaluate(masks, val.truth, folder)
    except Exception as error:  # a lost or unreadable model must not block a new one
        run_logger().warning(
            "could not re-evaluate the promoted model (%s); using its stored score", error
        )
        return None
    score = metrics.get("miou")
    return None if score is None else float(score)
