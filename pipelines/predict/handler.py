"""The RunInference model handler: uint8 tiles in, float32 class probabilities out.

The predict job reaches Keras only through the model layer's serving API
(``models.serving.load_model`` / ``predict_tiles``), imported inside the methods that run on a
worker: building the pipeline graph, or parsing ``landcover predict`` flags, loads no TensorFlow.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from apache_beam.metrics.metric import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from pipelines.core.tiling import TILE_BATCH_SIZE

# The namespace of every counter the predict job keeps, the handler's and Beam's own
# (``load_model_latency_milli_secs``, reported under the handler's namespace) included.
METRICS_NAMESPACE = "landcover.predict"
FORWARD_US = "forward_us"  # microseconds spent in the forward pass alone


class KerasSegmentationHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    """RunInference handler for the project's Keras segmentation models.

    Beam's ``TFModelHandlerTensor`` imports ``tensorflow_hub`` and loads with
    ``tf.keras``, which cannot read Keras 3 ``.keras`` files, hence this one. Examples are uint8
    tiles (H, W, 3): 4× smaller than float32 while buffered and batched, and the normalisation
    is applied to the whole batch by the serving API (the shared ``normalize_image``).
    Predictions are float32 class probabilities (H, W, 7).

    Time spent in the forward pass alone is counted in the ``forward_us`` counter, so a run can
    tell the model's share of its wall time from the pipeline's (decode, tiling, stitching,
    encoding, I/O).
    """

    def __init__(
        self, model_uri: str, batch_size: int = TILE_BATCH_SIZE, tta: str = "none"
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        super().__init__(min_batch_size=batch_size, max_batch_size=batch_size)
        self.model_uri = model_uri
        self.batch_size = batch_size
        self.tta = tta

    def load_model(self) -> Any:
        from models import serving  # TensorFlow: only in the worker that runs the model

        return serving.load_model(self.model_uri)

    def run_inference(
        self,
        batch: Sequence[np.ndarray],
        model: Any,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        from models.serving import predict_tiles

        tiles = np.stack(batch)
        start = time.perf_counter()
        probabilities = predict_tiles(model, tiles, tta=self.tta)
        Metrics.counter(METRICS_NAMESPACE, FORWARD_US).inc(int((time.perf_counter() - start) * 1e6))
        return [PredictionResult(tile, probabilities[i]) for i, tile in enumerate(batch)]

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(tile.nbytes for tile in batch)

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE
