"""The two segmentation architectures, chosen by name, and the helpers that save and load them.

``build_model("unet" | "resnet50_unet", ...)`` returns a plain Keras 3 functional model:
input ``(None, None, C)`` float (the image after ``pipelines.io.imaging.normalize_image``),
output ``(None, None, num_classes)`` float32 softmax probabilities of the same height and width.

Any height and width work (612 included, which no stride-32 network divides): the model
reflect-pads its input to the next multiple of its total stride (``PadToMultiple``) and crops
the logits back to the input's size (``CropLike``), so a 612x612 patch gives a 612x612x7
prediction and callers never pad. Reflection rather than zeros keeps the border statistics
natural for overhead imagery, where no edge is special.

Like keras-hub's DeepLabV3, the backbone (the ResNet50 encoder) is a separate nested model named
``ENCODER_NAME``; that is what ``set_encoder_trainable`` freezes, and because the freeze is the
nested layer's ``trainable`` flag it is saved in ``model.keras`` and survives a reload.

Importing this module registers every custom object of the project (the two layers here, the
Dice loss and metric, the streaming mIoU metric) under the ``landcover`` package, so
``keras.models.load_model("model.keras")`` needs no ``custom_objects`` once it has run;
``load_model`` below does the import for you. ``models/__init__.py`` stays empty on purpose:
``import pipelines.core.metrics`` (pure NumPy, used by ``landcover evaluate``) must not pull in
TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keras
from keras import layers, ops

# Imported for their side effect: registering the loss and metrics so load_model finds them.
from models import keras_metrics, losses  # noqa: F401
from pipelines.core.palette import NUM_CLASSES

PACKAGE = "landcover"
ARCHITECTURES: tuple[str, ...] = ("unet", "resnet50_unet")
ENCODER_NAME = "resnet50_encoder"
ENCODER_WEIGHTS_KEYWORDS: tuple[str, ...] = ("none", "imagenet")

UNET_DEPTH = 4
# The ResNet50 features the decoder taps, by stride: the stem (/2) and the last block of
# stages 2-4 (/4, /8, /16) are skips; stage 5 (/32) is the bridge.
RESNET50_SKIPS: tuple[str, ...] = (
    "conv1_relu",
    "conv2_block3_out",
    "conv3_block4_out",
    "conv4_block6_out",
)
RESNET50_BRIDGE = "conv5_block3_out"
RESNET50_STRIDE = 32


@keras.saving.register_keras_serializable(package=PACKAGE)
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


@keras.saving.register_keras_serializable(package=PACKAGE)
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


def build_model(
    name: str,
    *,
    num_classes: int = NUM_CLASSES,
    base_filters: int = 64,
    encoder_weights: str = "none",
    input_channels: int = 3,
) -> keras.Model:
    """Build an architecture by name (``ARCHITECTURES``); an unknown name lists the valid ones.

    ``base_filters`` is the width of U-Net's first stage (doubling per level) and of
    ResNet50-U-Net's decoder (its stages are 4, 2, 1, 1/2, 1/4 times it, from /16 up to full
    resolution); 64 reproduces the published widths, small values (4-16) suit CPU runs and tests.
    ``encoder_weights`` applies to ``resnet50_unet`` only: ``"none"`` (random init),
    ``"imagenet"`` (Keras's own downloader, needs the internet) or a local weights file path.
    """
    builders: dict[str, Callable[..., keras.Model]] = {
        "unet": build_unet,
        "resnet50_unet": build_resnet50_unet,
    }
    if name not in builders:
        raise ValueError(
            f"unknown architecture {name!r}; valid architectures: {', '.join(ARCHITECTURES)}"
        )
    if base_filters < 1:
        raise ValueError(f"base_filters must be >= 1, got {base_filters}")
    if name == "unet":
        if encoder_weights.lower() != "none":
            raise ValueError(
                f"unet has no pretrained encoder; encoder_weights must be 'none', "
                f"got {encoder_weights!r} (use resnet50_unet for imagenet or a weights file)"
            )
        return build_unet(
            num_classes=num_classes, base_filters=base_filters, input_channels=input_channels
        )
    return build_resnet50_unet(
        num_classes=num_classes,
        base_filters=base_filters,
        encoder_weights=encoder_weights,
        input_channels=input_channels,
    )


def _conv_bn_relu(x, filters: int, name: str):
    # No bias: the batch norm right after has its own shift.
    x = layers.Conv2D(
        filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal", name=name
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _conv_block(x, filters: int, name: str):
    """Two 3x3 conv + batch norm + ReLU, the unit of every U-Net stage."""
    x = _conv_bn_relu(x, filters, f"{name}_conv1")
    return _conv_bn_relu(x, filters, f"{name}_conv2")


def _segmentation_head(x, image, num_classes: int):
    """1x1 conv to logits, crop back to the image's size, softmax.

    The crop comes before the softmax and the softmax is float32, so under a mixed_float16
    policy the probabilities (and the Dice loss on them) stay in full precision.
    """
    logits = layers.Conv2D(num_classes, 1, name="logits")(x)
    logits = CropLike(name="crop_to_input")([logits, image])
    return layers.Activation("softmax", dtype="float32", name="probabilities")(logits)


def build_unet(
    *, num_classes: int = NUM_CLASSES, base_filters: int = 64, input_channels: int = 3
) -> keras.Model:
    """Ronneberger et al. (2015) U-Net: 4 down and 4 up stages, skip concatenations.

    Departures from the paper, all the usual modern ones: ``same`` padding (so the output aligns
    with the input and no crop-and-copy is needed), batch norm after every conv, and padding to
    a multiple of 16 = 2**4 (the network's total stride; 612 → 624, cheaper than 640).
    """
    image = keras.Input((None, None, input_channels), name="image")
    x = PadToMultiple(2**UNET_DEPTH, mode="reflect", name="pad_to_multiple")(image)
    skips = []
    for level in range(UNET_DEPTH):
        x = _conv_block(x, base_filters * 2**level, f"down{level + 1}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level + 1}_pool")(x)
    x = _conv_block(x, base_filters * 2**UNET_DEPTH, "bottleneck")
    for level in reversed(range(UNET_DEPTH)):
        filters = base_filters * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, name=f"up{level + 1}_upconv")(x)
        x = layers.Concatenate(name=f"up{level + 1}_concat")([x, skips[level]])
        x = _conv_block(x, filters, f"up{level + 1}")
    return keras.Model(image, _segmentation_head(x, image, num_classes), name="unet")


def _resnet50(encoder_weights: str, input_channels: int) -> keras.Model:
    """``keras.applications.ResNet50`` without its top, loaded as ``encoder_weights`` says."""
    keyword = encoder_weights.lower()
    shape = (None, None, input_channels)
    if keyword == "none":
        return keras.applications.ResNet50(include_top=False, weights=None, input_shape=shape)
    if keyword == "imagenet":
        if input_channels != 3:
            raise ValueError(f"imagenet weights need 3 input channels, got {input_channels}")
        try:
            return keras.applications.ResNet50(
                include_top=False, weights="imagenet", input_shape=shape
            )
        except Exception as err:  # Keras's downloader raises a bare Exception on fetch failure
            raise RuntimeError(
                "could not get the ImageNet weights for the ResNet50 encoder: Keras's loader "
                "downloads resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 from "
                "storage.googleapis.com into ~/.keras/models and needs the internet for that "
                f"({type(err).__name__}: {err}). Without internet access, copy that file to "
                "this machine and pass its local PATH as encoder_weights (--encoder-weights "
                "PATH), or use 'none' to train from scratch."
            ) from err
    if not os.path.exists(encoder_weights):
        raise FileNotFoundError(
            f"encoder weights file not found: {encoder_weights} "
            f"(encoder_weights is one of {', '.join(ENCODER_WEIGHTS_KEYWORDS)} or a local path "
            "to a ResNet50 .h5 / .weights.h5 file)"
        )
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=shape)
    try:
        resnet.load_weights(encoder_weights)
    except Exception as err:
        raise ValueError(
            f"could not load ResNet50 encoder weights from {encoder_weights}: "
            f"{type(err).__name__}: {err}"
        ) from err
    return resnet


def build_resnet50_encoder(encoder_weights: str = "none", input_channels: int = 3) -> keras.Model:
    """ResNet50 as a multi-output backbone: the 4 skips of ``RESNET50_SKIPS`` and the bridge.

    A model of its own (named ``ENCODER_NAME``) so the head can freeze it in one flag and so a
    weights file written by ``ResNet50(include_top=False).save_weights`` loads into it unchanged.
    """
    resnet = _resnet50(encoder_weights, input_channels)
    outputs = [resnet.get_layer(name).output for name in (*RESNET50_SKIPS, RESNET50_BRIDGE)]
    return keras.Model(resnet.input, outputs, name=ENCODER_NAME)


def resnet50_decoder_filters(base_filters: int) -> tuple[int, ...]:
    """Decoder widths from /16 up to full resolution: 256, 128, 64, 32, 16 at the default 64."""
    return tuple(max(1, base_filters * 4 // 2**i) for i in range(5))


def build_resnet50_unet(
    *,
    num_classes: int = NUM_CLASSES,
    base_filters: int = 64,
    encoder_weights: str = "none",
    input_channels: int = 3,
) -> keras.Model:
    """U-Net decoder on a ResNet50 encoder, up to the input's full resolution.

    Each decoder stage upsamples x2 (nearest), concatenates the encoder feature of that stride
    and applies a two-conv block. ResNet50 has no stride-1 feature, so a conv on the (padded)
    image supplies the full-resolution skip that keeps class boundaries sharp.
    """
    image = keras.Input((None, None, input_channels), name="image")
    padded = PadToMultiple(RESNET50_STRIDE, mode="reflect", name="pad_to_multiple")(image)
    *skips, x = build_resnet50_encoder(encoder_weights, input_channels)(padded)
    image_skip = _conv_bn_relu(padded, resnet50_decoder_filters(base_filters)[-1], "image_skip")
    skips = [image_skip, *skips]  # strides 1, 2, 4, 8, 16
    for stage, filters in enumerate(resnet50_decoder_filters(base_filters)):
        stride = RESNET50_STRIDE // 2 ** (stage + 1)
        x = layers.UpSampling2D(2, name=f"decoder{stride}_upsample")(x)
        x = layers.Concatenate(name=f"decoder{stride}_concat")([x, skips[-1 - stage]])
        x = _conv_block(x, filters, f"decoder{stride}")
    return keras.Model(image, _segmentation_head(x, image, num_classes), name="resnet50_unet")


def get_encoder(model: keras.Model) -> keras.Model | None:
    """The pretrainable encoder nested in ``model``, or None (``unet`` has none)."""
    try:
        return model.get_layer(ENCODER_NAME)
    except ValueError:
        return None


def set_encoder_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze (False) or unfreeze (True) the encoder, e.g. frozen for the first epochs.

    A frozen encoder's batch norms also run in inference mode (Keras 3 semantics), which is what
    fine-tuning wants. After a change, take ``model.trainable_variables`` afresh; an optimizer
    must have been built on the full variable list (``optimizer.build(all trainable vars)``
    before freezing) to go on after unfreezing.
    """
    encoder = get_encoder(model)
    if encoder is None:
        raise ValueError(
            f"model {model.name!r} has no {ENCODER_NAME!r} layer to freeze; only resnet50_unet "
            "has a pretrainable encoder"
        )
    encoder.trainable = trainable


def load_model(path: str, *, compile: bool = False) -> keras.Model:
    """Load a ``model.keras`` written by training; local paths and ``gs://`` alike.

    The custom objects are registered by this module's imports, so no ``custom_objects`` are
    needed. ``compile=False`` by default: inference needs no optimizer or loss.
    """
    return keras.models.load_model(path, compile=compile)
