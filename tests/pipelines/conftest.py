"""Shared pieces of the pipelines tests: small class maps written by rasterio on chosen grids,
and offline validation of STAC documents against the schemas in ``tests/fixtures``.

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


STAC_SCHEMAS = Path(__file__).resolve().parents[1] / "fixtures" / "stac-schemas"
CORE_SCHEMAS = {
    "Feature": "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json",
    "Collection": "https://schemas.stacspec.org/v1.1.0/collection-spec/json-schema/collection.json",
}


def _stac_registry() -> Any:
    """Every fixture schema under the URL it is published at (see the fixtures' README)."""
    import json

    from jsonschema_specifications import REGISTRY
    from referencing import Resource

    resources = []
    for path in STAC_SCHEMAS.rglob("*.json"):
        url = "https://" + path.relative_to(STAC_SCHEMAS).as_posix()
        resources.append((url, Resource.from_contents(json.loads(path.read_text()))))
    return REGISTRY.with_resources(resources)


def _stac_validate(document: dict[str, Any]) -> list[str]:
    """Errors of a STAC Item or Collection against its core schema and each extension's."""
    from jsonschema import Draft7Validator

    registry = _stac_registry()
    schemas = [CORE_SCHEMAS[document["type"]], *document.get("stac_extensions", [])]
    errors = []
    for url in schemas:
        schema = registry.contents(url)
        validator = Draft7Validator(schema, registry=registry)
        errors += [f"{url}: {e.json_path}: {e.message}" for e in validator.iter_errors(document)]
    return errors


@pytest.fixture
def stac_validate() -> Callable[[dict[str, Any]], list[str]]:
    """``stac_validate(document)`` → its schema errors (an empty list: valid), offline."""
    return _stac_validate
