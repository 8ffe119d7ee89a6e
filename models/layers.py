"""The building blocks the architectures share: size-fixing layers and conv blocks.

``PadToMultiple`` and ``CropLike`` let any height and width through a stride-N network (612
included, which no stride-32 network divides): the model reflect-pads its input to the next
multiple of its total stride and crops the logits back to the input's size, so a 612x612 patch
gives a 612x612x7 prediction and callers never pad. Reflection rather than zeros keeps the
border statistics natural for overhead imagery, where no edge is special.

The two layers are registered under ``models.registry.KERAS_PACKAGE``, so a saved
``model.keras`` names them ``landcover>PadToMultiple`` / ``landcover>CropLike`` and reloads
without ``custom_objects`` once this module is imported (``models.architectures`` imports it).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from models.registry import KERAS_PACKAGE


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class PadToMultiple(layers.Layer):
    """Pad height and width up to the next multiple of ``multiple``, split evenly on both sides.

    Centered padding (``before = total // 2``) gives both borders the same context, and
    ``CropLike`` undoes it by cropping the center. TensorFlow's ``reflect`` needs each side's
    pad to be smaller than the image, so with ``multiple=32`` inputs of 12 px or more work; the
    smallest input ``landcover`` ever feeds is a whole 612 px patch.
    """

    def __init__(self, multiple: int = 32, mode: str = "reflect", **kwargs):
        super().__init__(**kwargs)
        if multiple < 1:
            raise ValueError(f"multiple must be >= 1, got {multiple}")
        if mode not in ("reflect", "symmetric", "constant"):
            raise ValueError(f"mode must be reflect, symmetric or constant, got {mode!r}")
        self.multiple = int(multiple)
        self.mode = mode

    def call(self, inputs):
        shape = ops.shape(inputs)
        pad_h = (-shape[1]) % self.multiple
        pad_w = (-shape[2]) % self.multiple
        top, left = pad_h // 2, pad_w // 2
        widths = [[0, 0], [top, pad_h - top], [left, pad_w - left], [0, 0]]
        return ops.pad(inputs, widths, mode=self.mode)

    def compute_output_shape(self, input_shape):
        def padded(size):
            return None if size is None else -(-size // self.multiple) * self.multiple

        return (input_shape[0], padded(input_shape[1]), padded(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple, "mode": self.mode}


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class CropLike(layers.Layer):
    """Crop ``inputs[0]`` to the height and width of ``inputs[1]``, keeping the center.

    The inverse of ``PadToMultiple``'s centered padding: the offset ``(padded - size) // 2`` is
    the ``before`` pad it added.
    """

    def call(self, inputs):
        x, reference = inputs
        x_shape, ref_shape = ops.shape(x), ops.shape(reference)
        top = (x_shape[1] - ref_shape[1]) // 2
        left = (x_shape[2] - ref_shape[2]) // 2
        return ops.slice(x, [0, top, left, 0], [x_shape[0], ref_shape[1], ref_shape[2], x_shape[3]])

    def compute_output_shape(self, input_shape):
        x_shape, ref_shape = input_shape
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class ResizeLike(layers.Layer):
    """Resize ``inputs[0]`` to the height and width of ``inputs[1]`` (known only at run time).

    DeepLab's image pooling (1x1 back to the feature map's size) and its decoder's upsampling
    need sizes that depend on the input image, which ``UpSampling2D`` (a fixed factor) cannot
    express for every size. From 1x1, bilinear resizing is a broadcast.
    """

    def __init__(self, interpolation: str = "bilinear", **kwargs):
        super().__init__(**kwargs)
        self.interpolation = interpolation

    def call(self, inputs):
        x, reference = inputs
        shape = ops.shape(reference)
        return ops.image.resize(x, (shape[1], shape[2]), interpolation=self.interpolation)

    def compute_output_shape(self, input_shape):
        x_shape, ref_shape = input_shape
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


def conv_bn_relu(
    x: Any, filters: int, name: str, *, kernel_size: int = 3, dilation_rate: int = 1
) -> Any:
    """Conv (3x3 unless told; no bias: the batch norm right after has its own shift) + BN + ReLU."""
    x = layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        dilation_rate=dilation_rate,
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def conv_block(x: Any, filters: int, name: str) -> Any:
    """Two 3x3 conv + batch norm + ReLU, the unit of every U-Net stage and decoder stage."""
    x = conv_bn_relu(x, filters, f"{name}_conv1")
    return conv_bn_relu(x, filters, f"{name}_conv2")


def segmentation_head(
    x: Any, image: Any, num_classes: int, *, upsample_like: Any | None = None
) -> Any:
    """1x1 conv to logits, (bilinear upsampling to ``upsample_like``), crop to the image, softmax.

    ``upsample_like`` (the padded image) serves heads that end below full resolution
    (DeepLab's stride 4): logits are upsampled rather than features, as in the paper, which is
    cheaper (7 channels). The crop comes before the softmax and the softmax is float32, so under
    a mixed_float16 policy the probabilities (and the Dice loss on them) stay in full precision.
    """
    logits = layers.Conv2D(num_classes, 1, name="logits")(x)
    if upsample_like is not None:
        logits = ResizeLike(name="upsample_logits")([logits, upsample_like])
    logits = CropLike(name="crop_to_input")([logits, image])
    return layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
