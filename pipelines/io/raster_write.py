"""Writing georeferenced outputs block by block, then publishing them as Cloud-Optimized GeoTIFFs.

A COG's layout (overviews and tiles ordered for HTTP range reads) can only be produced by a
copy once all pixels exist, so writing is two steps: windows go into a local, internally tiled
GeoTIFF (512² tiles, DEFLATE) as they complete, then :meth:`TiledCogWriter.finalize` has GDAL's
COG driver copy it, building overviews as it streams, into a COG that is published at the
destination (local or ``gs://``) through the storage layer. GDAL works tile by tile throughout,
so memory stays bounded by its block cache, not the scene; the scratch space is local disk
(about the output's size twice). The copy also compacts tiles that were rewritten by windows
not aligned to the 512 grid, so callers may write windows of any size.

Outputs keep the input's exact CRS, transform, width and height (a raster without a CRS gives
an output without one). The class map is single-band uint8 class ids in palette order with
nodata 255 and the DeepGlobe colors as its color table; the probability map is one uint8 band
per class (0..255 for 0..1, band scale 1/255) with an internal mask for nodata, since every
byte value is a probability there.

Both describe themselves (:mod:`pipelines.io.raster_describe`): provenance tags and band
descriptions inside the TIFF, and for the class map its class names inside as band tags and,
as category names and a raster attribute table, in the side-car ``{name}.aux.xml`` published
beside it (GDAL 3.10 keeps those nowhere else); :attr:`TiledCogWriter.written` lists both.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import DatasetWriter
from rasterio.windows import Window

from pipelines.core.geo import (
    BLOCK_SIZE,
    PixelWindow,
    Transform,
    check_output_limits,
    is_identity,
    window_transform,
)
from pipelines.core.palette import CLASS_COLORS, CLASS_NAMES, NUM_CLASSES
from pipelines.io import storage
from pipelines.io.raster_cog import (
    COMPRESS,
    DEFAULT_OVERVIEW_RESAMPLING,
    OverviewResampling,
    translate_to_cog,
)
from pipelines.io.raster_describe import (
    Category,
    RasterDescription,
    describe_vrt,
    publish_with_sidecar,
)
from pipelines.io.raster_read import RasterInfo

# Class-map pixels that were nodata in the input: outside the palette's 0..6, and the top of
# uint8 so no future class count collides with it.
CLASS_NODATA = 255


def class_color_table() -> dict[int, tuple[int, int, int, int]]:
    """Class id → RGBA in palette order; nodata is transparent so GIS shows the input beneath."""
    table = {i: (int(r), int(g), int(b), 255) for i, (r, g, b) in enumerate(CLASS_COLORS)}
    table[CLASS_NODATA] = (0, 0, 0, 0)
    return table


def class_categories() -> tuple[Category, ...]:
    """The class map's categories: each palette id with its name and colour."""
    table = class_color_table()
    return tuple(Category(i, name, table[i]) for i, name in enumerate(CLASS_NAMES))


def class_map_description(tags: Mapping[str, str] | None = None) -> RasterDescription:
    """How a class-map COG describes itself: class names, its band, and ``tags`` (provenance)."""
    return RasterDescription(
        tags=dict(tags or {}),
        band_descriptions=(f"land-cover class id (0..{NUM_CLASSES - 1}, nodata {CLASS_NODATA})",),
        categories=class_categories(),
    )


def probability_description(tags: Mapping[str, str] | None = None) -> RasterDescription:
    """How a probability COG describes itself: one band per class, stored as 0..255 for 0..1."""
    return RasterDescription(
        tags=dict(tags or {}),
        band_descriptions=tuple(f"probability of {name} (0..255 = 0..1)" for name in CLASS_NAMES),
        scales=(1.0 / 255.0,) * NUM_CLASSES,
    )


def georef_profile(info: RasterInfo, transform: Transform | None = None) -> dict[str, Any]:
    """``crs``/``transform`` creation arguments that reproduce ``info``'s georeference exactly.

    A raster without a geotransform is written without one (not with an identity geotransform
    that GIS would read as a pixel-sized CRS-less grid at the origin).
    """
    transform = info.transform if transform is None else transform
    profile: dict[str, Any] = {}
    if info.crs is not None:
        profile["crs"] = info.crs
    if not is_identity(transform):
        profile["transform"] = Affine(*transform)
    return profile


def _tiled_gtiff_profile(width: int, height: int, count: int, bigtiff: str) -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": "uint8",
        "tiled": True,
        "blockxsize": BLOCK_SIZE,
        "blockysize": BLOCK_SIZE,
        "compress": COMPRESS,
        "interleave": "pixel",
        "BIGTIFF": bigtiff,
        # Blocks never written are not stored and read back as nodata (or masked out): windows
        # that are entirely nodata are skipped, not written and compressed as nodata.
        "SPARSE_OK": True,
    }


class TiledCogWriter:
    """Write a raster window by window into a local tiled GeoTIFF; publish it as a COG.

    Use as a context manager: leaving the block normally calls :meth:`finalize` (if not called
    already), leaving it with an exception publishes nothing. Scratch files go to ``tmp_dir``
    (default: the system temp dir), which needs about twice the output's size free.
    ``description`` is what the output says about itself (tags, band descriptions, scales,
    categories); :attr:`written` lists the files :meth:`finalize` published.
    """

    def __init__(
        self,
        destination: str,
        info: RasterInfo,
        *,
        count: int,
        nodata: float | None = None,
        colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
        internal_mask: bool = False,
        overview_resampling: OverviewResampling = DEFAULT_OVERVIEW_RESAMPLING,
        tmp_dir: str | None = None,
        description: RasterDescription | None = None,
    ) -> None:
        self.destination = destination
        self.info = info
        self.count = count
        self.description = description or RasterDescription()
        self.written: list[str] = []
        self._bigtiff = check_output_limits(info.width, info.height, count)
        self._internal_mask = internal_mask
        self._resampling = overview_resampling
        self._tmp = tempfile.TemporaryDirectory(prefix="landcover-cog-", dir=tmp_dir)
        self._work_path = os.path.join(self._tmp.name, "work.tif")
        self._finalized = False
        profile = _tiled_gtiff_profile(info.width, info.height, count, self._bigtiff)
        profile.update(georef_profile(info))
        if nodata is not None:
            profile["nodata"] = nodata
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self._dataset: DatasetWriter | None = rasterio.open(self._work_path, "w", **profile)
        if colormap is not None:
            self._dataset.write_colormap(1, dict(colormap))
        self.description.apply(self._dataset)

    def __enter__(self) -> TiledCogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None and not self._finalized:
                self.finalize()
        finally:
            self.close()

    def _check_window(self, window: PixelWindow, data: np.ndarray) -> None:
        if self._dataset is None:
            raise RuntimeError(f"writer for {self.destination} is already finalized or closed")
        if not window.fits(self.info.height, self.info.width):
            raise ValueError(
                f"window ({window.describe()}) reaches past the "
                f"{self.info.height}x{self.info.width} output"
            )
        if data.shape[:2] != window.shape:
            raise ValueError(f"data of shape {data.shape} does not fill a {window.shape} window")

    def write_bands(
        self, window: PixelWindow, bands: np.ndarray, valid: np.ndarray | None = None
    ) -> None:
        """Write ``(h, w, count)`` uint8 pixels (``(h, w)`` for one band) into ``window``.

        ``valid`` (``(h, w)`` bool) is written as the internal mask when the writer has one.
        """
        self._check_window(window, bands)
        assert self._dataset is not None
        if bands.dtype != np.uint8:
            raise ValueError(f"pixels must be uint8, got {bands.dtype}")
        stack = bands[np.newaxis] if bands.ndim == 2 else bands.transpose(2, 0, 1)
        if stack.shape[0] != self.count:
            raise ValueError(f"got {stack.shape[0]} bands, the output has {self.count}")
        rio_window = Window(window.col_off, window.row_off, window.width, window.height)
        self._dataset.write(stack, window=rio_window)
        if self._internal_mask:
            mask = np.full(window.shape, 255, np.uint8) if valid is None else valid * np.uint8(255)
            # Inside the file, not a side-car .msk, so the COG copy carries it along.
            with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
                self._dataset.write_mask(mask, window=rio_window)

    def finalize(self) -> str:
        """Turn the written raster into a COG at the destination; returns the destination."""
        if self._finalized:
            return self.destination
        if self._dataset is None:
            raise RuntimeError(f"writer for {self.destination} was closed before finalize")
        self._dataset.close()
        self._dataset = None
        cog_path = os.path.join(self._tmp.name, "cog.tif")
        source = self._work_path
        if self.description.categories:
            # Category names and the RAT reach the output's side-car only through a VRT.
            vrt = os.path.join(self._tmp.name, "work.vrt")
            source = describe_vrt(self._work_path, vrt, self.description)
        translate_to_cog(source, cog_path, bigtiff=self._bigtiff, resampling=self._resampling)
        self.written = publish_with_sidecar(cog_path, self.destination)
        self._finalized = True
        self.close()
        return self.destination

    def close(self) -> None:
        """Drop the scratch files (publishing nothing unless :meth:`finalize` ran)."""
        if self._dataset is not None:
            self._dataset.close()
            self._dataset = None
        self._tmp.cleanup()


class ClassMapWriter(TiledCogWriter):
    """The class-map COG: uint8 class ids, nodata 255, DeepGlobe color table, class names.

    ``tags``: provenance to carry inside the file (:func:`class_map_description`).
    """

    def __init__(
        self,
        destination: str,
        info: RasterInfo,
        *,
        overview_resampling: OverviewResampling = DEFAULT_OVERVIEW_RESAMPLING,
        tmp_dir: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            destination,
            info,
            count=1,
            nodata=CLASS_NODATA,
            colormap=class_color_table(),
            overview_resampling=overview_resampling,
            tmp_dir=tmp_dir,
            description=class_map_description(tags),
        )

    def write_window(
        self, window: PixelWindow, class_ids: np.ndarray, valid: np.ndarray | None = None
    ) -> None:
        """Write ``(h, w)`` class ids; pixels where ``valid`` is False become nodata.

        A window with no valid pixel is not written at all: its blocks stay sparse, nodata.
        """
        if valid is not None and not valid.any():
            self._check_window(window, class_ids)
            return
        self.write_bands(window, class_map_pixels(class_ids, valid))


class ProbabilityWriter(TiledCogWriter):
    """The optional per-class probability COG: one uint8 band per class, 0..255 for 0..1."""

    def __init__(
        self,
        destination: str,
        info: RasterInfo,
        *,
        num_classes: int = NUM_CLASSES,
        tmp_dir: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        # Overviews of probabilities may average: nearest keeps them cheap and consistent with
        # the class map's overviews.
        description = probability_description(tags) if num_classes == NUM_CLASSES else None
        super().__init__(
            destination,
            info,
            count=num_classes,
            internal_mask=True,
            tmp_dir=tmp_dir,
            description=description,
        )

    def write_window(
        self, window: PixelWindow, probabilities: np.ndarray, valid: np.ndarray | None = None
    ) -> None:
        """Write ``(h, w, classes)`` probabilities in [0, 1]; invalid pixels are masked out."""
        if probabilities.ndim != 3:
            raise ValueError(f"probabilities must be (h, w, classes), got {probabilities.shape}")
        if valid is not None and not valid.any():  # sparse: masked out without a write
            self._check_window(window, probabilities)
            return
        scaled = np.rint(np.clip(probabilities, 0.0, 1.0) * 255.0).astype(np.uint8)
        self.write_bands(window, scaled, valid)


def class_map_pixels(class_ids: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Class ids ready to write: checked to be palette ids, nodata where not ``valid``."""
    if class_ids.ndim != 2:
        raise ValueError(f"class ids must be (h, w), got shape {class_ids.shape}")
    ids = class_ids.astype(np.uint8, copy=True)
    if np.any(class_ids.astype(np.int64) != ids) or np.any(
        (ids >= NUM_CLASSES) & (ids != CLASS_NODATA)
    ):
        raise ValueError(f"class ids must be in 0..{NUM_CLASSES - 1} (or {CLASS_NODATA})")
    if valid is not None:
        if valid.shape != ids.shape:
            raise ValueError(f"valid mask {valid.shape} does not match class ids {ids.shape}")
        ids[~valid] = CLASS_NODATA
    return ids


def _write_sparse(dst: DatasetWriter, pixels: np.ndarray, valid: np.ndarray | None) -> None:
    """Write a one-band raster's internal blocks that hold a valid pixel; skip the others
    (``SPARSE_OK``: they read back as nodata, and cost neither compression nor bytes)."""
    if valid is None or valid.all():
        dst.write(pixels[np.newaxis])
        return
    height, width = pixels.shape
    for row in range(0, height, BLOCK_SIZE):
        for col in range(0, width, BLOCK_SIZE):
            rows, cols = slice(row, row + BLOCK_SIZE), slice(col, col + BLOCK_SIZE)
            if valid[rows, cols].any():
                block = pixels[rows, cols]
                window = Window(col, row, block.shape[1], block.shape[0])
                dst.write(block[np.newaxis], window=window)


def write_class_block(
    destination: str,
    info: RasterInfo,
    window: PixelWindow,
    class_ids: np.ndarray,
    valid: np.ndarray | None = None,
) -> str:
    """One block of a scene's class map as its own GeoTIFF, for block-parallel prediction.

    The block carries the scene's CRS and the scene's transform moved to the window's corner,
    so :func:`pipelines.io.raster_assemble.assemble_cog` can place it from its georeference
    alone. A plain tiled GeoTIFF (not a COG): it is an intermediate, read once.
    """
    if not window.fits(info.height, info.width):
        raise ValueError(
            f"block ({window.describe()}) reaches past the {info.height}x{info.width} scene"
        )
    pixels = class_map_pixels(class_ids, valid)
    if pixels.shape != window.shape:
        raise ValueError(f"class ids {pixels.shape} do not fill a {window.shape} block")
    profile = _tiled_gtiff_profile(
        window.width, window.height, 1, check_output_limits(window.width, window.height, 1)
    )
    profile.update(georef_profile(info, window_transform(info.transform, window)))
    profile["nodata"] = CLASS_NODATA
    with tempfile.TemporaryDirectory(prefix="landcover-block-") as tmp:
        path = os.path.join(tmp, "block.tif")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path, "w", **profile) as dst:
                _write_sparse(dst, pixels, valid)
                dst.write_colormap(1, class_color_table())
        storage.upload_file(path, destination)
    return destination
