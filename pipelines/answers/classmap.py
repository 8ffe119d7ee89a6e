"""Class maps as the answers read them: predicted masks, by windows, as class ids + validity.

Two encodings reach here, both written by predict (and accepted from elsewhere):

- ``{id}_mask.tif`` (any single-band GeoTIFF/COG): class ids 0..6 in palette order, nodata
  (predict's 255) left out; any other value is bad input, named with its window;
- ``{id}_mask.png``: DeepGlobe colours, decoded by the challenge rule (every pixel valid), or a
  single-band PNG of ids (through its colour table when it has one).

Reading is by windows (strips of whole rows by default), so a 16384² map costs one strip of
memory. ``gs://`` maps are read from a local copy (:func:`pipelines.io.storage.local_copy`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError, RasterioIOError
from rasterio.windows import Window

from pipelines.core.errors import BadInputError
from pipelines.core.geo import BLOCK_SIZE, PixelWindow, Transform, is_identity
from pipelines.core.naming import mask_id_of
from pipelines.core.palette import NUM_CLASSES, decode_mask, palette_to_rgb
from pipelines.io import storage

# Rows per strip when a map is read whole: one COG tile row (16384 px wide: 8 MB of ids).
STRIP_ROWS = BLOCK_SIZE
# Which file wins when one scene has several class maps: the COG (exact ids, nodata) first.
_PREFERENCE = (".tif", ".tiff", ".png")


@dataclass(frozen=True)
class ClassMapInfo:
    """A class map's grid and encoding. ``transform`` in affine order; ``crs`` WKT or None."""

    uri: str
    width: int
    height: int
    crs: str | None
    transform: Transform
    nodata: int | None
    encoding: str  # "ids" | "colors" | "palette"

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and not is_identity(self.transform)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of the grid in its CRS (any rotation included)."""
        a, b, c, d, e, f = self.transform
        xs = [c + a * col + b * row for col in (0, self.width) for row in (0, self.height)]
        ys = [f + d * col + e * row for col in (0, self.width) for row in (0, self.height)]
        return min(xs), min(ys), max(xs), max(ys)


def _nodata(value: float | None) -> int | None:
    if value is None or not float(value).is_integer() or not 0 <= value <= 255:
        return None
    return int(value)


def _info(uri: str, ds: Any) -> ClassMapInfo:
    if ds.count == 3 and ds.dtypes[0] == "uint8":
        encoding = "colors"
    elif ds.count == 1 and ds.dtypes[0] == "uint8":
        try:
            has_palette = bool(ds.colormap(1)) and ds.driver == "PNG"
        except ValueError:
            has_palette = False
        encoding = "palette" if has_palette else "ids"
    else:
        raise BadInputError(
            uri,
            f"has {ds.count} band(s) of {ds.dtypes[0]}; a class map is one uint8 band of class "
            "ids or 8-bit RGB DeepGlobe colours",
        )
    return ClassMapInfo(
        uri=uri,
        width=int(ds.width),
        height=int(ds.height),
        crs=ds.crs.to_wkt() if ds.crs else None,
        transform=tuple(float(v) for v in ds.transform[:6]),  # type: ignore[arg-type]
        nodata=_nodata(ds.nodata) if encoding == "ids" else None,
        encoding=encoding,
    )


class ClassMapReader:
    """An open class map (a rasterio dataset, or a WarpedVRT onto another grid) read by windows."""

    def __init__(self, dataset: Any, info: ClassMapInfo) -> None:
        self.dataset, self.info = dataset, info
        self._colormap = dataset.colormap(1) if info.encoding == "palette" else None

    def read(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        """Class ids ``(h, w)`` uint8 and validity ``(h, w)`` bool of one window."""
        info = self.info
        if not window.fits(info.height, info.width):
            raise ValueError(f"window ({window.describe()}) reaches past the class map")
        rio_window = Window(window.col_off, window.row_off, window.width, window.height)
        try:
            if info.encoding == "colors":
                rgb = self.dataset.read(indexes=[1, 2, 3], window=rio_window).transpose(1, 2, 0)
                ids = decode_mask(np.ascontiguousarray(rgb))
                return ids, np.ones(window.shape, bool)
            values = self.dataset.read(1, window=rio_window)
        except RasterioError as exc:
            reason = exc.__cause__ or exc
            raise BadInputError(
                info.uri, f"cannot read window ({window.describe()}): {reason}"
            ) from None
        if info.encoding == "palette":
            assert self._colormap is not None
            try:
                return decode_mask(palette_to_rgb(values, self._colormap)), np.ones(
                    window.shape, bool
                )
            except ValueError as exc:
                raise BadInputError(info.uri, str(exc)) from None
        valid = np.ones(window.shape, bool) if info.nodata is None else values != info.nodata
        bad = valid & (values >= NUM_CLASSES)
        if bad.any():
            raise BadInputError(
                info.uri,
                f"value {int(values[bad][0])} in window ({window.describe()}) is not a class id "
                f"0..{NUM_CLASSES - 1} nor the nodata value {info.nodata}",
            )
        return values.astype(np.uint8, copy=False), valid

    def strips(
        self, rows: int = STRIP_ROWS
    ) -> Iterator[tuple[PixelWindow, np.ndarray, np.ndarray]]:
        """Whole-width strips of ``rows`` rows, top to bottom: (window, ids, valid)."""
        if rows < 1:
            raise ValueError(f"strip rows must be >= 1, got {rows}")
        for row in range(0, self.info.height, rows):
            window = PixelWindow(row, 0, min(rows, self.info.height - row), self.info.width)
            ids, valid = self.read(window)
            yield window, ids, valid


@contextlib.contextmanager
def open_class_map(uri: str) -> Iterator[ClassMapReader]:
    """Open a class map for windowed reads; BadInputError naming the file if it is not one."""
    with storage.local_copy(uri) as path, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            dataset = rasterio.open(path)
        except RasterioIOError as exc:
            raise BadInputError(uri, f"cannot open as a raster: {exc}") from None
        with dataset:
            yield ClassMapReader(dataset, _info(uri, dataset))


def read_class_map_info(uri: str) -> ClassMapInfo:
    """A class map's grid and encoding, without reading its pixels."""
    with open_class_map(uri) as reader:
        return reader.info


def find_class_maps(uri: str) -> list[tuple[str, str]]:
    """(scene id, URI) of every class map in a folder (one level), or of the one file named.

    Class maps are ``{id}_mask.tif|tiff|png`` (any case); when a scene has several, the COG
    wins (it holds exact ids and nodata). Sorted by scene id.
    """
    if mask_id_of(uri) is not None and storage.exists(uri):
        candidates = [uri]
    else:
        storage.check_readable_root(uri)
        candidates = list_folder(uri)
    best: dict[str, str] = {}
    for candidate in candidates:
        scene_id = mask_id_of(candidate)
        if scene_id is None:
            continue
        if scene_id not in best or _rank(candidate) < _rank(best[scene_id]):
            best[scene_id] = candidate
    return sorted(best.items())


def list_folder(uri: str) -> list[str]:
    """Files directly in a folder, whatever characters its name holds (``[``, ``*``, spaces)."""
    return storage.list_files(uri)


def _rank(uri: str) -> int:
    return next(i for i, ext in enumerate(_PREFERENCE) if uri.lower().endswith(ext))
