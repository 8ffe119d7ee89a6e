"""The distributed training and evaluation steps: one custom loop for every strategy.

Keras 3's ``fit`` does not run under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585),
so training is a ``tf.GradientTape`` step inside ``strategy.run`` with Keras layers and a Keras
optimizer, the same code for the default, mirrored, multi-worker and TPU strategies.

**Dice under distribution.** Dice is not a mean of per-example terms: it is a ratio of sums
over the whole batch (see ``models.losses``). Averaging each replica's Dice would optimise a
different objective (the Dice of smaller batches) whose value depends on how many replicas
there are. Instead every replica computes its local per-class sums ``I_c`` (intersection) and
``S_c`` (truth + prediction), all-reduces them (14 floats per step), and evaluates Dice on the
*global* sums, so the loss equals the single-device loss on the global batch exactly. For the
gradient, each replica uses the surrogate ``I_local + stop_gradient(I_global − I_local)``
(likewise ``S``): its value is the global sum, its derivative is that of the local sum, so the
replica's gradient is exactly its own pixels' contribution to ``d loss / d weights``, and the
optimizer's cross-replica SUM of gradients is the exact gradient of the global-batch Dice. No
gradient flows through a collective, and no ``1 / num_replicas`` scaling is needed (it would be
wrong here: the replicas' gradients are parts of one gradient, not estimates to average).
What still differs from one device is batch norm, whose batch statistics are per replica (the
usual non-synchronised batch norm); ``models.batchnorm`` averages the moving statistics across
replicas, and recomputes them for the current weights, before they are checkpointed, validated
with or saved.

The sums and the Dice are ``models.losses.dice_sums`` / ``dice_from_sums``, the same
functions ``DiceLoss`` uses; a test checks that one replica's step loss equals
``DiceLoss()(y_true, y_pred)``. The compound losses (``dice+ce``, ``focal+dice``) add a
pixel term that is a ratio of sums too (weighted CE sum / weight sum), all-reduced the same way,
so every loss is the global batch's loss (``models.losses.segmentation_loss`` on one device).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.keras_metrics import confusion_counts
from models.losses import (
    cross_entropy_from_sums,
    cross_entropy_sums,
    dice_from_sums,
    dice_sums,
    truth_sums,
)

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


@dataclass(frozen=True)
class LossSpec:
    """The training loss's options (as in ``models.losses.segmentation_loss``)."""

    smooth: float = 1.0
    ignore_unknown: bool = False
    loss: str = "dice"
    class_weights: tuple[float, ...] | None = None
    focal_gamma: float = 2.0
    dice_classes: str = "all"


def _global(value: tf.Tensor) -> tf.Tensor:
    """All-reduce (SUM) a replica-local value; identity on the default strategy."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _globalised(local: tf.Tensor) -> tf.Tensor:
    """Value of the all-reduced sum, gradient of the local one (see the module docstring)."""
    import tensorflow as tf

    return local + tf.stop_gradient(_global(tf.stop_gradient(local)) - local)


def global_batch_loss(y_true: tf.Tensor, y_pred: tf.Tensor, spec: LossSpec) -> tf.Tensor:
    """Inside ``strategy.run``: the loss of the *global* batch, with local gradients.

    See the module docstring for why the surrogate gives the exact gradient.
    """
    intersection, total = dice_sums(y_true, y_pred, spec.ignore_unknown)
    truth = None
    if spec.dice_classes == "present":  # present in the global batch: all-reduced, no gradient
        truth = _global(truth_sums(y_true, spec.ignore_unknown))
    loss = 1.0 - dice_from_sums(
        _globalised(intersection),
        _globalised(total),
        smooth=spec.smooth,
        class_weights=spec.class_weights,
        ignore_unknown=spec.ignore_unknown,
        truth=truth,
    )
    if spec.loss == "dice":
        return loss
    ce_sum, weight_total = cross_entropy_sums(
        y_true,
        y_pred,
        class_weights=spec.class_weights,
        ignore_unknown=spec.ignore_unknown,
        focal_gamma=spec.focal_gamma if spec.loss == "focal+dice" else 0.0,
    )
    return loss + cross_entropy_from_sums(_globalised(ce_sum), _globalised(weight_total))


def make_train_step(
    strategy: tf.distribute.Strategy,
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    spec: LossSpec,
    *,
    jit_compile: bool = False,
) -> Any:
    """A ``tf.function(iterator) → loss`` running one synchronous step on every replica.

    The variables to train are taken now: after freezing or unfreezing the encoder, make a new
    step. ``jit_compile`` compiles the per-replica step with XLA; it is only offered with a
    single replica (the caller enforces it), because the step's cross-replica reductions
    (the Dice sums, the optimizer's gradient all-reduce) cannot live inside an XLA cluster on
    CPU/GPU. TPU steps are compiled by XLA anyway.
    """
    import tensorflow as tf

    variables = list(model.trainable_variables)

    def replica_step(images: tf.Tensor, masks: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)
            loss = global_batch_loss(masks, probabilities, spec)
            scaled = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss

    if jit_compile:
        replica_step = tf.function(replica_step, jit_compile=True)

    @tf.function
    def train_step(iterator: Any) -> tf.Tensor:
        images, masks = next(iterator)
        losses = strategy.run(replica_step, args=(images, masks))
        # Every replica holds the same global-batch loss; MEAN just unwraps it.
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, losses, axis=None)

    return train_step


def make_eval_step(strategy: tf.distribute.Strategy, model: keras.Model, spec: LossSpec) -> Any:
    """A ``tf.function(batch) → (I, S, confusion counts)``, each summed over all replicas.

    The counts are ``models.keras_metrics.confusion_counts`` (the metric's own), flat (49,).
    """
    import tensorflow as tf

    def replica_eval(images: tf.Tensor, masks: tf.Tensor) -> tuple[tf.Tensor, ...]:
        probabilities = model(images, training=False)
        intersection, total = dice_sums(masks, probabilities, spec.ignore_unknown)
        # float32: every strategy (TPU included) can all-reduce it; the host sums it in int64.
        return intersection, total, confusion_counts(masks, probabilities, dtype="float32")

    @tf.function(reduce_retracing=True)
    def eval_step(batch: Any) -> tuple[tf.Tensor, ...]:
        outputs = strategy.run(replica_eval, args=batch)
        return tuple(
            strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in outputs
        )

    return eval_step
