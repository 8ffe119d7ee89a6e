"""``landcover bench train``: training patches/s and ms/step of each architecture at 612×612.

Times the real training step (``models.steps.make_train_step``: forward, global-batch Dice
loss, gradients, AdamW update as the trainer makes it) under the default strategy, fed from
memory so that only the model is measured (``landcover bench input`` measures the input).
Warm-up steps, which include tracing, are excluded. Defaults keep it to a few minutes on a
2-core CPU: batch 2 and 16 base filters (U-Net widths 16…256; ResNet50 encoder at its fixed
widths, decoder 64…4).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.registry import ARCHITECTURES, architectures_text, parse_architectures
from pipelines.core.palette import NUM_CLASSES


def filters_description(arch: str, base_filters: int) -> str:
    """The layer widths ``base_filters`` gives ``arch``, for the benchmark's report line."""
    from models.registry import spec

    return spec(arch).describe_widths(base_filters)


def bench_arch(
    arch: str,
    *,
    size: int,
    batch_size: int,
    base_filters: int,
    steps: int,
    warmup: int,
    jit: bool = False,
    seed: int = 0,
    mixed_precision: bool = False,
) -> dict[str, Any]:
    """Time ``steps`` training steps of ``arch`` after ``warmup`` untimed ones."""
    from pipelines.bench.device import device_name

    losses, times, warmup_s, model = train_steps(
        arch,
        size=size,
        batch_size=batch_size,
        base_filters=base_filters,
        steps=warmup + steps,
        jit=jit,
        seed=seed,
        mixed_precision=mixed_precision,
        warmup=warmup,
    )
    ms_per_step = 1000.0 * float(np.median(times))
    seconds_per_mp = ms_per_step / 1000.0 / (batch_size * size * size / 1e6)
    return {
        "arch": arch,
        "size": size,
        "batch_size": batch_size,
        "base_filters": base_filters,
        "filters": filters_description(arch, base_filters),
        "params": int(model.count_params()),
        "ms_per_step": round(ms_per_step, 1),
        "patches_per_s": round(batch_size * 1000.0 / ms_per_step, 3),
        "seconds_per_megapixel": round(seconds_per_mp, 4),
        "steps_timed": steps,
        "warmup_s": round(warmup_s, 1),
        "jit": jit,
        "mixed_precision": mixed_precision,
        "device": device_name(),
        "final_loss": round(losses[-1], 6),
    }


def train_steps(
    arch: str,
    *,
    size: int,
    batch_size: int,
    base_filters: int,
    steps: int,
    jit: bool = False,
    seed: int = 0,
    mixed_precision: bool = False,
    warmup: int = 0,
    initial_weights: list[Any] | None = None,
) -> tuple[list[float], list[float], float, Any]:
    """``steps`` real training steps on one fixed random batch: (losses, seconds of each step
    after ``warmup``, warm-up seconds, the model).

    ``mixed_precision`` builds under Keras's ``mixed_float16`` policy with the trainer's dynamic
    loss scaling (``models.train.loop``); ``initial_weights`` starts from given weights (the
    same start for a float32 and a mixed run, as the numeric check compares).
    """
    import keras
    import tensorflow as tf

    from models.architectures import build_model
    from models.steps import LossSpec, make_train_step

    keras.utils.set_random_seed(seed)
    strategy = tf.distribute.get_strategy()
    previous = keras.config.dtype_policy()
    if mixed_precision:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_model(arch, base_filters=base_filters)
    finally:
        keras.config.set_dtype_policy(previous)
    if initial_weights is not None:
        model.set_weights(initial_weights)
    optimizer = keras.optimizers.AdamW(1e-3, weight_decay=1e-4)  # as models.train.loop
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    if mixed_precision:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(seed)
    images = rng.random((batch_size, size, size, 3), dtype=np.float32)
    masks = np.eye(NUM_CLASSES, dtype=np.float32)[
        rng.integers(0, NUM_CLASSES, (batch_size, size, size))
    ]
    iterator = iter(tf.data.Dataset.from_tensors((images, masks)).repeat())
    step = make_train_step(strategy, model, optimizer, LossSpec(), jit_compile=jit)
    losses: list[float] = []
    times: list[float] = []
    started = time.perf_counter()
    warmup_s = 0.0
    for index in range(steps):
        t0 = time.perf_counter()
        losses.append(float(step(iterator)))
        if index >= warmup:
            times.append(time.perf_counter() - t0)
        elif index == warmup - 1:
            warmup_s = time.perf_counter() - started
    return losses, times, warmup_s, model


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover bench train",
        description="training patches/s and ms/step of each architecture (CPU or GPU)",
    )
    parser.add_argument(
        "--archs", default=",".join(ARCHITECTURES), help=f"comma list of {architectures_text()}"
    )
    parser.add_argument("--size", type=int, default=612)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument(
        "--base-filters", type=int, default=16, help="--base-filters of every architecture"
    )
    parser.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps (tracing)")
    parser.add_argument("--jit", action="store_true")
    parser.add_argument(
        "--mixed-precision",
        action="store_true",
        help="mixed_float16 with dynamic loss scaling, as training's gpu preset",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    import tensorflow as tf

    from pipelines.bench.device import device_name

    devices = [d.device_type for d in tf.config.list_logical_devices()]
    print(
        f"device: {device_name()} (logical: {devices}), {os.cpu_count()} CPUs, TF {tf.__version__}",
        flush=True,
    )
    results = []
    for arch in parse_architectures(args.archs):
        result = bench_arch(
            arch,
            size=args.size,
            batch_size=args.batch_size,
            base_filters=args.base_filters,
            steps=args.steps,
            warmup=args.warmup,
            jit=args.jit,
            mixed_precision=args.mixed_precision,
        )
        results.append(result)
        precision = "mixed_float16" if args.mixed_precision else "float32"
        print(
            f"{arch:>14}: {result['patches_per_s']:7.3f} patches/s, {result['ms_per_step']:9.1f} "
            f"ms/step, {result['seconds_per_megapixel']} s/MP at {args.size}x{args.size}, batch "
            f"{args.batch_size}, {precision}, on {result['device']}, {result['filters']}, "
            f"{result['params']:,} params",
            flush=True,
        )
    print(json.dumps(results))
    return 0
