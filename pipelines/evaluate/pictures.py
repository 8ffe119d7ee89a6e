"""Pictures of an evaluation: the confusion matrix, and each scene beside its truth.

Rendering only (NumPy arrays in, PNG bytes out); reading masks and writing files is the job's.
Drawn with matplotlib's object API on the Agg canvas, never ``pyplot``: no global figure state,
no display needed, safe in a worker. Class colours and names come from the palette, so a
picture's legend is the DeepGlobe one.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipelines.core.palette import CLASS_COLORS, CLASS_NAMES, NUM_CLASSES, encode_mask

# Longest side of a panel in the pictures; a 2448² scene is shown at 1/4 (nearest pixels).
PREVIEW_SIDE = 612


def preview(array: np.ndarray) -> np.ndarray:
    """Nearest-pixel downsample to at most ``PREVIEW_SIDE``: class colours stay exact."""
    step = max(1, math.ceil(max(array.shape[:2]) / PREVIEW_SIDE))
    return array[::step, ::step]


def _figure_png(figure: Any) -> bytes:
    """A matplotlib ``Figure`` → PNG bytes, rendered by an Agg canvas attached here."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def legend_handles() -> list[Any]:
    """One colour patch per class, palette order: the legend every scene picture carries."""
    from matplotlib.patches import Patch

    return [
        Patch(facecolor=CLASS_COLORS[c] / 255.0, edgecolor="0.5", label=CLASS_NAMES[c])
        for c in range(NUM_CLASSES)
    ]


def confusion_picture(cm: np.ndarray, title: str) -> bytes:
    """Row-normalised confusion matrix (share of each truth class), counts in the cells."""
    from matplotlib.figure import Figure  # Agg through FigureCanvasAgg: no pyplot global state

    counts = np.asarray(cm, dtype=np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    figure = Figure(figsize=(8, 7))
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of truth row")
    axes.set_xticks(range(NUM_CLASSES), CLASS_NAMES, rotation=45, ha="right")
    axes.set_yticks(range(NUM_CLASSES), CLASS_NAMES)
    axes.set_xlabel("predicted")
    axes.set_ylabel("truth (unknown row is not scored)")
    axes.set_title(title)
    for t in range(NUM_CLASSES):
        for p in range(NUM_CLASSES):
            if counts[t, p]:
                colour = "white" if shares[t, p] > 0.5 else "black"
                text = f"{shares[t, p]:.0%}\n{int(counts[t, p]):,}"
                axes.text(p, t, text, ha="center", va="center", fontsize=7, color=colour)
    return _figure_png(figure)


def scene_picture(
    scene_id: str,
    image: np.ndarray | None,
    truth: np.ndarray,
    predictions: Sequence[tuple[str, np.ndarray | None]],
    probabilities: np.ndarray | None = None,
) -> bytes:
    """image | truth | prediction(s) side by side; per-class probability maps below if given."""
    from matplotlib.figure import Figure

    panels: list[tuple[str, np.ndarray | None]] = [("image", image), ("truth", truth)]
    panels += list(predictions)
    columns = len(panels)
    prob_rows = 1 if probabilities is not None else 0
    figure = Figure(figsize=(4 * columns, 4.4 + 2.2 * prob_rows))
    grid = figure.add_gridspec(1 + prob_rows, 1, height_ratios=[2, 1][: 1 + prob_rows])
    top = grid[0].subgridspec(1, columns)
    for column, (label, data) in enumerate(panels):
        axes = figure.add_subplot(top[0, column])
        axes.set_axis_off()
        axes.set_title(label)
        if data is None:
            axes.text(0.5, 0.5, "not available", ha="center", va="center")
            continue
        rgb = data if data.ndim == 3 else encode_mask(data)
        axes.imshow(preview(rgb), interpolation="nearest")
    if probabilities is not None:
        bottom = grid[1].subgridspec(1, NUM_CLASSES)
        for c in range(NUM_CLASSES):
            axes = figure.add_subplot(bottom[0, c])
            axes.set_axis_off()
            axes.set_title(CLASS_NAMES[c], fontsize=9)
            axes.imshow(preview(probabilities[..., c]), cmap="viridis", vmin=0.0, vmax=1.0)
    figure.legend(handles=legend_handles(), loc="lower center", ncol=NUM_CLASSES, fontsize=9)
    figure.suptitle(f"scene {scene_id}")
    return _figure_png(figure)
