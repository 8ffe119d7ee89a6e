"""What a preprocessing run depends on, recorded in its manifest as ``options``.

Importing this module loads neither Beam nor TensorFlow: the flows and the command line build
and validate options without paying for the job's imports. The defaults live here only: the
command line and the flows take them from :meth:`PreprocessOptions.default`.
"""

from __future__ import annotations

import dataclasses
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
    # [0, 1]: 0 puts every scene in train, 1 every scene in val (a held-out-only dataset);
    # in between, the split rule guarantees a scene of each split (pipelines.core.splits).
    val_fraction: float = 0.1
    seed: int = 0
    record_format: RecordFormat = DEFAULT_FORMAT
    num_shards: int = 0  # 0: the runner decides (no shuffle of the patches)

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of one option, for parsers and flows that must not restate it."""
        for option in dataclasses.fields(cls):
            if option.name == name and option.default is not dataclasses.MISSING:
                return option.default
        raise KeyError(f"{name!r} is not a PreprocessOptions field with a default")

    def validate(self) -> PreprocessOptions:
        """Refuse values the job cannot run with (ValueError saying which and why); returns
        ``self`` so a caller can write ``options = PreprocessOptions(...).validate()``."""
        if not self.input_uri:
            raise ValueError("input_uri is empty: name the folder or gs:// prefix of the scenes")
        if not self.output_uri:
            raise ValueError("output_uri is empty: name the folder or gs:// prefix to write to")
        if isinstance(self.patch_size, bool) or not isinstance(self.patch_size, int):
            raise ValueError(f"patch_size must be an integer, got {self.patch_size!r}")
        if self.patch_size <= 0:
            raise ValueError(f"patch_size must be positive, got {self.patch_size}")
        if not 0.0 <= self.val_fraction <= 1.0:
            raise ValueError(f"val_fraction must be in [0, 1], got {self.val_fraction}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.num_shards < 0:
            raise ValueError(f"num_shards must be >= 0 (0 = auto), got {self.num_shards}")
        if not isinstance(self.record_format, RecordFormat):
            raise ValueError(f"record_format must be a RecordFormat, got {self.record_format!r}")
        return self

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
