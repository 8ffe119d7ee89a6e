"""U-Net decoder on a pretrainable ResNet50 encoder (``--arch resnet50_unet``).

Like keras-hub's DeepLabV3, the backbone (``keras.applications.ResNet50`` without its top) is a
separate nested model named ``ENCODER_NAME``; that is what
``models.architectures.set_encoder_trainable`` freezes, and because the freeze is the nested
layer's ``trainable`` flag it is saved in ``model.keras`` and survives a reload. The encoder's
weights come from nowhere (``none``), Keras's ImageNet download (``imagenet``) or a local file.
"""

from __future__ import annotations

import os

import keras
from keras import layers

from models.layers import PadToMultiple, conv_block, conv_bn_relu, segmentation_head
from pipelines.core.palette import NUM_CLASSES

ENCODER_NAME = "resnet50_encoder"
ENCODER_WEIGHTS_KEYWORDS: tuple[str, ...] = ("none", "imagenet")
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
    decoder_filters = resnet50_decoder_filters(base_filters)
    image_skip = conv_bn_relu(padded, decoder_filters[-1], "image_skip")
    skips = [image_skip, *skips]  # strides 1, 2, 4, 8, 16
    for stage, filters in enumerate(decoder_filters):
        stride = RESNET50_STRIDE // 2 ** (stage + 1)
        x = layers.UpSampling2D(2, name=f"decoder{stride}_upsample")(x)
        x = layers.Concatenate(name=f"decoder{stride}_concat")([x, skips[-1 - stage]])
        x = conv_block(x, filters, f"decoder{stride}")
    return keras.Model(image, segmentation_head(x, image, num_classes), name="resnet50_unet")
