"""``landcover bench preprocess``: what a scene costs in the Beam job, against decoding it alone.

What is measured, on one worker (DirectRunner, in-process, ``--direct_num_workers 1``):

- **job ms/scene (marginal)**: wall time of the whole preprocess job over N scenes minus the same
  job over 1 scene, divided by N - 1. The subtraction removes what every run pays once
  (pipeline construction, runner start-up, the manifest step), leaving what one more scene costs:
  reading, decoding, classes, cutting, encoding, Beam's per-element work and writing shards.
  Both runs go to fresh folders; a warm-up run first pays the one-time imports.
- **job ms/scene (whole)**: the N-scene wall time divided by N, start-up included, for honesty.
- **in-process ms/scene**: the same per-scene functions the DoFn calls (decode, classes, patches,
  encoding), called directly without Beam or any writing, to show what Beam and I/O add.
- **decode-only ms/scene**: GDAL decoding the JPEG and the PNG into (H, W, 3) RGB arrays, as
  the job's decoder does, bytes already in memory (no palette lookup, no file reads).
- **ratio** = marginal job ms/scene / decode-only ms/scene; the target is ≤ 1.25 (goal 1.1).
- **bytes/patch, bytes/scene**: shard bytes on disk divided by patches and scenes.
- **reader patches/s**: ``records.make_dataset`` parsing the written shards (one-hot excluded).

Input: ``--input`` (default: the real sample at ``../shared/deepglobe-sample`` when present, else
synthetic 2448² scenes from :mod:`pipelines.synth`), staged into a temporary folder as N scenes,
cycling through the input's scenes under new ids when it has fewer than N.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.core import naming
from pipelines.core.records import CODECS, COMPRESSIONS, SPLITS, RecordFormat
from pipelines.io.imaging import decode_image_bytes, decode_mask_bytes

if TYPE_CHECKING:
    from pipelines.core.manifest import Manifest

# The real sample beside the checkout (../shared), or beside the folder of worktrees it is in.
_HERE = Path(__file__).resolve()
SAMPLE_DIR = next(
    (
        candidate
        for parent in _HERE.parents[3:5]
        if (candidate := parent / "shared" / "deepglobe-sample").is_dir()
    ),
    _HERE.parents[3] / "shared" / "deepglobe-sample",
)
TARGET_RATIO = 1.25
ONE_WORKER = ("--direct_num_workers", "1", "--direct_running_mode", "in_memory")


@dataclass(frozen=True)
class FormatResult:
    fmt: RecordFormat
    job_whole: Timing  # per scene, start-up included
    job_marginal: Timing  # per scene, start-up subtracted
    inprocess: Timing  # per scene, no Beam, no I/O
    bytes_per_patch: float
    bytes_per_scene: float
    reader_patches_per_s: float | None


def _scene_ids(input_uri: str) -> list[str]:
    from pipelines.io import storage  # Beam: only when running

    images = storage.match_in(input_uri, f"*{naming.LABELED_IMAGE_SUFFIX}")
    ids = [i for uri in images if (i := naming.labeled_image_id_of(uri)) is not None]
    return [i for i in ids if storage.exists(storage.join(input_uri, naming.mask_name(i)))]


def stage_scenes(input_uri: str, folder: str, n: int) -> list[tuple[str, str]]:
    """Copy n scenes (cycling, renamed when repeated) into ``folder``; returns their file pairs."""
    from pipelines.io import storage

    ids = _scene_ids(input_uri)
    if not ids:
        raise FileNotFoundError(f"no scene pairs under {input_uri}")
    pairs = []
    for k in range(n):
        source = ids[k % len(ids)]
        target = source if k < len(ids) else f"r{k // len(ids)}x{source}"
        pair = []
        for name in (naming.image_name, naming.mask_name):
            staged = os.path.join(folder, name(target))
            storage.copy_file(storage.join(input_uri, name(source)), staged)
            pair.append(staged)
        pairs.append((pair[0], pair[1]))
    return pairs


@dataclass(frozen=True)
class Timing:
    """Wall and CPU seconds of one measured call (CPU: this process, all its threads)."""

    wall: float
    cpu: float

    def __sub__(self, other: Timing) -> Timing:
        return Timing(self.wall - other.wall, self.cpu - other.cpu)

    def __truediv__(self, n: float) -> Timing:
        return Timing(self.wall / n, self.cpu / n)


def _timed(fn: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def _best_of(repeats: int, fn: Callable[[], object]) -> Timing:
    """Best wall and best CPU time over repeats (taken separately: each is a lower bound)."""
    runs = [_timed(fn) for _ in range(repeats)]
    return Timing(min(r.wall for r in runs), min(r.cpu for r in runs))


def _mean(timings: list[Timing]) -> Timing:
    return Timing(
        statistics.fmean(t.wall for t in timings), statistics.fmean(t.cpu for t in timings)
    )


def decode_only(pairs: list[tuple[str, str]], repeats: int) -> Timing:
    """Mean over scenes of the best-of-``repeats`` time to decode the JPEG and the PNG."""
    times = []
    for image_path, mask_path in pairs:
        image_bytes, mask_bytes = Path(image_path).read_bytes(), Path(mask_path).read_bytes()

        def decode(a: bytes = image_bytes, b: bytes = mask_bytes) -> None:
            decode_image_bytes(a, "jpg")
            decode_image_bytes(b, "png")  # the mask as RGB: the PNG decode, no palette lookup

        times.append(_best_of(repeats, decode))
    return _mean(times)


def inprocess(
    pairs: list[tuple[str, str]], patch_size: int, fmt: RecordFormat, repeats: int
) -> Timing:
    """The DoFn's per-scene functions called directly: no Beam, no file reads or writes."""
    from pipelines.preprocess.scenes import class_pixels, scene_records

    times = []
    for image_path, mask_path in pairs:
        image_bytes, mask_bytes = Path(image_path).read_bytes(), Path(mask_path).read_bytes()

        def work(a: bytes = image_bytes, b: bytes = mask_bytes) -> None:
            image, ids = decode_image_bytes(a, "jpg"), decode_mask_bytes(b, "png")
            class_pixels(ids)
            for _ in scene_records("bench", image, ids, patch_size, fmt):
                pass

        times.append(_best_of(repeats, work))
    return _mean(times)


def _shard_bytes(records_uri: str) -> int:
    from pipelines.io.records import split_files

    return sum(os.path.getsize(f) for split in SPLITS for f in split_files(records_uri, split))


def reader_patches_per_s(records_uri: str, limit: int = 128) -> float:
    from models.records import make_dataset

    dataset = make_dataset(records_uri, "train", deterministic=True, shuffle_files=False)
    dataset = dataset.take(limit)
    for _ in dataset.take(1):  # build the pipeline and open files outside the timing
        pass
    start = time.perf_counter()
    count = sum(1 for _ in dataset)
    return count / max(time.perf_counter() - start, 1e-9)


def bench_format(
    work: str,
    many: str,
    one: str,
    pairs: list[tuple[str, str]],
    patch_size: int,
    fmt: RecordFormat,
    repeats: int,
) -> FormatResult:
    from pipelines.preprocess.job import run_preprocess
    from pipelines.preprocess.options import PreprocessOptions

    def job(input_dir: str, tag: str) -> tuple[Timing, str, Manifest | None]:
        runs: list[Timing] = []
        manifest: Manifest | None = None
        out = ""
        for r in range(repeats):
            out = os.path.join(work, f"out-{fmt.codec}-{fmt.compression}-{tag}-{r}")
            options = PreprocessOptions(
                input_dir, out, patch_size=patch_size, val_fraction=0.0, record_format=fmt
            )

            def call(options: PreprocessOptions = options) -> None:
                nonlocal manifest
                manifest = run_preprocess(options, beam_args=ONE_WORKER)

            runs.append(_timed(call))
        best = Timing(min(t.wall for t in runs), min(t.cpu for t in runs))
        return best, out, manifest

    job(one, "warmup")
    t_one, _, _ = job(one, "one")
    t_many, out_many, manifest = job(many, "many")
    if manifest is None:
        raise ValueError("--repeats must be at least 1")
    n = len(pairs)
    patches = manifest.total_patches
    total_bytes = _shard_bytes(out_many)
    try:
        reader = reader_patches_per_s(out_many)
    except Exception as exc:  # the reader is a bonus figure; never fail the bench on it
        print(f"  (reader not measured: {type(exc).__name__}: {exc})", file=sys.stderr)
        reader = None
    return FormatResult(
        fmt=fmt,
        job_whole=t_many / n,
        job_marginal=(t_many - t_one) / max(n - 1, 1),
        inprocess=inprocess(pairs, patch_size, fmt, repeats),
        bytes_per_patch=total_bytes / max(patches, 1),
        bytes_per_scene=total_bytes / n,
        reader_patches_per_s=reader,
    )


def format_table(results: list[FormatResult], decode: Timing) -> str:
    """Markdown table; times in ms/scene as CPU (wall), ratios on CPU time."""
    header = (
        "| codec/compression | job marginal ms/scene | ratio vs decode | job whole ms/scene "
        "| in-process ms/scene | MB/patch | MB/scene | reader patches/s |\n"
        "|---|---|---|---|---|---|---|---|"
    )

    def ms(t: Timing) -> str:
        return f"{1000 * t.cpu:.0f} ({1000 * t.wall:.0f})"

    rows = []
    for r in results:
        ratio = r.job_marginal.cpu / decode.cpu
        verdict = "ok" if ratio <= TARGET_RATIO else "over target"
        reader = f"{r.reader_patches_per_s:.0f}" if r.reader_patches_per_s else "-"
        rows.append(
            f"| {r.fmt.codec}/{r.fmt.compression} | {ms(r.job_marginal)} | {ratio:.2f} "
            f"({r.job_marginal.wall / decode.wall:.2f}) {verdict} | {ms(r.job_whole)} "
            f"| {ms(r.inprocess)} | {r.bytes_per_patch / 1e6:.3f} | {r.bytes_per_scene / 1e6:.2f} "
            f"| {reader} |"
        )
    return "\n".join([header, *rows])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover bench preprocess",
        description="ms/scene of the preprocess job on one worker vs decoding alone, and bytes "
        "per patch for each record format tried.",
    )
    parser.add_argument("--scenes", type=int, default=8, help="scenes in the timed run (>= 2)")
    parser.add_argument(
        "--input",
        default=None,
        help="scenes to use (default: ../shared/deepglobe-sample if present, else synthetic)",
    )
    parser.add_argument("--patch-size", type=int, default=612)
    parser.add_argument("--codec", choices=CODECS, default=RecordFormat().codec)
    parser.add_argument("--compression", choices=COMPRESSIONS, default=RecordFormat().compression)
    parser.add_argument(
        "--all-formats", action="store_true", help="try raw and png, each with none and gzip"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs per timing; best is kept")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.scenes < 2:
        parser.error("--scenes must be >= 2 (the marginal cost needs two runs of different size)")
    formats = (
        [RecordFormat(c, z) for c in ("raw", "png") for z in ("none", "gzip")]
        if args.all_formats
        else [RecordFormat(args.codec, args.compression)]
    )
    with tempfile.TemporaryDirectory(prefix="landcover-bench-") as work:
        source = args.input
        if source is None and SAMPLE_DIR.is_dir() and list(SAMPLE_DIR.glob("*_sat.jpg")):
            source = str(SAMPLE_DIR)
        if source is None:
            from pipelines.synth import write_scenes

            source = os.path.join(work, "synthetic")
            distinct = min(args.scenes, 4)
            print(f"no real sample at {SAMPLE_DIR}: synthesizing {distinct} 2448² scenes")
            write_scenes(source, distinct, size=2448, seed=0)
        many, one = os.path.join(work, "many"), os.path.join(work, "one")
        pairs = stage_scenes(source, many, args.scenes)
        stage_scenes(source, one, 1)
        print(
            f"bench preprocess: {args.scenes} scenes from {source} (cycled under new ids if "
            f"fewer), patch {args.patch_size}, one worker (DirectRunner in-process), best of "
            f"{args.repeats}"
        )
        decode = decode_only(pairs, args.repeats)
        results = []
        for fmt in formats:
            print(f"  running {fmt.codec}/{fmt.compression} ...", flush=True)
            results.append(bench_format(work, many, one, pairs, args.patch_size, fmt, args.repeats))
    print(
        f"\ndecode-only (GDAL JPEG + PNG → RGB arrays, bytes in memory): "
        f"{1000 * decode.cpu:.0f} ms/scene CPU ({1000 * decode.wall:.0f} wall)"
    )
    print(format_table(results, decode))
    print(
        "\nms/scene as CPU time of this process (wall time in brackets); the ratio and its verdict"
        f" use CPU time (target <= {TARGET_RATIO:g}x decode-only), robust on a shared machine.\n"
        "marginal = (job over N scenes - job over 1 scene) / (N - 1): what one more scene costs, "
        "start-up excluded;\nwhole = N-scene job / N, start-up included; in-process = decode + "
        "classes + patch encoding called directly, without Beam or I/O."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
