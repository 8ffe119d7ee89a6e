"""What a preprocessing run depends on, recorded in its manifest as ``options``.

Importing this module loads neither Beam nor TensorFlow: the flows and the command line build
and validate options without paying for the job's imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.core.records import RecordFormat
from pipelines.core.tiling import PATCH_SIZE

# raw/none by measurement: see RecordFormat and `landcover bench preprocess --all-formats`.
DEFAULT_FORMAT = RecordFormat()


@dataclass(frozen=True)
class PreprocessOptions:
    """Everything a run depends on; recorded in the manifest as ``options``."""

    input_uri: str
    output_uri: str
    patch_size: int = PATCH_SIZE
    val_fraction: float = 0.1
    seed: int = 0
    record_format: RecordFormat = DEFAULT_FORMAT
    num_shards: int = 0  # 0: the runner decides (no shuffle of the patches)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input_uri,
            "output": self.output_uri,
            "patch_size": self.patch_size,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "record_format": self.record_format.to_dict(),
            "num_shards": self.num_shards or "auto",
        }
