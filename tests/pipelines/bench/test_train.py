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


def test_mixed_precision_steps_follow_float32_on_cpu() -> None:
    """The GPU preset's mixed_float16 step, checked numerically where no GPU is: from the same
    weights and batch, its loss after a few steps stays within float16's tolerance of float32's."""
    import keras

    from models.architectures import build_model
    from pipelines.bench.train import train_steps

    keras.utils.set_random_seed(3)
    start = build_model("unet", base_filters=4).get_weights()
    common = {"size": 32, "batch_size": 2, "base_filters": 4, "steps": 3, "seed": 3}
    full, _, _, _ = train_steps("unet", **common, initial_weights=start)
    mixed, _, _, mixed_model = train_steps(
        "unet", **common, mixed_precision=True, initial_weights=start
    )
    assert any(layer.compute_dtype == "float16" for layer in mixed_model.layers)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is put back
    assert full[0] != full[-1]  # the steps train: the check is not of a frozen model
    for step, (a, b) in enumerate(zip(full, mixed, strict=True)):
        assert abs(a - b) <= 2e-2 * abs(a) + 1e-3, f"step {step}: float32 {a} vs mixed {b}"
