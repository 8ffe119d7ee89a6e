"""The change job's Beam step and :class:`ChangePairs`, the composite around it.

Per pair::

    ScenePair → ComputeChange (both maps read by windows, after warped onto before's grid when
                the grids differ; {pair}_change.tif, then {pair}_change.json) → its record
              or one error line naming the map and why (``errors``)

A pair's JSON is written after its COG, so a pair is done when its JSON exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import Metrics

from pipelines.answers.areas import AreaError
from pipelines.answers.change import ScenePair, compute_change
from pipelines.core.errors import BadInputError, ErrorRecord

STAGE = "change"
METRICS_NAMESPACE = "landcover.change"
PAIRS_DONE = "pairs_done"
PAIRS_FAILED = "pairs_failed"
ERRORS = "errors"


class ComputeChange(beam.DoFn):
    """A pair → its change record (main output) or an error line (``errors``)."""

    def __init__(self, output_uri: str, gsd_m: float | None) -> None:
        self.output_uri, self.gsd_m = output_uri, gsd_m
        self.done = Metrics.counter(METRICS_NAMESPACE, PAIRS_DONE)
        self.failed = Metrics.counter(METRICS_NAMESPACE, PAIRS_FAILED)

    def process(self, pair: ScenePair) -> Iterator[Any]:
        try:
            record = compute_change(pair, self.output_uri, gsd_m=self.gsd_m)
        except (BadInputError, AreaError) as error:
            self.failed.inc()
            uri = error.uri if isinstance(error, BadInputError) else pair.before_uri
            reason = error.reason if isinstance(error, BadInputError) else str(error)
            line = ErrorRecord(uri=uri, reason=reason, stage=STAGE, scene_id=pair.pair_id)
            yield beam.pvalue.TaggedOutput(ERRORS, line.to_json())
            return
        self.done.inc()
        yield record


class ChangePairs(beam.PTransform):
    """Pairs → change records (main output ``written``) and error lines (``errors``)."""

    def __init__(self, output_uri: str, gsd_m: float | None = None) -> None:
        super().__init__()
        self.output_uri, self.gsd_m = output_uri, gsd_m

    def expand(self, pairs: beam.PCollection) -> dict[str, beam.PCollection]:
        results = (
            pairs
            | "Spread" >> beam.Reshuffle()
            | "Change"
            >> beam.ParDo(ComputeChange(self.output_uri, self.gsd_m)).with_outputs(
                ERRORS, main="written"
            )
        )
        return {"written": results.written, "errors": results[ERRORS]}
