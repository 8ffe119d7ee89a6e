"""A scene's GSD from its file: the GeoTIFF transform in the CRS's units, read with pyproj.

The rules (the arithmetic is ``pipelines.core.gsd``'s):

- **``--gsd`` wins**: a value given by the user overrides whatever the file says (a wrong
  georeference, or none).
- **No georeference, no GSD in the file**: a JPEG/PNG (never read for a world file, so a scene
  reads the same from a folder and from ``gs://``) and a raster without a CRS or transform are
  at DeepGlobe's 0.5 m unless ``--gsd`` says otherwise.
- **Linear units** (metre, US survey foot, international foot, …): the pixel size times the
  unit's length in metres, pyproj's ``unit_conversion_factor``. When the projection's point
  scale at the scene's centre is more than 1 % from 1 (Web Mercator away from the equator:
  1.41 at 45°), a projected metre is not a ground metre and the size is divided by the scale:
  a Web Mercator tile at 45° labelled 0.6 m is 0.42 m on the ground. UTM and state planes
  (scale within 0.1 %) keep their nominal size, the number their providers quote.
- **Degrees** (a geographic CRS): converted at the scene's latitude on the CRS's ellipsoid, per
  axis (a degree of longitude shrinks with latitude, so pixels are not square in metres).
- **Refused, with the reason**: a geotransform without a CRS (its unit is unknown), a CRS that
  is not a ground grid (geocentric, vertical), and a scene whose pixel size varies more than
  1 % from its top to its bottom or side to side (a geographic grid spanning many degrees):
  it has no one GSD, and resampling it to one would stretch part of it. Reproject it to a
  projected CRS (``gdalwarp -t_srs EPSG:326xx``) or pass ``--gsd``.
"""

from __future__ import annotations

import math

from pyproj import CRS, Proj, Transformer
from pyproj.exceptions import CRSError, ProjError

from pipelines.core.errors import BadInputError
from pipelines.core.gsd import (
    DEEPGLOBE_GSD_M,
    GSD_TOLERANCE,
    Gsd,
    GsdError,
    check_uniform,
    format_gsd,
    geographic_gsd,
    linear_gsd,
)
from pipelines.io.raster_read import RasterInfo
from pipelines.io.scenes import decoded_by_pil

OVERRIDE_SOURCE = "--gsd"
DEFAULT_SOURCE = f"no georeference: DeepGlobe's {format_gsd(DEEPGLOBE_GSD_M)} m (--gsd sets it)"
_FIX = "reproject it to a projected CRS (e.g. gdalwarp -t_srs EPSG:326xx) or pass --gsd"


def scene_gsd(uri: str, info: RasterInfo | None, override: float | None = None) -> Gsd:
    """The GSD a scene is at: ``override`` (``--gsd``), else its georeference, else 0.5 m.

    ``info`` may be None for a JPEG/PNG (not read). BadInputError (naming ``uri``) when the
    file's georeference gives no GSD (see the module doc).
    """
    if override is not None:
        return Gsd.uniform(override, OVERRIDE_SOURCE)
    if decoded_by_pil(uri) or info is None or not info.georeferenced:
        return Gsd.uniform(DEEPGLOBE_GSD_M, DEFAULT_SOURCE)
    return raster_gsd(info)


def raster_gsd(info: RasterInfo) -> Gsd:
    """The GSD of a georeferenced raster from its transform and CRS (BadInputError if none)."""
    if info.crs is None:
        raise BadInputError(
            info.uri,
            "has a geotransform but no CRS, so the unit of its pixel size is unknown: "
            "its GSD cannot be read; pass --gsd",
        )
    try:
        crs = _horizontal(CRS.from_wkt(info.crs))
        return _gsd(info, crs)
    except GsdError as error:
        raise BadInputError(info.uri, str(error)) from None
    except (CRSError, ProjError) as error:
        raise BadInputError(info.uri, f"its CRS gives no GSD ({error}); pass --gsd") from None


def _horizontal(crs: CRS) -> CRS:
    """A compound CRS's horizontal part (projected + vertical heights, say)."""
    if crs.is_compound and crs.sub_crs_list:
        return crs.sub_crs_list[0]
    return crs


def _name(crs: CRS) -> str:
    code = crs.to_epsg()
    return f"EPSG:{code}" if code is not None else crs.name


def _places(info: RasterInfo) -> dict[str, tuple[float, float]]:
    """CRS coordinates of the pixel centres a GSD is measured at: the centre and the middle of
    each edge (where a pixel size that varies across the scene differs most)."""
    a, b, c, d, e, f = info.transform
    h, w = info.height, info.width
    where = {
        "centre": ((h - 1) / 2, (w - 1) / 2),
        "top row": (0, (w - 1) / 2),
        "bottom row": (h - 1, (w - 1) / 2),
        "left column": ((h - 1) / 2, 0),
        "right column": ((h - 1) / 2, w - 1),
    }
    return {
        place: (a * (col + 0.5) + b * (row + 0.5) + c, d * (col + 0.5) + e * (row + 0.5) + f)
        for place, (row, col) in where.items()
    }


def _gsd(info: RasterInfo, crs: CRS) -> Gsd:
    axes = crs.axis_info[:2]
    if len(axes) < 2 or crs.is_geocentric or crs.is_vertical:
        raise GsdError(f"its CRS {_name(crs)} is not a map grid (geocentric or vertical)")
    units = {(axis.unit_name, axis.unit_conversion_factor) for axis in axes}
    if len(units) != 1:
        raise GsdError(f"its CRS {_name(crs)} has axes in different units {sorted(units)}")
    unit_name, factor = units.pop()
    if not factor or unit_name in ("unknown", "", None):
        raise GsdError(f"its CRS {_name(crs)} has no known unit; pass --gsd")
    places = _places(info)
    if crs.is_geographic:
        return _geographic(info, crs, places, unit_name, factor)
    scales = _point_scales(crs, places) if crs.is_projected else {}
    distorted = any(abs(k - 1.0) > GSD_TOLERANCE for ks in scales.values() for k in ks)
    if distorted:
        sizes = {p: linear_gsd(info.transform, factor, scales[p]) for p in places}
        check_uniform(sizes, _FIX)
        x, y = sizes["centre"]
        kx, ky = scales["centre"]
        source = (
            f"transform ({_name(crs)}, {unit_name}; ground size: point scale "
            f"{kx:.4g} x {ky:.4g} at the centre)"
        )
        return Gsd(x, y, source)
    x, y = linear_gsd(info.transform, factor)
    return Gsd(x, y, f"transform ({_name(crs)}, {unit_name})")


def _point_scales(
    crs: CRS, places: dict[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    """The projection's point scale (east-west, north-south) at each place."""
    to_geographic = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    proj = Proj(crs)
    scales = {}
    for place, (x, y) in places.items():
        lon, lat = to_geographic.transform(x, y)
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise GsdError(f"its transform puts the {place} where {_name(crs)} is undefined")
        factors = proj.get_factors(lon, lat)
        kx, ky = float(factors.parallel_scale), float(factors.meridional_scale)
        if not (math.isfinite(kx) and math.isfinite(ky)) or kx <= 0 or ky <= 0:
            raise GsdError(f"{_name(crs)} has no scale at the scene's {place} ({lon}, {lat})")
        scales[place] = (kx, ky)
    return scales


def _geographic(
    info: RasterInfo,
    crs: CRS,
    places: dict[str, tuple[float, float]],
    unit_name: str,
    factor: float,
) -> Gsd:
    """Degrees (or another angle unit) → metres at each place's latitude, on the ellipsoid."""
    to_degrees = factor / math.radians(1.0)  # the unit's size in degrees
    ellipsoid = crs.ellipsoid
    if ellipsoid is None:
        raise GsdError(f"its geographic CRS {_name(crs)} names no ellipsoid")
    a, b, _, d, e, _ = info.transform
    in_degrees = (a * to_degrees, b * to_degrees, 0.0, d * to_degrees, e * to_degrees, 0.0)
    sizes = {}
    for place, (_, y) in places.items():
        latitude = y * to_degrees
        if not -90.0 <= latitude <= 90.0:
            raise GsdError(
                f"its transform puts the {place} at latitude {latitude:.6g}, outside -90..90: "
                f"the transform is not in {unit_name}s of {_name(crs)}"
            )
        sizes[place] = geographic_gsd(
            in_degrees, latitude, ellipsoid.semi_major_metre, ellipsoid.inverse_flattening
        )
    check_uniform(sizes, _FIX)
    x, y = sizes["centre"]
    latitude = places["centre"][1] * to_degrees
    return Gsd(x, y, f"transform ({_name(crs)}, {unit_name} at latitude {latitude:.4f})")
