"""Scenes on disk for the preprocess tests: encoders and tiny random scenes, shared as a fixture
(test modules import no helper module of their own under ``--import-mode=importlib``)."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

# Independent of pipelines.core.palette on purpose: the DeepGlobe colours as the challenge lists
# them, looked up after thresholding each channel at 128.
DEEPGLOBE = {
    (0, 255, 255): "urban",
    (255, 255, 0): "agriculture",
    (255, 0, 255): "rangeland",
    (0, 255, 0): "forest",
    (0, 0, 255): "water",
    (255, 255, 255): "barren",
    (0, 0, 0): "unknown",
}


def _packed(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.uint32)
    return rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]


class SceneFiles:
    """PIL encoders/decoders, scene writers and an independent mask decode (no palette module)."""

    deepglobe = DEEPGLOBE
    names: ClassVar[list[str]] = list(DEEPGLOBE.values())
    packed_colors: ClassVar[dict[int, str]] = {
        int(_packed(np.array(color))): name for color, name in DEEPGLOBE.items()
    }
    packed = staticmethod(_packed)

    @staticmethod
    def png(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    @staticmethod
    def jpeg(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="JPEG", quality=90)
        return buffer.getvalue()

    @staticmethod
    def rgb(data: bytes) -> np.ndarray:
        """Pixels as GDAL decodes them, straight through rasterio (the decoder the pipeline
        declares; JPEG decoders differ in chroma upsampling, so PIL's pixels would not do)."""
        import warnings

        from rasterio.errors import NotGeoreferencedWarning
        from rasterio.io import MemoryFile

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with MemoryFile(data) as memfile, memfile.open() as dataset:
                return np.ascontiguousarray(dataset.read([1, 2, 3]).transpose(1, 2, 0))

    @staticmethod
    def write_scene(folder: Path, scene_id: str, image: np.ndarray, ids: np.ndarray) -> None:
        colors = np.array(list(DEEPGLOBE), np.uint8)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{scene_id}_sat.jpg").write_bytes(SceneFiles.jpeg(image))
        (folder / f"{scene_id}_mask.png").write_bytes(SceneFiles.png(colors[ids]))

    @staticmethod
    def tiny_scene(seed: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
        ids = rng.integers(0, 7, (height, width)).astype(np.uint8)
        return image, ids

    @staticmethod
    def independent_ids(mask_png: bytes) -> np.ndarray:
        """Class ids by thresholding and a lookup of colours (no palette module)."""
        names = SceneFiles.names
        packed = _packed((SceneFiles.rgb(mask_png) >= 128).astype(np.uint8) * 255)
        ids = np.full(packed.shape, names.index("unknown"), np.uint8)
        for color, name in SceneFiles.packed_colors.items():
            ids[packed == color] = names.index(name)
        return ids

    @staticmethod
    def independent_counts(mask_pngs: list[bytes]) -> dict[str, int]:
        names = SceneFiles.names
        counts: Counter[str] = Counter()
        for data in mask_pngs:
            values, n = np.unique(SceneFiles.independent_ids(data), return_counts=True)
            counts.update({names[v]: int(c) for v, c in zip(values, n, strict=True)})
        return {name: counts[name] for name in names}


@pytest.fixture
def scene_files() -> type[SceneFiles]:
    return SceneFiles
