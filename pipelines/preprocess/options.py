"""What a preprocessing run depends on, recorded in its manifest as ``options``.

Importing this module loads neither Beam nor TensorFlow: the flows and the command line build
and validate options without paying for the job's imports. The defaults live here only: the
command line and the flows take them from :meth:`PreprocessOptions.default`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pipelines.core.gsd import check_gsd
from pipelines.core.palette import MASK_KINDS, LabelMap, MaskRule, check_label_map
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
    # [0, 1): 0 puts every scene in train; above 0 the split rule guarantees a scene of each
    # split (pipelines.core.splits). 1 would leave nothing to train on: refused.
    val_fraction: float = 0.1
    seed: int = 0
    record_format: RecordFormat = DEFAULT_FORMAT
    num_shards: int = 0  # 0: the runner decides (no shuffle of the patches)
    # How mask pixels become class ids (pipelines.core.palette.MaskRule): declared, never guessed.
    mask_kind: str = "auto"
    label_map: LabelMap | None = None  # raster value → class id; None: identity over 0..6
    # Ground sample distance (pipelines.preprocess.resolution): metres per pixel of every input
    # scene, overriding its georeference (None: a GeoTIFF's transform, 0.5 m for JPEG/PNG)...
    gsd: float | None = None
    # ...and the GSD to resample every scene to (None: the scenes' own, which must agree).
    target_gsd: float | None = None

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
        if isinstance(self.val_fraction, bool) or not isinstance(self.val_fraction, int | float):
            raise ValueError(f"val_fraction must be a number, got {self.val_fraction!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(
                f"val_fraction must be in [0, 1), got {self.val_fraction}: "
                "1 would hold every scene out and leave nothing to train on"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if isinstance(self.num_shards, bool) or not isinstance(self.num_shards, int):
            raise ValueError(f"num_shards must be an integer, got {self.num_shards!r}")
        if self.num_shards < 0:
            raise ValueError(f"num_shards must be >= 0 (0 = auto), got {self.num_shards}")
        if not isinstance(self.record_format, RecordFormat):
            raise ValueError(f"record_format must be a RecordFormat, got {self.record_format!r}")
        if self.mask_kind not in MASK_KINDS:
            raise ValueError(
                f"mask_kind must be one of {', '.join(MASK_KINDS)}, got {self.mask_kind!r}"
            )
        if self.label_map is not None:
            check_label_map(self.label_map)
        for name in ("gsd", "target_gsd"):
            if getattr(self, name) is not None:
                check_gsd(getattr(self, name), name)
        self.mask_rule  # noqa: B018 - MaskRule refuses contradictory combinations
        return self

    @property
    def mask_rule(self) -> MaskRule:
        """How this run reads its masks."""
        return MaskRule(
            self.mask_kind, None if self.label_map is None else check_label_map(self.label_map)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input_uri,
            "output": self.output_uri,
            "patch_size": self.patch_size,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "record_format": self.record_format.to_dict(),
            "num_shards": self.num_shards or "auto",
            "mask_kind": self.mask_kind,
            "label_map": None if self.label_map is None else {str(v): c for v, c in self.label_map},
            "gsd": self.gsd,
            "target_gsd": self.target_gsd,
        }
