"""Shared pieces of the pipelines tests: small class maps written by rasterio on chosen grids.

Offered as fixtures (not an importable module) so they work under ``--import-mode=importlib``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

from pipelines.io.raster_write import CLASS_NODATA, class_color_table

WriteMap = Callable[..., Path]


def _write_map(
    path: Path,
    ids: np.ndarray,
    *,
    crs: str | None = "EPSG:32633",
    transform: Affine | None = None,
    nodata: int | None = CLASS_NODATA,
    tiled: bool = False,
) -> Path:
    """A single-band uint8 class map GeoTIFF of ``ids`` on the given grid; returns ``path``."""
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": ids.shape[0],
        "width": ids.shape[1],
        "count": 1,
        "dtype": "uint8",
    }
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    if nodata is not None:
        profile["nodata"] = nodata
    if tiled:
        profile.update(tiled=True, blockxsize=16, blockysize=16)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(ids.astype(np.uint8)[np.newaxis])
            dst.write_colormap(1, class_color_table())
    return path


@pytest.fixture
def write_map() -> WriteMap:
    """``write_map(path, ids, *, crs, transform, nodata, tiled)`` → the GeoTIFF's path."""
    return _write_map
