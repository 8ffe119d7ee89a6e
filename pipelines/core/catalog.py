"""What a scene is: its id, its image file, its optional label file, their formats, and where
its georeference comes from. The one answer every stage and flow asks.

Preprocess pairs scenes with it, predict and the nightly flow list them with it, evaluate pairs
predictions with truths with it, the drop flow checks conflicts with ``raw/`` with it and the
train flow fingerprints and stages its val scenes with it. So "which files make scene ``a``" has
one answer: ``a_sat.jpg`` + ``a_mask.tif`` is the same scene in every stage, and a second label
``a_mask.png`` beside it is a duplicate everywhere (never silently a second scene, or a file one
stage picks and another ignores).

**Ids compare normalised**: :func:`scene_key` (:func:`pipelines.core.uris.case_key`: casefold
and Unicode compatibility form, which includes NFC), across extensions, so ``A_sat.jpg`` and
``a_sat.TIF`` are two images of one scene, and ``é`` spelled precomposed or decomposed is one id.
A scene keeps the spelling of the file that was used.

**Names are literal**: this module never globs; it sorts names it is given. A ``tile[1]`` is a
scene id like any other (the storage layer escapes it, :func:`pipelines.io.storage.literal`).

Pure: names in, answers out (no I/O), so the drop flow can ask it about a listing before
anything is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.core.naming import (
    LABEL_MASK_SUFFIXES,
    SCENE_IMAGE_SUFFIXES,
    basename,
)
from pipelines.core.uris import case_key

IMAGE, LABEL = "image", "label"
# File formats by extension: what a scene's image or label file is.
_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".tif": "tiff", ".tiff": "tiff"}
# GDAL's world-file names for an image (``a_sat.jpg`` → ``a_sat.jgw``, ``a_sat.jpgw``,
# ``a_sat.wld``): first and last letter of the extension + ``w``, the extension + ``w``, ``wld``.
WORLD_FILE_EXTENSIONS: tuple[str, ...] = (".jgw", ".jpgw", ".jpegw", ".pgw", ".pngw", ".wld")
_WORLD_FILES_OF = {
    "jpeg": (".jgw", ".jpgw", ".jpegw", ".wld"),
    "png": (".pgw", ".pngw", ".wld"),
}
# Where a scene's georeference comes from.
GEOREF_RASTER = "raster"  # GeoTIFF tags (if the raster has any)
GEOREF_WORLD_FILE = "world file"  # a .jgw/.pgw/.wld beside a JPEG/PNG
GEOREF_NONE = "none"  # a JPEG/PNG without a world file: pixel space only


def scene_key(scene_id: str) -> str:
    """The id as compared: equal for ids that differ only by case or Unicode form."""
    return case_key(scene_id)


@dataclass(frozen=True)
class SceneFile:
    """One file that belongs to a scene: its role (image or label) and format."""

    uri: str
    scene_id: str  # as spelled in the file name
    role: str  # IMAGE | LABEL
    format: str  # "jpeg" | "png" | "tiff"

    @property
    def key(self) -> str:
        return scene_key(self.scene_id)


def _split_name(name: str, suffixes: tuple[str, ...]) -> tuple[str, str] | None:
    lower = name.lower()
    for suffix in suffixes:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return None


def scene_file(uri: str) -> SceneFile | None:
    """``…/a_sat.jpg`` → an image of scene ``a``, ``…/a_mask.tif`` → a label; else None.

    Suffixes match in any case (``A_SAT.JPG``); the id keeps its spelling.
    """
    name = basename(uri)
    for role, suffixes in ((IMAGE, SCENE_IMAGE_SUFFIXES), (LABEL, LABEL_MASK_SUFFIXES)):
        found = _split_name(name, suffixes)
        if found is not None:
            scene_id, suffix = found
            return SceneFile(uri, scene_id, role, _FORMATS[suffix[suffix.rindex(".") :]])
    return None


def world_file_candidates(image_uri: str) -> tuple[str, ...]:
    """The world-file names GDAL looks for beside a JPEG/PNG image (none for a TIFF)."""
    found = scene_file(image_uri)
    if found is None or found.format not in _WORLD_FILES_OF:
        return ()
    stem = image_uri[: image_uri.rindex(".")]
    return tuple(stem + ext for ext in _WORLD_FILES_OF[found.format])


def _rank(file: SceneFile) -> tuple[int, str]:
    suffixes = SCENE_IMAGE_SUFFIXES if file.role == IMAGE else LABEL_MASK_SUFFIXES
    lower = file.uri.lower()
    return next(i for i, s in enumerate(suffixes) if lower.endswith(s)), file.uri


@dataclass(frozen=True)
class Scene:
    """One scene: an image and/or a label file of one id (at most one of each)."""

    scene_id: str
    image: SceneFile | None = None
    label: SceneFile | None = None
    world_file: str | None = None  # the image's world file, when one lies beside it

    @property
    def key(self) -> str:
        return scene_key(self.scene_id)

    @property
    def labeled(self) -> bool:
        return self.image is not None and self.label is not None

    @property
    def georeference(self) -> str:
        """Where the image's georeference comes from: raster tags, a world file, or none."""
        if self.image is None or self.image.format == "tiff":
            return GEOREF_RASTER
        return GEOREF_WORLD_FILE if self.world_file else GEOREF_NONE

    @property
    def files(self) -> tuple[str, ...]:
        """Every file this scene is made of (image, its world file, label)."""
        parts = (
            self.image.uri if self.image else None,
            self.world_file,
            self.label.uri if self.label else None,
        )
        return tuple(uri for uri in parts if uri)


@dataclass(frozen=True)
class Problem:
    """A scene file the catalog could not use, and why (a duplicate of another)."""

    uri: str
    reason: str
    scene_id: str


@dataclass(frozen=True)
class Catalog:
    """The scenes of a listing, by normalised id, and the files left over as problems."""

    scenes: tuple[Scene, ...] = ()
    problems: tuple[Problem, ...] = ()

    def get(self, scene_id: str) -> Scene | None:
        """The scene whose id equals ``scene_id`` up to case and Unicode form."""
        key = scene_key(scene_id)
        return next((s for s in self.scenes if s.key == key), None)

    @property
    def images(self) -> tuple[Scene, ...]:
        """Scenes with an image (what inference predicts)."""
        return tuple(s for s in self.scenes if s.image is not None)

    @property
    def labeled(self) -> tuple[Scene, ...]:
        """Scenes with an image and a label (what preprocessing and evaluation read)."""
        return tuple(s for s in self.scenes if s.labeled)

    @property
    def files(self) -> tuple[str, ...]:
        """Every file that belongs to a scene, problems included (what a fingerprint covers:
        any of them changing can change what a stage reads)."""
        used = [uri for scene in self.scenes for uri in scene.files]
        return tuple(sorted({*used, *(p.uri for p in self.problems)}))


def _pick(files: list[SceneFile], kind: str) -> tuple[SceneFile | None, list[Problem]]:
    if not files:
        return None, []
    ranked = sorted(files, key=_rank)
    used = ranked[0]
    return used, [
        Problem(
            f.uri, f"duplicate {kind} of scene {used.scene_id}; {used.uri} was used", used.scene_id
        )
        for f in ranked[1:]
    ]


def build_catalog(uris: Iterable[str]) -> Catalog:
    """The scenes the files ``uris`` make (other files are ignored), sorted by id.

    Per normalised id: the image and label first in suffix order (``naming``'s
    ``SCENE_IMAGE_SUFFIXES`` / ``LABEL_MASK_SUFFIXES``, then name) are used; every other image
    or label of that id is a :class:`Problem` naming the file that was used.
    """
    uris = list(uris)
    present = {uri.lower(): uri for uri in uris}
    grouped: dict[str, list[SceneFile]] = {}
    for uri in uris:
        found = scene_file(uri)
        if found is not None:
            grouped.setdefault(found.key, []).append(found)
    scenes: list[Scene] = []
    problems: list[Problem] = []
    for files in grouped.values():
        image, image_problems = _pick([f for f in files if f.role == IMAGE], IMAGE)
        label, label_problems = _pick([f for f in files if f.role == LABEL], LABEL)
        problems += image_problems + label_problems
        world = None
        if image is not None:
            candidates = (c.lower() for c in world_file_candidates(image.uri))
            world = next((present[c] for c in candidates if c in present), None)
        named_by = image or label
        assert named_by is not None
        scenes.append(Scene(named_by.scene_id, image, label, world))
    scenes.sort(key=lambda s: (s.key, s.scene_id))
    problems.sort(key=lambda p: p.uri)
    return Catalog(tuple(scenes), tuple(problems))


def conflicts_with(existing: Iterable[str], incoming: Iterable[str]) -> list[str]:
    """Why ``incoming`` files would clash with the scenes ``existing`` files already make.

    An incoming image (or label) whose scene already has an image (or label) under *another*
    name, say ``a_mask.png`` arriving where ``a_mask.tif`` is, would leave two labels of one
    scene; each such file is named. A file of the same name up to case and Unicode form is not
    a clash here (the caller compares its bytes).
    """
    have = build_catalog(existing)
    reasons = []
    for uri in incoming:
        found = scene_file(uri)
        if found is None:
            continue
        scene = have.get(found.scene_id)
        held = None if scene is None else (scene.image if found.role == IMAGE else scene.label)
        if held is not None and case_key(basename(held.uri)) != case_key(basename(uri)):
            reasons.append(
                f"{basename(uri)} would be a second {found.role} of scene {held.scene_id}, "
                f"which already has {basename(held.uri)}"
            )
    return reasons
