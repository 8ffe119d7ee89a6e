"""U-Net (Ronneberger et al., 2015), the from-scratch architecture (``--arch unet``).

Built from the shared blocks of ``models.layers``; chosen by name through ``models.registry``
and ``models.architectures.build_model``.
"""

from __future__ import annotations

import keras
from keras import layers

from models.layers import PadToMultiple, conv_block, segmentation_head
from models.registry import UNET_DEPTH, unet_widths
from pipelines.core.palette import NUM_CLASSES

__all__ = ["UNET_DEPTH", "build_unet", "unet_widths"]


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
    widths = unet_widths(base_filters)
    skips = []
    for level in range(UNET_DEPTH):
        x = conv_block(x, widths[level], f"down{level + 1}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level + 1}_pool")(x)
    x = conv_block(x, widths[UNET_DEPTH], "bottleneck")
    for level in reversed(range(UNET_DEPTH)):
        filters = widths[level]
        x = layers.Conv2DTranspose(filters, 2, strides=2, name=f"up{level + 1}_upconv")(x)
        x = layers.Concatenate(name=f"up{level + 1}_concat")([x, skips[level]])
        x = conv_block(x, filters, f"up{level + 1}")
    return keras.Model(image, segmentation_head(x, image, num_classes), name="unet")
