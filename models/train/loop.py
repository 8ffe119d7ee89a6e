"""``landcover train``: segmentation training (the recipe of ``TrainConfig``) under tf.distribute.

Python API (what the Prefect flows call)::

    from models.train.config import TrainConfig
    from models.train.loop import train
    metadata = train(TrainConfig(data="gs://b/records/v1", output="gs://b/models/unet/v1"))

One custom loop (``models.steps``) serves every strategy (``models.strategy``), because Keras 3's
``fit`` does not run under ``MultiWorkerMirroredStrategy``. A run:

1. picks the strategy; the global batch is ``batch_size`` (per replica) × replicas; reads and
   hashes every shard against the manifest (``models.train.data_check``), naming a bad one;
2. builds the model and the optimizer (AdamW on the warm-up + decay schedule of
   ``models.train.schedule``) in the strategy's scope (the optimizer is built on *all*
   variables before an encoder freeze, so it can go on after the unfreeze);
3. restores the latest checkpoint under ``OUTPUT/checkpoints`` if there is one, *only* when its
   data and config fingerprints match this run's (else a refusal naming ``--fresh``): step,
   epoch, weights and optimizer state (moments, loss scale), the best epoch so far, then skips
   the batches of the interrupted epoch that were already trained on (exactly the same batches
   with ``--deterministic``; see ``models.input``);
4. trains, logging step, loss and patches/s every ``log_every`` steps and writing TensorBoard
   scalars under ``OUTPUT/logs``; checkpoints every ``checkpoint_every`` steps and at each
   epoch end; validates each epoch (val Dice and the DeepGlobe mIoU of ``pipelines.core.metrics``);
5. stops with ``models.train.epoch.NonFiniteLossError`` (exit status 3) the moment a loss is
   NaN or infinite, before that step is checkpointed, so the last checkpoint stays usable;
6. keeps the weights of the epoch with the best val mIoU aside (``models.train.selection``;
   early stopping with ``early_stopping_patience``) and publishes *those*;
7. writes ``model.keras`` and ``metadata.json`` to ``OUTPUT`` (the chief only; under
   multi-worker the other workers save to a temporary folder and delete it, as TF recommends,
   because saving may take part in collectives).

This module is the run itself (strategy, build, the loop over epochs); one epoch's steps,
validation and log line are ``models.train.epoch``'s. Checkpoint and resume
state live in ``models.train.checkpoints``, ``model.keras`` and ``metadata.json`` in
``models.train.artifacts``, the options and their defaults in ``models.train.config``.
TensorBoard logs are written by TensorFlow's own filesystem layer, which speaks real ``gs://``
but ignores ``STORAGE_EMULATOR_HOST``; ``log_dir`` (like ``checkpoint_dir``) moves them elsewhere
(tests on the emulator point them at a local folder).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from models.input import release_in_background
from models.loss_options import median_frequency_weights, parse_class_weights
from models.steps import LossSpec
from models.strategy import parse_tf_config
from models.train import artifacts, selection
from models.train.budget import BudgetPlan, Probe, plan_budget
from models.train.checkpoints import RunCheckpoints, check_resume, epoch_position
from models.train.config import TrainConfig, default_steps_per_epoch
from models.train.data_check import check_training_data
from models.train.epoch import LOG, TrainRun, epoch_input, log_epoch, train_epoch, validate
from models.train.schedule import SchedulePlan
from pipelines.core.manifest import Manifest
from pipelines.core.palette import CLASS_NAMES
from pipelines.core.provenance import fingerprint
from pipelines.io import records, storage

if TYPE_CHECKING:
    import keras

    from models.train.schedule import WarmupDecay

EXIT_NON_FINITE = 3
# Timed train steps of a budgeted run's probe (after one that traces); their median is the step
# time the plan uses. With the mean of 3, the input pipeline's warm-up made the 25-minute
# deepglobe-512 run plan 0.574 s a step where its steps took ~0.50 s: it finished its planned
# steps after 21 of its 25 minutes.
PROBE_STEPS = 8


def resolve_class_weights(config: TrainConfig, manifest: Manifest) -> tuple[float, ...] | None:
    """``--class-weights`` as numbers: ``auto`` → median frequency of the train split's pixels."""
    parsed = parse_class_weights(config.class_weights)
    if parsed == "auto":
        return median_frequency_weights(manifest.class_pixels_by_split["train"])
    return parsed if isinstance(parsed, tuple) else None


@contextlib.contextmanager
def _dtype_policy(mixed_precision: bool) -> Iterator[None]:
    """Set Keras's global dtype policy for the model build, and put the old one back after."""
    import keras

    previous = keras.config.dtype_policy()
    if mixed_precision:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def _keras_default_seeds(seed: int) -> Iterator[None]:
    """Keras's unseeded initializers and layers draw their seeds from a private ``Random(seed)``.

    Keras takes each one from Python's *global* ``random`` (``keras.src.random.seed_generator.
    make_default_seed``), which every other thread of the process may draw from at the same
    time: Prefect's client, Beam, a test harness. One such draw during the model build gives
    different initial weights (measured: a thread calling ``random.random()`` made two
    otherwise identical runs differ from the first step). So the initial weights depend on
    ``seed`` alone. Keras keeps the module in one private attribute; if a Keras upgrade moves
    it, this fails loudly (and ``tests/models/train/test_determinism.py`` says so).
    """
    import random

    from keras.src.random import seed_generator

    shared = seed_generator.python_random
    seed_generator.python_random = random.Random(seed)  # type: ignore[assignment]
    try:
        yield
    finally:
        seed_generator.python_random = shared


@contextlib.contextmanager
def _op_determinism(enabled: bool) -> Iterator[None]:
    """Deterministic TF kernels and an unrewritten step graph for this run only.

    Both switches are process-wide, so they are put back afterwards. Op determinism alone is
    not enough on CPU: with Grappler's graph rewrites on, the traced train step's results
    depended on how its ops were scheduled across threads (two runs from the same weights and
    batches differed from the second step on, by ~1e-6 in the loss, growing to ~0.02 in val
    mIoU over the demo), while the same step run eagerly, with one inter-op thread, or with
    Grappler off was bit-identical. Grappler off costs no measurable speed on the demo's U-Net
    (24 CPU steps: 8.4 s against 8.1-8.7 s); a single inter-op thread cost ~20%.
    """
    if not enabled:
        yield
        return
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    was_enabled = tf_config.is_op_determinism_enabled()
    grappler = tf.config.optimizer.get_experimental_options()
    tf.config.experimental.enable_op_determinism()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options(
            {"disable_meta_optimizer": bool(grappler.get("disable_meta_optimizer", False))}
        )
        if not was_enabled:
            tf_config.disable_op_determinism()


def _make_optimizer(
    config: TrainConfig, plan: SchedulePlan
) -> tuple[keras.optimizers.Optimizer, WarmupDecay]:
    """AdamW on the warm-up/hold/decay schedule of ``models.train.schedule``, and the schedule
    (whose plan a budgeted run sets once it has measured its steps).

    Weight decay skips biases and batch-norm scales/offsets (decaying them only fights the
    normalisation; the usual practice).
    """
    import keras

    from models.train.schedule import WarmupDecay

    schedule = WarmupDecay(
        peak=config.learning_rate,
        schedule=config.lr_schedule,
        plan=plan,
        min_lr_fraction=config.min_lr_fraction,
    )
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    if config.mixed_precision:
        # Dynamic loss scaling: float16 gradients would underflow; overflowing steps are skipped.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer, schedule


def schedule_plan(config: TrainConfig, steps_per_epoch: int) -> SchedulePlan:
    """The schedule of ``config.epochs`` epochs of ``steps_per_epoch`` steps."""
    return SchedulePlan.of(
        config.epochs * steps_per_epoch, config.warmup_fraction, config.decay_fraction
    )


def train(config: TrainConfig) -> dict[str, Any]:
    """Train as ``config`` says; returns the metadata written to ``OUTPUT/metadata.json``.

    Raises ``models.train.epoch.NonFiniteLossError`` when the loss stops being finite,
    ValueError for bad options, FileNotFoundError for missing data.
    """
    config.validate()
    with _op_determinism(config.deterministic):
        return _train(config)


def _train(config: TrainConfig) -> dict[str, Any]:
    started = time.monotonic()
    # The strategy first: MultiWorkerMirroredStrategy must be set up before other TF work.
    from models.strategy import make_strategy, strategy_is_chief

    strategy, strategy_name = make_strategy(config.strategy)
    import keras

    from models import architectures

    keras.utils.set_random_seed(config.seed)
    data = check_training_data(config.data)  # every shard read and hashed before any step
    manifest = data.manifest
    replicas = strategy.num_replicas_in_sync
    global_batch = config.batch_size * replicas
    run = TrainRun(
        config=config,
        strategy=strategy,
        strategy_name=strategy_name,
        is_chief=strategy_is_chief(strategy),
        replicas=replicas,
        global_batch=global_batch,
        steps_per_epoch=config.steps_per_epoch or default_steps_per_epoch(manifest, global_batch),
        manifest=manifest,
        data=data,
        class_weights=resolve_class_weights(config, manifest),
        budget_clock=started,
    )
    if run.class_weights is not None:
        LOG.info(
            "class weights: %s",
            ", ".join(f"{n} {w:.3g}" for n, w in zip(CLASS_NAMES, run.class_weights, strict=True)),
        )
    jit = config.jit
    if jit and strategy_name == "tpu":
        jit = False  # TPU steps are XLA-compiled anyway
    elif jit and replicas > 1:
        LOG.warning("--jit compiles single-replica steps only; ignored with %d replicas", replicas)
        jit = False
    LOG.info(
        "strategy %s: %d replica(s), global batch %d (%d per replica), %d steps per epoch%s",
        strategy_name,
        replicas,
        global_batch,
        config.batch_size,
        run.steps_per_epoch,
        "" if run.is_chief else " (not the chief: outputs go to temporary folders)",
    )

    with contextlib.ExitStack() as stack:
        encoder_weights = config.encoder_weights
        if storage.is_remote(encoder_weights):  # Keras reads local weights files only
            encoder_weights = stack.enter_context(storage.local_copy(encoder_weights))
        stack.enter_context(_dtype_policy(config.mixed_precision))
        stack.enter_context(strategy.scope())
        stack.enter_context(_keras_default_seeds(config.seed))
        model = architectures.build_model(
            config.arch, base_filters=config.base_filters, encoder_weights=encoder_weights
        )
        optimizer, schedule = _make_optimizer(config, schedule_plan(config, run.steps_per_epoch))
        optimizer.build(model.trainable_variables)  # all of them, before any freeze
    checkpoints = RunCheckpoints(
        model,
        optimizer,
        checkpoint_root=config.checkpoint_root,
        is_chief=run.is_chief,
        keep=config.keep_checkpoints,
        fresh=config.fresh,
    )
    try:
        restored = checkpoints.restore_latest()
        if restored:
            state = restored.state
            check_resume(
                state,
                checkpoint=restored.checkpoint,
                data_fingerprint=data.fingerprint,
                data_parts=data.fingerprint_parts(),
                config_fingerprint=fingerprint(run.config_parts),
                config_parts=run.config_parts,
            )
            run.best = state.get("best")
            run.early_stopped = bool(state.get("early_stopped", False))
            run.resumed_from_step = [*state.get("resumed_from_step", []), restored.step]
            run.history = [h for h in state.get("history", []) if h["epoch"] <= restored.epoch]
            run.last_checkpoint = restored.checkpoint
            if state.get("budget"):  # the plan stays the one the run was started with
                run.budget = BudgetPlan.from_dict(state["budget"])
                run.budget_spent = bool(state.get("budget_spent", False))
                run.budget_clock = time.monotonic() - float(state.get("budget_used_s", 0.0))
                run.steps_per_epoch = run.budget.steps_per_epoch
                schedule.set_plan(schedule_plan(config, run.steps_per_epoch))
            LOG.info(
                "resuming from %s: step %d, epoch %d, step %d of that epoch",
                restored.checkpoint,
                restored.step,
                restored.epoch + 1,
                epoch_position(restored.step, restored.epoch, run.steps_per_epoch),
            )
        else:  # the run's identity is on record before its first checkpoint can exist
            checkpoints.write_state(run.state())
        return _run_epochs(run, model, optimizer, schedule, checkpoints, started, jit)
    finally:
        checkpoints.close()


def _probe(
    run: TrainRun,
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    train_step: Any,
    eval_step: Any,
    recalibrate: Any,
) -> Probe:
    """Time a step, a validation and a recalibration on the real model and data, then undo them.

    Every model and optimizer variable (weights, batch-norm statistics, moments, the step
    counter) is put back afterwards, so the run starts from exactly the state it had: the probe
    changes how many steps the run plans, nothing else. The first call of each function is not
    timed (it traces); what it traced serves the run.
    """
    import math

    config, strategy = run.config, run.strategy
    variables = [*model.variables, *optimizer.variables]
    saved = [v.numpy() for v in variables]
    try:
        batches = iter(strategy.experimental_distribute_dataset(epoch_input(run, "train", 0)))
        float(train_step(batches))  # traces
        step_times = []
        for _ in range(PROBE_STEPS):
            started = time.monotonic()
            float(train_step(batches))
            step_times.append(time.monotonic() - started)
        step_s = statistics.median(step_times)
        recalibration_s = 0.0
        if config.bn_recalibration_batches:
            recalibrate(batches, 1)  # traces
            started = time.monotonic()
            used = recalibrate(batches, 2)
            per_batch = (time.monotonic() - started) / max(used, 1)
            recalibration_s = per_batch * config.bn_recalibration_batches
        finished = [batches]
        del batches
        release_in_background(finished)  # its destruction may block for seconds
        validation_s = 0.0
        val_patches = run.manifest.patch_count("val")
        if val_patches and records.split_files(run.data.folder, "val"):
            val_batches = math.ceil(val_patches / run.global_batch)
            if config.val_steps is not None:
                val_batches = min(val_batches, config.val_steps)
            dataset = epoch_input(run, "val", 0).take(2)
            timings = []
            for batch in strategy.experimental_distribute_dataset(dataset):
                started = time.monotonic()
                [v.numpy() for v in eval_step(batch)]
                timings.append(time.monotonic() - started)
            per_batch = timings[-1] if timings else 0.0  # the first call traced
            validation_s = per_batch * val_batches
    finally:
        for variable, value in zip(variables, saved, strict=True):
            variable.assign(value)
    return Probe(step_s=step_s, validation_s=validation_s, recalibration_s=recalibration_s)


def _run_epochs(
    run: TrainRun,
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    schedule: WarmupDecay,
    checkpoints: RunCheckpoints,
    started: float,
    jit: bool,
) -> dict[str, Any]:
    """The epochs from the restored one to the last, then the published outputs."""
    import tensorflow as tf

    from models import architectures
    from models.batchnorm import make_recalibration, make_sync_batchnorm
    from models.steps import make_eval_step, make_train_step

    config, strategy = run.config, run.strategy
    if run.is_chief:
        writer = tf.summary.create_file_writer(config.log_root)
    else:
        writer = tf.summary.create_noop_writer()
    spec = LossSpec(
        smooth=config.dice_smooth,
        ignore_unknown=config.ignore_unknown,
        loss=config.loss,
        class_weights=run.class_weights,
        focal_gamma=config.focal_gamma,
        dice_classes=config.dice_classes,
    )
    sync_batchnorm = make_sync_batchnorm(strategy, model)
    recalibrate = make_recalibration(strategy, model)
    eval_step = make_eval_step(strategy, model, spec)
    has_encoder = architectures.get_encoder(model) is not None
    encoder_trainable: bool | None = None
    train_step = None
    step_var, epoch_var = checkpoints.step, checkpoints.epoch

    def save_checkpoint() -> None:
        sync_batchnorm()
        path = checkpoints.save(run.state())
        if run.is_chief:
            run.last_checkpoint = path
            LOG.info("checkpoint %s", path)

    def step_for(epoch: int) -> Any:
        """The train step of ``epoch`` (a new one when the encoder's freeze changes)."""
        nonlocal encoder_trainable, train_step
        wanted = not (has_encoder and epoch < config.freeze_encoder_epochs)
        if has_encoder and wanted != encoder_trainable:
            architectures.set_encoder_trainable(model, wanted)
            LOG.info("encoder %s", "trainable" if wanted else "frozen")
            train_step = None
        encoder_trainable = wanted if has_encoder else None
        if train_step is None:  # variables to train are captured when the step is made
            train_step = make_train_step(strategy, model, optimizer, spec, jit_compile=jit)
        return train_step

    def recalibrate_batchnorm(epoch: int) -> None:
        """Precise BN (``models.batchnorm``): statistics of the weights about to be judged."""
        sync_batchnorm()
        if config.bn_recalibration_batches:
            dataset = epoch_input(run, "train", epoch)
            batches = iter(strategy.experimental_distribute_dataset(dataset))
            tick = time.monotonic()
            used = recalibrate(batches, config.bn_recalibration_batches)
            finished = [batches]
            del batches
            release_in_background(finished)  # its destruction may block for seconds
            LOG.info(
                "batch-norm statistics recomputed over %d batches (%.1fs)",
                used,
                time.monotonic() - tick,
            )

    first_epoch = int(epoch_var.numpy())
    if config.max_minutes is not None and run.budget is None and first_epoch < config.epochs:
        probe = _probe(run, model, optimizer, step_for(first_epoch), eval_step, recalibrate)
        run.budget = plan_budget(
            config.max_minutes, probe, epochs=config.epochs, spent_s=run.budget_used_s()
        )
        run.steps_per_epoch = run.budget.steps_per_epoch
        schedule.set_plan(schedule_plan(config, run.steps_per_epoch))
        LOG.info(
            "budget %s min: a step takes %.3fs, a validation %.1fs, a recalibration %.1fs; "
            "%.0fs spent before training; planned %d epochs × %d steps (%d)",
            config.max_minutes,
            probe.step_s,
            probe.validation_s,
            probe.recalibration_s,
            run.budget.planned_at_s,
            config.epochs,
            run.steps_per_epoch,
            run.budget.total_steps,
        )
        checkpoints.write_state(run.state())  # the plan is on record before any step

    try:
        with writer.as_default():
            for epoch in range(first_epoch, config.epochs):
                if run.budget_spent:
                    break
                if selection.should_stop(run.history, config.early_stopping_patience):
                    run.early_stopped = True
                    LOG.info(
                        "early stopping: no better val mIoU for %d epochs (best: epoch %s)",
                        selection.epochs_without_improvement(run.history),
                        (run.best or {}).get("epoch"),
                    )
                    break
                done = epoch_position(int(step_var.numpy()), epoch, run.steps_per_epoch)
                entry = train_epoch(run, epoch, done, step_for(epoch), step_var, save_checkpoint)
                if entry["steps"] == 0 and run.history:  # the budget ended before this epoch
                    break
                epoch_end = time.monotonic()
                recalibrate_batchnorm(epoch)
                entry.update(validate(run, eval_step))
                entry["encoder_trainable"] = encoder_trainable
                run.history = [h for h in run.history if h["epoch"] != epoch + 1] + [entry]
                log_epoch(entry, int(step_var.numpy()))
                improved = selection.improves(entry, run.best)
                if improved:
                    run.best = {
                        "epoch": epoch + 1,
                        "val_miou": entry["val_miou"],
                        "weights": checkpoints.save_best(epoch + 1),
                    }
                    LOG.info(
                        "epoch %d is the best so far (val mIoU %.4f)", epoch + 1, entry["val_miou"]
                    )
                epoch_var.assign(epoch + 1)
                save_checkpoint()
                run.recent_epoch_end_s = time.monotonic() - epoch_end
                if improved and run.best is not None:
                    checkpoints.prune_best(run.best["weights"])
                writer.flush()
        if has_encoder:
            architectures.set_encoder_trainable(model, True)
        sync_batchnorm()
        steps = int(step_var.numpy())
        if run.best is not None:  # publish the best epoch; the last stays in the checkpoints
            checkpoints.restore_best(run.best["weights"])
            LOG.info(
                "publishing epoch %d (best val mIoU %.4f)", run.best["epoch"], run.best["val_miou"]
            )
        metadata = artifacts.build_metadata(
            config,
            strategy=run.strategy_name,
            replicas=run.replicas,
            workers=parse_tf_config().num_workers,
            global_batch=run.global_batch,
            steps_per_epoch=run.steps_per_epoch,
            manifest=run.manifest,
            history=run.history,
            best=run.best,
            early_stopped=run.early_stopped,
            class_weights=run.class_weights,
            data_version=run.data.version,
            data_fingerprint=run.data.fingerprint,
            resumed_from_step=run.resumed_from_step,
            steps=steps,
            optimizer_iterations=int(optimizer.iterations.numpy()),
            wall_time_s=time.monotonic() - started,
            schedule=schedule.get_config(),
            budget=None
            if run.budget is None
            else {
                **run.budget.to_dict(),
                "spent": run.budget_spent,
                "used_s": round(run.budget_used_s(), 3),
            },
        )
        exported = artifacts.float32_model(model, config) if config.mixed_precision else model
        artifacts.save_outputs(config.output, exported, metadata, is_chief=run.is_chief)
    finally:
        writer.close()
    return metadata
