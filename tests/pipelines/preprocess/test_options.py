"""PreprocessOptions: the one home of the defaults, and what it refuses."""

from __future__ import annotations

import pytest

from pipelines.core.records import RecordFormat
from pipelines.core.tiling import PATCH_SIZE
from pipelines.preprocess.options import PreprocessOptions


def test_defaults_and_recorded_form() -> None:
    options = PreprocessOptions("/in", "/out")
    assert options.validate() is options
    assert PreprocessOptions.default("patch_size") == PATCH_SIZE == options.patch_size
    assert PreprocessOptions.default("record_format") == RecordFormat("raw", "none")
    with pytest.raises(KeyError):
        PreprocessOptions.default("input_uri")
    assert options.to_dict() == {
        "input": "/in",
        "output": "/out",
        "patch_size": PATCH_SIZE,
        "val_fraction": 0.1,
        "seed": 0,
        "record_format": {"codec": "raw", "compression": "none"},
        "num_shards": "auto",
        "mask_kind": "auto",
        "label_map": None,
        "gsd": None,
        "target_gsd": None,
    }
    mapped = PreprocessOptions("/in", "/out", mask_kind="ids", label_map=((1, 0), (9, 6)))
    assert mapped.validate().to_dict()["label_map"] == {"1": 0, "9": 6}
    assert mapped.mask_rule.effective_label_map == ((1, 0), (9, 6))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"patch_size": 0}, "patch_size must be positive, got 0"),
        ({"patch_size": -612}, "patch_size must be positive"),
        ({"patch_size": 6.5}, "patch_size must be an integer"),
        ({"val_fraction": 1.5}, r"val_fraction must be in \[0, 1\), got 1.5"),
        ({"val_fraction": -0.1}, r"val_fraction must be in \[0, 1\)"),
        ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\), got 1.0: 1 would hold every"),
        ({"val_fraction": float("nan")}, r"val_fraction must be in \[0, 1\)"),
        ({"num_shards": -1}, r"num_shards must be >= 0"),
        ({"mask_kind": "grey"}, r"mask_kind must be one of auto, rgb, ids"),
        ({"label_map": ((1, 7),)}, r"label map target 7 \(for value 1\) is not a class id"),
        ({"label_map": ((-1, 0),)}, r"label map value -1 is negative"),
        ({"mask_kind": "rgb", "label_map": ((1, 0),)}, r"not to --mask-kind rgb"),
        ({"num_shards": -1}, "num_shards must be >= 0"),
        ({"seed": "1"}, "seed must be an integer"),
        ({"input_uri": ""}, "input_uri is empty"),
        ({"output_uri": ""}, "output_uri is empty"),
        ({"record_format": {"codec": "raw"}}, "record_format must be a RecordFormat"),
        ({"gsd": 0.0}, "gsd must be a positive number of metres per pixel, got 0.0"),
        ({"target_gsd": -1.0}, "target_gsd must be a positive number"),
        ({"target_gsd": float("inf")}, "target_gsd must be a positive number"),
    ],
)
def test_validate_refuses_bad_values(change: dict, message: str) -> None:
    fields = {"input_uri": "/in", "output_uri": "/out", **change}
    with pytest.raises(ValueError, match=message):
        PreprocessOptions(**fields).validate()


def test_val_fraction_zero_is_valid_and_one_is_not() -> None:
    # 0: every scene trains; 1 would leave nothing to train on (refused above).
    for fraction in (0.0, 0.999):
        PreprocessOptions("/in", "/out", val_fraction=fraction).validate()
