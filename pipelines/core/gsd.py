"""Ground sample distance (GSD): metres of ground per pixel, a fact of scenes, datasets and models.

A model learns textures and shapes at the scale it was trained at: a field is 40 px across at
0.5 m and 8 px at 2.5 m. So the pipeline keeps the GSD beside the pixels: a dataset's manifest
records the GSD its patches are at (:class:`DatasetGsd`), a model's ``metadata.json`` the GSD it
was trained at (:data:`MODEL_GSD_KEY`), and predict resamples a scene of another GSD to the
model's. Where a GSD comes from (a GeoTIFF's transform and CRS units) is read by
``pipelines.io.gsd``; this module holds the arithmetic and the rules, pure.

The rules, decided once here:

- **Per axis.** A pixel has a size along its row (``x``, between columns) and down its column
  (``y``, between rows). They differ for a geographic CRS away from the equator (a degree of
  longitude is shorter than one of latitude), so resampling works per axis.
- **Equal within 1 %** (:data:`GSD_TOLERANCE`): 0.5 m and 0.504 m are the same GSD; resampling
  by 0.8 % would blur every pixel for nothing. Beyond it, a scene is resampled (predict,
  ``preprocess --target-gsd``) or refused (a dataset of mixed GSDs without a target).
- **JPEG/PNG have no georeference**: their GSD is what ``--gsd`` says, DeepGlobe's 0.5 m
  (:data:`DEEPGLOBE_GSD_M`) when it says nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.core.geo import Transform

# DeepGlobe 2018's land-cover imagery: 50 cm pixels (DigitalGlobe), the project's own format.
DEEPGLOBE_GSD_M = 0.5
# Two GSDs within this fraction of the larger are one GSD (no resampling between them).
GSD_TOLERANCE = 0.01
# Where a model's metadata.json records its training GSD: metadata["input"][MODEL_GSD_KEY].
MODEL_GSD_KEY = "gsd_m"


class GsdError(ValueError):
    """A GSD that cannot be known (no units, a CRS that is not a ground grid) or is not one
    number across the scene; the message says why and what to do."""


def same_gsd(a: float, b: float, tolerance: float = GSD_TOLERANCE) -> bool:
    """True when two GSDs are one within ``tolerance`` (relative to the larger)."""
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


def format_gsd(metres: float) -> str:
    """A GSD as people read it and as manifest keys hold it: ``0.5``, ``2.39062``."""
    return f"{metres:.6g}"


def check_gsd(value: Any, what: str = "gsd") -> float:
    """A positive, finite number of metres per pixel, else ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number of metres per pixel, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive number of metres per pixel, got {value}")
    return float(value)


@dataclass(frozen=True)
class Gsd:
    """A scene's pixel size on the ground, in metres, and where that number came from."""

    x: float  # metres between neighbouring columns (along a row)
    y: float  # metres between neighbouring rows (down a column)
    source: str  # "transform (EPSG:32633, metre)", "--gsd", "DeepGlobe default (JPEG/PNG)"

    def __post_init__(self) -> None:
        check_gsd(self.x, "gsd x")
        check_gsd(self.y, "gsd y")

    @classmethod
    def uniform(cls, metres: float, source: str) -> Gsd:
        """Square pixels of ``metres``."""
        return cls(metres, metres, source)

    @property
    def square(self) -> bool:
        """True when both axes have one GSD (within the tolerance)."""
        return same_gsd(self.x, self.y)

    @property
    def metres(self) -> float:
        """The one GSD of square pixels; GsdError for pixels that are not square."""
        if not self.square:
            raise GsdError(
                f"pixels are {self.describe()} ({self.source}), not square: they have no one GSD"
            )
        return self.x if self.x == self.y else (self.x + self.y) / 2

    def matches(self, metres: float) -> bool:
        """True when both axes are at ``metres`` (within the tolerance): no resampling needed."""
        return same_gsd(self.x, metres) and same_gsd(self.y, metres)

    def describe(self) -> str:
        """``0.5 m`` or ``0.787 x 1.11 m`` (x by y)."""
        if self.x == self.y:
            return f"{format_gsd(self.x)} m"
        return f"{format_gsd(self.x)} x {format_gsd(self.y)} m"

    def to_dict(self) -> dict[str, Any]:
        return {"x_m": self.x, "y_m": self.y, "source": self.source}


def pixel_steps(transform: Transform) -> tuple[tuple[float, float], tuple[float, float]]:
    """The CRS offsets of one column step and one row step: ``((a, d), (b, e))``."""
    a, b, _, d, e, _ = transform
    return (a, d), (b, e)


def linear_gsd(
    transform: Transform, unit_m: float, scale: tuple[float, float] = (1.0, 1.0)
) -> tuple[float, float]:
    """Pixel sizes in metres ``(x, y)`` for a CRS in linear units of ``unit_m`` metres.

    ``scale`` is the projection's point scale (east-west, north-south) where the pixel lies:
    a projected metre is ``scale`` ground metres' worth of map, so ground = projected / scale.
    """
    (a, d), (b, e) = pixel_steps(transform)
    return math.hypot(a, d) * unit_m / scale[0], math.hypot(b, e) * unit_m / scale[1]


def degree_lengths(
    latitude: float, semi_major_m: float, inverse_flattening: float
) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at ``latitude`` on an ellipsoid.

    The parallel's radius ``N cos φ`` and the meridian's radius of curvature ``M``, with
    ``N = a / w`` and ``M = a (1 - e²) / w³``, ``w = sqrt(1 - e² sin² φ)``. WGS 84 at the
    equator: 111,319.5 m and 110,574.3 m; at 45°: 78,846.8 m and 111,132.0 m. An
    ``inverse_flattening`` of 0 is a sphere.
    """
    if not -90.0 <= latitude <= 90.0:
        raise GsdError(f"latitude {latitude:.6g} is outside -90..90")
    flattening = 1.0 / inverse_flattening if inverse_flattening else 0.0
    e2 = flattening * (2.0 - flattening)
    phi = math.radians(latitude)
    w = math.sqrt(1.0 - e2 * math.sin(phi) ** 2)
    per_radian = math.pi / 180.0
    return (
        per_radian * semi_major_m / w * math.cos(phi),
        per_radian * semi_major_m * (1.0 - e2) / w**3,
    )


def geographic_gsd(
    transform: Transform, latitude: float, semi_major_m: float, inverse_flattening: float
) -> tuple[float, float]:
    """Pixel sizes in metres ``(x, y)`` of a grid in degrees (x = longitude), at ``latitude``."""
    lon_m, lat_m = degree_lengths(latitude, semi_major_m, inverse_flattening)
    (a, d), (b, e) = pixel_steps(transform)
    return math.hypot(a * lon_m, d * lat_m), math.hypot(b * lon_m, e * lat_m)


def check_uniform(
    sizes: Mapping[str, tuple[float, float]], uri_reason: str, tolerance: float = GSD_TOLERANCE
) -> None:
    """GsdError unless the pixel sizes measured at several places of a scene agree.

    ``sizes`` maps a place ("top row", "centre", …) to its (x, y) metres. A scene whose pixel
    size varies more than the tolerance (a geographic grid spanning many degrees of latitude,
    Web Mercator far from the equator over a tall scene) has no one GSD: resampling it to one
    would stretch part of it. ``uri_reason`` says what to do instead.
    """
    places = list(sizes.items())
    for axis, name in ((0, "x"), (1, "y")):
        values = [size[axis] for _, size in places]
        low, high = min(values), max(values)
        if not same_gsd(low, high, tolerance):
            where = ", ".join(f"{place} {format_gsd(size[axis])} m" for place, size in places)
            raise GsdError(
                f"pixel size {name} varies by {100 * (high / low - 1):.1f} % across the scene "
                f"({where}), more than {100 * tolerance:g} %: it has no one GSD; {uri_reason}"
            )


# ---- datasets and models -----------------------------------------------------------------------

# How preprocess --target-gsd resamples, recorded in the manifest (pipelines.core.resample).
IMAGE_RESAMPLING = {"down": "area", "up": "bilinear"}
LABEL_RESAMPLING = {"down": "mode", "up": "nearest"}


@dataclass(frozen=True)
class DatasetGsd:
    """``manifest.json``'s ``gsd``: the GSD every patch of the dataset is at, and its origin.

    ``native`` counts the written scenes by the GSD they were read at (``format_gsd`` keys;
    ``"0.787x1.11"`` for pixels that are not square); ``target`` is ``--target-gsd`` when the
    scenes were resampled to it, else None (every scene was at ``metres`` already).
    """

    metres: float
    native: dict[str, int] = field(default_factory=dict)
    target: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metres_per_pixel": self.metres,
            "native": dict(sorted(self.native.items())),
            "target": self.target,
            "resampling": (
                {"image": IMAGE_RESAMPLING, "labels": LABEL_RESAMPLING}
                if self.target is not None
                else None
            ),
        }

    @classmethod
    def from_dict(cls, data: Any) -> DatasetGsd:
        if not isinstance(data, Mapping):
            raise ValueError("manifest gsd must be an object")
        try:
            metres = check_gsd(data["metres_per_pixel"], "manifest gsd.metres_per_pixel")
            native = {str(k): int(v) for k, v in dict(data.get("native", {})).items()}
            target = data.get("target")
        except (KeyError, TypeError) as error:
            raise ValueError(f"manifest gsd is incomplete: {error}") from None
        return cls(metres, native, None if target is None else check_gsd(target, "gsd.target"))


def native_key(gsd: Gsd) -> str:
    """The key a scene's native GSD is counted under in :attr:`DatasetGsd.native`."""
    if gsd.square:
        return format_gsd(gsd.metres)
    return f"{format_gsd(gsd.x)}x{format_gsd(gsd.y)}"


def model_gsd(metadata: Mapping[str, Any]) -> float | None:
    """The GSD a model was trained at, from its ``metadata.json``; None when not recorded
    (a model trained on a dataset whose manifest predates GSDs, or a bare ``model.keras``)."""
    value = (metadata.get("input") or {}).get(MODEL_GSD_KEY)
    return None if value is None else check_gsd(value, f"metadata input.{MODEL_GSD_KEY}")
