"""How much ground one pixel covers: the area model of a class map's grid, and which it is.

Four cases, decided once here and named in every output (``method`` and ``source``):

- ``projected``: a projected (or other planar) CRS. A pixel's area is the transform's
  determinant times the squared CRS unit in metres (feet, US survey feet and other units
  converted through pyproj). It is the *map* area in that projection: within 0.1 % of the ground
  for UTM and state planes; for a projection that distorts area (Web Mercator: 4x at 60°N)
  the projection's areal scale at the scene centre is reported and a warning says so.
- ``geographic``: a geographic CRS (degrees). Pixels of one row share their area, which shrinks
  towards the poles; each row's area is computed on the CRS's ellipsoid with pyproj's ``Geod``
  (the pixel's top and bottom edges densified along their parallels), so a scene from the
  equator to 60°N sums true areas, not degrees squared.
- ``gsd``: no CRS, but a ground sample distance is known (``--gsd``, or DeepGlobe's 0.5 m for
  its JPEG/PNG format): ``gsd²`` a pixel, and the source of the number is named.
- ``pixels``: no CRS and no GSD: pixel counts only, areas are None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyproj import CRS, Geod, Proj, Transformer
from pyproj.exceptions import CRSError

from pipelines.core.geo import Transform, is_identity

AREA_METHODS = ("projected", "geographic", "gsd", "pixels")
# Areal scale of a projection at the scene centre beyond which its planar areas get a warning.
AREAL_SCALE_TOLERANCE = 0.01
# A pixel edge along a parallel is split into pieces of at most this many degrees, so the
# geodesics Geod measures between its points stay on the parallel (error < 1e-9 relative).
_DENSIFY_DEG = 0.01
M2_PER_HA = 10_000.0


class AreaError(ValueError):
    """A grid whose pixel areas cannot be known; the message names the CRS and why."""


@dataclass(frozen=True)
class AreaModel:
    """Pixel areas of one grid: constant (``pixel_area_m2``), per row, or unknown.

    ``source`` says in words where the areas come from ("EPSG:32633 (metre): 0.25 m² a
    pixel"); ``warnings`` what a reader should know (a projection that distorts area).
    """

    method: str
    source: str
    height: int
    crs: str | None = None
    pixel_area_m2: float | None = None
    row_areas_m2: np.ndarray | None = field(default=None, compare=False, repr=False)
    areal_scale: float | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in AREA_METHODS:
            raise ValueError(f"area method must be one of {', '.join(AREA_METHODS)}")

    @property
    def has_area(self) -> bool:
        return self.method != "pixels"

    def rows(self, row_off: int, height: int) -> np.ndarray | None:
        """Per-pixel area (m², float64) of each row ``row_off..row_off+height``; None: unknown."""
        if self.row_areas_m2 is not None:
            return self.row_areas_m2[row_off : row_off + height]
        if self.pixel_area_m2 is None:
            return None
        return np.full(height, self.pixel_area_m2, dtype=np.float64)

    def cumulative_rows(self) -> np.ndarray | None:
        """``W[y]`` = area of one pixel in each row above ``y`` summed (``W[0] = 0``), or None.

        Lets a region's area be computed from its outline alone (:mod:`vectorize`).
        """
        rows = self.rows(0, self.height)
        if rows is None:
            return None
        return np.concatenate([[0.0], np.cumsum(rows, dtype=np.float64)])

    def area_of_counts(self, row_off: int, counts: np.ndarray) -> np.ndarray | None:
        """Areas (m²) of per-row pixel counts ``(rows, k)`` starting at row ``row_off``."""
        rows = self.rows(row_off, counts.shape[0])
        if rows is None:
            return None
        return rows @ counts.astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "source": self.source,
            "crs": self.crs,
            "pixel_area_m2": self.pixel_area_m2,
            "areal_scale": self.areal_scale,
            "warnings": list(self.warnings),
        }


def crs_label(crs: CRS) -> str:
    """``EPSG:32633`` when the CRS has an authority code, else its name."""
    code = crs.to_authority(min_confidence=90)
    return f"{code[0]}:{code[1]}" if code else crs.name


def _horizontal(crs: CRS) -> CRS:
    if crs.is_compound:
        return crs.sub_crs_list[0]
    return crs


def _linear_units(crs: CRS) -> tuple[float, float, str] | None:
    """(metres per x unit, metres per y unit, unit name) of a planar CRS, else None."""
    axes = crs.axis_info
    if len(axes) < 2:
        return None
    if any(a.unit_name.lower() in ("degree", "radian", "grad", "arc-second") for a in axes[:2]):
        return None
    factors = [float(a.unit_conversion_factor) for a in axes[:2]]
    if not all(math.isfinite(f) and f > 0 for f in factors):
        return None
    # Axis order in a CRS definition may be northing first; GDAL's transform is always x, y.
    east = next((a for a in axes[:2] if a.direction.lower() in ("east", "west")), axes[0])
    north = next((a for a in axes[:2] if a.direction.lower() in ("north", "south")), axes[1])
    return float(east.unit_conversion_factor), float(north.unit_conversion_factor), east.unit_name


def _centre(transform: Transform, height: int, width: int) -> tuple[float, float]:
    a, b, c, d, e, f = transform
    col, row = width / 2, height / 2
    return c + a * col + b * row, f + d * col + e * row


def _areal_scale(crs: CRS, transform: Transform, height: int, width: int) -> float | None:
    """The projection's areal scale factor at the scene centre (1 for equal-area ones)."""
    try:
        x, y = _centre(transform, height, width)
        lon, lat = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(x, y)
        factors = Proj(crs).get_factors(lon, lat)
        scale = float(factors.areal_scale)
    except Exception:  # not every planar CRS is a projection pyproj can differentiate
        return None
    return scale if math.isfinite(scale) and scale > 0 else None


def _projected(crs: CRS, transform: Transform, height: int, width: int) -> AreaModel:
    units = _linear_units(crs)
    label = crs_label(crs)
    if units is None:
        raise AreaError(f"CRS {label} has no linear units; cannot compute pixel areas")
    ux, uy, unit = units
    a, b, _, d, e, _ = transform
    area = abs(a * e - b * d) * ux * uy
    scale = _areal_scale(crs, transform, height, width) if crs.is_projected else None
    warnings: tuple[str, ...] = ()
    if scale is not None and abs(scale - 1.0) > AREAL_SCALE_TOLERANCE:
        warnings = (
            f"{label} distorts area: its areal scale at the scene centre is {scale:.3f}, so "
            f"these planar areas are about {scale:.3f}x the ground's",
        )
    return AreaModel(
        method="projected",
        source=f"projected CRS {label} ({unit}): {area:.6g} m² a pixel",
        height=height,
        crs=label,
        pixel_area_m2=area,
        areal_scale=scale,
        warnings=warnings,
    )


def geodesic_row_areas(crs: CRS, transform: Transform, height: int) -> np.ndarray:
    """Area on ``crs``'s ellipsoid (m²) of one pixel in each of ``height`` rows.

    Needs a grid whose latitude depends on the row only (``d == 0``: north-up, or sheared in
    longitude, which keeps areas); a rotated geographic grid is refused.
    """
    a, _, _, d, e, f = transform
    if d != 0:
        raise AreaError(
            f"geographic grid rotated (transform {transform}): pixel areas vary along rows"
        )
    per_unit = float(crs.axis_info[0].unit_conversion_factor)  # radians per CRS unit
    to_deg = math.degrees(per_unit)
    geod: Geod = crs.get_geod() or Geod(ellps="WGS84")
    width_deg = abs(a) * to_deg
    pieces = max(1, math.ceil(width_deg / _DENSIFY_DEG))
    lons = np.linspace(0.0, width_deg, pieces + 1)
    ring_lons = np.concatenate([lons, lons[::-1]])
    areas = np.empty(height, dtype=np.float64)
    for row in range(height):
        top = (f + e * row) * to_deg
        bottom = (f + e * (row + 1)) * to_deg
        if max(abs(top), abs(bottom)) > 90.0 + 1e-9:
            raise AreaError(f"row {row} of the geographic grid lies beyond a pole ({top}°)")
        lats = np.concatenate([np.full(pieces + 1, top), np.full(pieces + 1, bottom)])
        area, _ = geod.polygon_area_perimeter(ring_lons, lats)
        areas[row] = abs(area)
    return areas


def _geographic(crs: CRS, transform: Transform, height: int) -> AreaModel:
    label = crs_label(crs)
    ellipsoid = crs.ellipsoid.name if crs.ellipsoid else "WGS 84"
    return AreaModel(
        method="geographic",
        source=f"geographic CRS {label}: each row's pixel area on the {ellipsoid} ellipsoid",
        height=height,
        crs=label,
        row_areas_m2=geodesic_row_areas(crs, transform, height),
    )


def area_model(
    crs_wkt: str | None,
    transform: Transform,
    height: int,
    width: int,
    *,
    gsd_m: float | None = None,
    gsd_source: str = "--gsd",
) -> AreaModel:
    """The area model of a grid: by its CRS when it has one, else by a known GSD, else none.

    ``gsd_m`` is used only for a grid without a CRS (a CRS's own units always win); its
    ``gsd_source`` names where it came from ("--gsd", "DeepGlobe's 0.5 m"). A CRS that cannot
    give areas (no linear or angular units) raises :class:`AreaError`.
    """
    if crs_wkt:
        try:
            crs = _horizontal(CRS.from_user_input(crs_wkt))
        except CRSError as exc:
            raise AreaError(f"cannot read the CRS: {exc}") from None
        if crs.is_geographic:
            return _geographic(crs, transform, height)
        return _projected(crs, transform, height, width)
    if gsd_m is not None:
        if not (math.isfinite(gsd_m) and gsd_m > 0):
            raise ValueError(f"gsd must be a positive number of metres, got {gsd_m}")
        note = "" if is_identity(transform) else " (the grid's transform has no CRS: ignored)"
        return AreaModel(
            method="gsd",
            source=f"no CRS: GSD {gsd_m:g} m from {gsd_source}{note}",
            height=height,
            pixel_area_m2=gsd_m * gsd_m,
        )
    return AreaModel(
        method="pixels",
        source="no CRS and no GSD: pixel counts only (give --gsd for areas)",
        height=height,
    )


def hectares(area_m2: float | None) -> float | None:
    return None if area_m2 is None else area_m2 / M2_PER_HA
