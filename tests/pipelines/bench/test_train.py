"""``landcover bench train``: the report line names each architecture's real layer widths."""

from __future__ import annotations

from pipelines.bench.train import filters_description


def test_filters_description_per_architecture() -> None:
    assert filters_description("unet", 16) == (
        "base_filters=16 (encoder/decoder widths [16, 32, 64, 128, 256])"
    )
    assert "decoder widths [64, 32, 16, 8, 4]" in filters_description("resnet50_unet", 16)
    assert filters_description("deeplabv3plus", 64) == (
        "base_filters=64 (ResNet50 encoder 64-2048, ASPP/decoder width 256, stride-4 projection 48)"
    )
