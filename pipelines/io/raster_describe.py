"""What a raster says about itself: class names, band descriptions, provenance tags.

A class map that opens in QGIS or ``gdalinfo`` as "forest" rather than 3, with the model and
input it came from, needs three kinds of GDAL metadata:

- **dataset tags** (provenance: model version and sha256, input sha256, options, code version)
  and **band descriptions and tags** (what each band holds; class names as ``CLASS_<value>``
  band tags) and band **scales** (probabilities stored as 0..255 for 0..1). GDAL's GTiff driver
  keeps all of these *inside* the TIFF, in its ``GDAL_METADATA`` tag, and the COG copy carries
  them along;
- **category names and a raster attribute table** (value, class name, RGBA): what QGIS's
  paletted renderer and ``gdalinfo`` show as class labels. GDAL 3.10 (rasterio 1.4.4's) keeps
  these only in a PAM side-car, ``<file>.aux.xml`` beside the file (GTiff embeds RATs only from
  GDAL 3.12), so a self-describing class map is published as the COG *and* its side-car; GDAL
  and QGIS read the side-car automatically, locally and over ``/vsigs/`` or HTTP.

rasterio has no API for category names or RATs. They are written the way GDAL itself offers
without its Python bindings: as elements of a VRT band (:func:`describe_vrt`) that the COG
copy turns into the side-car, and read back (:func:`read_description`) by having GDAL serialise
the opened dataset as a VRT, so what the tests read is what GDAL understood, not our own XML.
"""

from __future__ import annotations

import os
import tempfile
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import rasterio
import rasterio.shutil
from rasterio.errors import NotGeoreferencedWarning

from pipelines.io import storage

SIDECAR_SUFFIX = ".aux.xml"
# Band tag holding a class's name, inside the TIFF: ``CLASS_3=forest``.
CLASS_TAG_PREFIX = "CLASS_"
# GDAL's raster attribute table enums (gdal.h: GDALRATFieldType, GDALRATFieldUsage).
_GFT_INTEGER, _GFT_STRING = 0, 2
_GFU_NAME, _GFU_MINMAX, _GFU_RED, _GFU_GREEN, _GFU_BLUE, _GFU_ALPHA = 2, 5, 6, 7, 8, 9
_RAT_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("value", _GFT_INTEGER, _GFU_MINMAX),
    ("class", _GFT_STRING, _GFU_NAME),
    ("red", _GFT_INTEGER, _GFU_RED),
    ("green", _GFT_INTEGER, _GFU_GREEN),
    ("blue", _GFT_INTEGER, _GFU_BLUE),
    ("alpha", _GFT_INTEGER, _GFU_ALPHA),
)
# Tags GDAL adds by itself; not part of what a writer said.
_GDAL_OWN_TAGS = frozenset({"AREA_OR_POINT"})


@dataclass(frozen=True)
class Category:
    """One value of a thematic band: its name and display colour (RGBA)."""

    value: int
    name: str
    color: tuple[int, int, int, int]


@dataclass(frozen=True)
class RasterDescription:
    """Everything a written raster says about itself besides its pixels and georeference.

    ``categories`` describe band 1 (a thematic band); ``band_descriptions`` and ``scales`` are
    per band, in band order (empty: none). ``tags`` are dataset metadata.
    """

    tags: Mapping[str, str] = field(default_factory=dict)
    band_descriptions: tuple[str, ...] = ()
    categories: tuple[Category, ...] = ()
    scales: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        values = [c.value for c in self.categories]
        if len(set(values)) != len(values) or any(v < 0 for v in values):
            raise ValueError(f"category values must be distinct and >= 0, got {values}")

    @property
    def category_names(self) -> tuple[str, ...]:
        """GDAL's category-name list: entry ``i`` names value ``i`` (gaps are empty names)."""
        if not self.categories:
            return ()
        names = [""] * (max(c.value for c in self.categories) + 1)
        for category in self.categories:
            names[category.value] = category.name
        return tuple(names)

    def apply(self, dataset: Any) -> None:
        """Write what GTiff keeps inside the file into an open (writable) rasterio dataset."""
        if self.tags:
            dataset.update_tags(**dict(self.tags))
        for band, text in enumerate(self.band_descriptions, start=1):
            dataset.set_band_description(band, text)
        if self.scales:
            dataset.scales = tuple(self.scales)
        if self.categories:
            dataset.update_tags(
                1, **{f"{CLASS_TAG_PREFIX}{c.value}": c.name for c in self.categories}
            )

    def vrt_band_elements(self) -> list[ET.Element]:
        """``<CategoryNames>`` and ``<GDALRasterAttributeTable>`` for band 1 of a VRT."""
        if not self.categories:
            return []
        names = ET.Element("CategoryNames")
        for name in self.category_names:
            ET.SubElement(names, "Category").text = name
        rat = ET.Element("GDALRasterAttributeTable", tableType="thematic")
        for index, (name, kind, usage) in enumerate(_RAT_FIELDS):
            defn = ET.SubElement(rat, "FieldDefn", index=str(index))
            ET.SubElement(defn, "Name").text = name
            ET.SubElement(defn, "Type").text = str(kind)
            ET.SubElement(defn, "Usage").text = str(usage)
        for row, category in enumerate(sorted(self.categories, key=lambda c: c.value)):
            element = ET.SubElement(rat, "Row", index=str(row))
            for value in (category.value, category.name, *category.color):
                ET.SubElement(element, "F").text = str(value)
        return [names, rat]


def sidecar_uri(uri: str) -> str:
    """The PAM side-car GDAL reads beside a raster: ``x_mask.tif`` → ``x_mask.tif.aux.xml``."""
    return f"{uri}{SIDECAR_SUFFIX}"


def _insert_before_sources(band: ET.Element, elements: Sequence[ET.Element]) -> None:
    """Insert elements before any ``<SimpleSource>``, where GDAL's own VRTs have them."""
    first_source = next(
        (i for i, child in enumerate(band) if child.tag.endswith("Source")), len(band)
    )
    for offset, element in enumerate(elements):
        band.insert(first_source + offset, element)


def _metadata(items: Mapping[str, str]) -> ET.Element:
    element = ET.Element("Metadata")
    for key, value in items.items():
        ET.SubElement(element, "MDI", key=key).text = value
    return element


def add_to_vrt(root: ET.Element, description: RasterDescription) -> None:
    """Put all of ``description`` into a ``<VRTDataset>`` (for rasters assembled from a VRT).

    Tags become dataset ``<Metadata>``, band descriptions ``<Description>``, scales
    ``<Scale>``, class names band tags, and band 1 gets the category names and RAT; the COG copy
    of the VRT then holds the same description as a raster written through :meth:`apply`.
    """
    if description.tags:
        root.insert(0, _metadata(description.tags))
    bands = {int(b.get("band", "0")): b for b in root.findall("VRTRasterBand")}
    for number, band in sorted(bands.items()):
        elements: list[ET.Element] = []
        if number <= len(description.band_descriptions):
            text = ET.Element("Description")
            text.text = description.band_descriptions[number - 1]
            elements.append(text)
        if number <= len(description.scales):
            scale = ET.Element("Scale")
            scale.text = repr(float(description.scales[number - 1]))
            elements.append(scale)
        if number == 1 and description.categories:
            classes = {f"{CLASS_TAG_PREFIX}{c.value}": c.name for c in description.categories}
            elements += [_metadata(classes), *description.vrt_band_elements()]
        _insert_before_sources(band, elements)


def publish_with_sidecar(local_path: str, destination: str) -> list[str]:
    """Publish a local raster and, when GDAL wrote one, its ``.aux.xml``; the URIs published.

    The side-car goes first, so a reader that sees the new raster sees its side-car too; a
    stale side-car left by an earlier output is removed, never left to describe new pixels.
    """
    local_sidecar, remote_sidecar = sidecar_uri(local_path), sidecar_uri(destination)
    published = []
    if os.path.exists(local_sidecar):
        storage.upload_file(local_sidecar, remote_sidecar)
        published.append(remote_sidecar)
    elif storage.exists(remote_sidecar):
        storage.delete([remote_sidecar])
    storage.upload_file(local_path, destination)
    return [destination, *published]


def describe_vrt(src_path: str, vrt_path: str, description: RasterDescription) -> str:
    """A VRT of a local raster carrying ``description``'s categories; returns ``vrt_path``.

    The COG driver copying this VRT writes the categories into the output's side-car, and the
    source's own tags, descriptions and scales (already inside it) into the output.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        rasterio.shutil.copy(src_path, vrt_path, driver="VRT")
    tree = ET.parse(vrt_path)
    band = tree.getroot().find("VRTRasterBand[@band='1']")
    if band is None:
        raise ValueError(f"{src_path} has no band 1 to describe")
    _insert_before_sources(band, description.vrt_band_elements())
    tree.write(vrt_path, encoding="unicode")
    return vrt_path


def _serialised(path: str) -> ET.Element:
    with tempfile.TemporaryDirectory(prefix="landcover-describe-") as tmp:
        vrt = os.path.join(tmp, "read.vrt")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            rasterio.shutil.copy(path, vrt, driver="VRT")
        return ET.parse(vrt).getroot()


def _categories(band: ET.Element | None) -> tuple[Category, ...]:
    """Categories from the RAT (names and colours) or, without one, from category names."""
    if band is None:
        return ()
    rat = band.find("GDALRasterAttributeTable")
    if rat is not None:
        usage = {
            int(d.findtext("Usage", "-1")): int(d.get("index", "-1"))
            for d in rat.findall("FieldDefn")
        }
        found = []
        for row in rat.findall("Row"):
            cells = [f.text or "" for f in row.findall("F")]

            def cell(kind: int, default: str, cells: Sequence[str] = cells) -> str:
                index = usage.get(kind)
                return cells[index] if index is not None and index < len(cells) else default

            color = tuple(int(cell(u, "255")) for u in (_GFU_RED, _GFU_GREEN, _GFU_BLUE))
            alpha = int(cell(_GFU_ALPHA, "255"))
            found.append(
                Category(int(cell(_GFU_MINMAX, "0")), cell(_GFU_NAME, ""), (*color, alpha))  # type: ignore[arg-type]
            )
        return tuple(found)
    names = band.find("CategoryNames")
    if names is None:
        return ()
    return tuple(
        Category(value, c.text or "", (0, 0, 0, 255))
        for value, c in enumerate(names.findall("Category"))
        if c.text
    )


def read_description(uri: str) -> RasterDescription:
    """What GDAL reads back from a raster (and its side-car, when one is beside it).

    A remote raster is copied to local scratch together with its side-car, so the answer is the
    same wherever the file lives.
    """
    with tempfile.TemporaryDirectory(prefix="landcover-describe-") as tmp:
        path = uri
        if storage.is_remote(uri):
            path = os.path.join(tmp, os.path.basename(uri.rstrip("/")) or "raster.tif")
            storage.copy_file(uri, path)
            if storage.exists(sidecar_uri(uri)):
                storage.copy_file(sidecar_uri(uri), sidecar_uri(path))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                tags = {k: v for k, v in ds.tags().items() if k not in _GDAL_OWN_TAGS}
                descriptions = tuple(d or "" for d in ds.descriptions)
                scales = tuple(float(s) for s in ds.scales)
        band = _serialised(path).find("VRTRasterBand[@band='1']")
    return RasterDescription(
        tags=tags,
        band_descriptions=descriptions if any(descriptions) else (),
        categories=_categories(band),
        scales=scales if any(s != 1.0 for s in scales) else (),
    )
