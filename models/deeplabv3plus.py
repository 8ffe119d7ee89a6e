"""DeepLabv3+ (Chen et al., 2018) on the ResNet50 encoder (``--arch deeplabv3plus``).

The seed study names it as the next step, and published DeepGlobe land-cover results use it.
Same encoder and transfer-learning path as ``resnet50_unet`` (``models.encoders``: ImageNet
preprocessing inside the model, ``none | imagenet | PATH | gs://`` weights, one nested model to
freeze), at output stride 16: stage 5 runs unstrided with its 3x3 convs dilated by 2, so
Keras's ImageNet weights still load by layer name. Like keras-hub's ``DeepLabV3``, the head is
ASPP (a 1x1 conv, 3x3 convs dilated 6, 12 and 18, and image pooling) on the stride-16
features, then a decoder that fuses the stride-4 features (``conv2_block3_out``) through a
narrow 1x1 projection and two 3x3 convs, and bilinear upsampling of the logits to the input.

Any input size works as for the other architectures: reflect-pad to a multiple of 16, crop the
logits back. Image pooling is a global mean resized to the feature map's run-time shape, so it
is exact at every size (no fixed pooling window).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from models.encoders import build_resnet50_encoder
from models.layers import PadToMultiple, ResizeLike, conv_bn_relu, segmentation_head
from models.registry import DEEPLAB_OUTPUT_STRIDE, deeplab_widths
from pipelines.core.palette import NUM_CLASSES

__all__ = ["ASPP_RATES", "DEEPLAB_OUTPUT_STRIDE", "build_deeplabv3plus", "deeplab_widths"]

ASPP_RATES: tuple[int, ...] = (6, 12, 18)
# The encoder features the head uses: stride 4 (decoder skip) and stride 16 (ASPP input).
DEEPLAB_LOW_LEVEL = "conv2_block3_out"
DEEPLAB_HIGH_LEVEL = "conv5_block3_out"


def aspp(x: Any, filters: int) -> Any:
    """Atrous spatial pyramid pooling: 1x1, three dilated 3x3s and image pooling, fused by 1x1."""
    branches = [conv_bn_relu(x, filters, "aspp_1x1", kernel_size=1)]
    for rate in ASPP_RATES:
        branches.append(conv_bn_relu(x, filters, f"aspp_rate{rate}", dilation_rate=rate))
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(x)
    pooled = conv_bn_relu(pooled, filters, "aspp_pool_conv", kernel_size=1)
    branches.append(ResizeLike(name="aspp_pool_resize")([pooled, x]))
    x = layers.Concatenate(name="aspp_concat")(branches)
    return conv_bn_relu(x, filters, "aspp_project", kernel_size=1)


def build_deeplabv3plus(
    *,
    num_classes: int = NUM_CLASSES,
    base_filters: int = 64,
    encoder_weights: str = "none",
    input_channels: int = 3,
) -> keras.Model:
    """DeepLabv3+ with a ResNet50 encoder at output stride 16.

    ``base_filters`` sets the head's widths (:func:`deeplab_widths`: the paper's 256 and 48 at
    64); the encoder is full-size ResNet50 whatever it says.
    """
    image = keras.Input((None, None, input_channels), name="image")
    padded = PadToMultiple(DEEPLAB_OUTPUT_STRIDE, mode="reflect", name="pad_to_multiple")(image)
    encoder = build_resnet50_encoder(
        (DEEPLAB_LOW_LEVEL, DEEPLAB_HIGH_LEVEL),
        encoder_weights=encoder_weights,
        output_stride=DEEPLAB_OUTPUT_STRIDE,
        input_channels=input_channels,
    )
    low_level, high_level = encoder(padded)
    filters, projection = deeplab_widths(base_filters)
    x = aspp(high_level, filters)
    x = ResizeLike(name="decoder_upsample")([x, low_level])
    low_level = conv_bn_relu(low_level, projection, "decoder_low_level", kernel_size=1)
    x = layers.Concatenate(name="decoder_concat")([x, low_level])
    x = conv_bn_relu(x, filters, "decoder_conv1")
    x = conv_bn_relu(x, filters, "decoder_conv2")
    probabilities = segmentation_head(x, image, num_classes, upsample_like=padded)
    return keras.Model(image, probabilities, name="deeplabv3plus")
