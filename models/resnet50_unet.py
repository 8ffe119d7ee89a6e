"""U-Net decoder on a pretrainable ResNet50 encoder (``--arch resnet50_unet``).

Like keras-hub's DeepLabV3, the backbone (``keras.applications.ResNet50`` without its top) is a
separate nested model named ``ENCODER_NAME`` (``models.encoders``); that is what
``models.architectures.set_encoder_trainable`` freezes, and because the freeze is the nested
layer's ``trainable`` flag it is saved in ``model.keras`` and survives a reload. The encoder
takes the project's [0, 1] RGB and applies ImageNet's input convention itself; its weights are
``none``, ``imagenet`` (Keras's cache or a download), a local path or a ``gs://`` URI.
"""

from __future__ import annotations

import keras
from keras import layers

from models.encoders import build_resnet50_encoder
from models.layers import PadToMultiple, conv_block, conv_bn_relu, segmentation_head
from models.registry import RESNET50_STRIDE, resnet50_decoder_filters
from pipelines.core.palette import NUM_CLASSES

__all__ = ["RESNET50_STRIDE", "build_resnet50_unet", "resnet50_decoder_filters"]

# The ResNet50 features the decoder taps, by stride: the stem (/2) and the last block of
# stages 2-4 (/4, /8, /16) are skips; stage 5 (/32) is the bridge.
RESNET50_SKIPS: tuple[str, ...] = (
    "conv1_relu",
    "conv2_block3_out",
    "conv3_block4_out",
    "conv4_block6_out",
)
RESNET50_BRIDGE = "conv5_block3_out"


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
    encoder = build_resnet50_encoder(
        (*RESNET50_SKIPS, RESNET50_BRIDGE),
        encoder_weights=encoder_weights,
        output_stride=RESNET50_STRIDE,
        input_channels=input_channels,
    )
    *skips, x = encoder(padded)
    decoder_filters = resnet50_decoder_filters(base_filters)
    image_skip = conv_bn_relu(padded, decoder_filters[-1], "image_skip")
    skips = [image_skip, *skips]  # strides 1, 2, 4, 8, 16
    for stage, filters in enumerate(decoder_filters):
        stride = RESNET50_STRIDE // 2 ** (stage + 1)
        x = layers.UpSampling2D(2, name=f"decoder{stride}_upsample")(x)
        x = layers.Concatenate(name=f"decoder{stride}_concat")([x, skips[-1 - stage]])
        x = conv_block(x, filters, f"decoder{stride}")
    return keras.Model(image, segmentation_head(x, image, num_classes), name="resnet50_unet")
