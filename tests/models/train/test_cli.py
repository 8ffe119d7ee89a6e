"""``landcover train``'s flags: parsed into TrainConfig, instant help, exit statuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from models.train.cli import build_parser, config_from_args, main

REPO = Path(__file__).resolve().parents[3]


def test_flags_become_a_train_config() -> None:
    argv = ["--data", "d", "--output", "o", "--arch", "resnet50_unet", "--batch-size", "2"]
    argv += ["--strategy", "mirrored", "--mixed-precision", "--jit", "--encoder-weights"]
    argv += ["imagenet", "--freeze-encoder-epochs", "1", "--val-steps", "3", "--crop-size", "256"]
    config = config_from_args(argv)
    assert (config.batch_size, config.strategy, config.mixed_precision, config.jit) == (
        2,
        "mirrored",
        True,
        True,
    )
    assert (config.encoder_weights, config.freeze_encoder_epochs) == ("imagenet", 1)
    assert (config.val_steps, config.crop_size, config.steps_per_epoch) == (3, 256, None)
    config.validate()
    assert config_from_args([*argv[:6], "--val-steps", "all"]).val_steps is None


def test_recipe_flags_and_presets() -> None:
    base = ["--data", "d", "--output", "o", "--arch", "unet"]
    argv = [*base, "--lr-schedule", "poly", "--warmup-fraction", "0.1", "--weight-decay", "0.01"]
    argv += ["--decay-fraction", "0.3", "--bn-recalibration-batches", "4", "--max-minutes", "12.5"]
    argv += ["--loss", "focal+dice", "--focal-gamma", "1.5", "--class-weights", "auto"]
    argv += ["--color-jitter", "0.2", "--early-stopping-patience", "3", "--fresh"]
    config = config_from_args(argv)
    assert (config.lr_schedule, config.warmup_fraction, config.weight_decay) == ("poly", 0.1, 0.01)
    assert (config.decay_fraction, config.bn_recalibration_batches, config.max_minutes) == (
        0.3,
        4,
        12.5,
    )
    assert (config.loss, config.focal_gamma, config.class_weights) == ("focal+dice", 1.5, "auto")
    assert (config.color_jitter, config.early_stopping_patience, config.fresh) == (0.2, 3, True)
    defaults = config_from_args(base)
    assert (defaults.loss, defaults.lr_schedule, defaults.class_weights) == (
        "dice",
        "cosine",
        "none",
    )
    assert defaults.preset is None and not defaults.fresh
    cpu = config_from_args([*base, "--preset", "cpu"])
    assert (cpu.preset, cpu.crop_size, cpu.base_filters) == ("cpu", 160, 16)
    gpu = config_from_args([*base, "--preset", "gpu", "--crop-size", "256", "--no-mixed-precision"])
    assert (gpu.preset, gpu.crop_size, gpu.base_filters, gpu.mixed_precision) == (
        "gpu",
        256,
        64,
        False,
    )


def test_bad_class_weights_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        config_from_args(["--data", "d", "--output", "o", "--arch", "unet", "--class-weights", "1"])
    assert "one weight per class" in capsys.readouterr().err


def test_unknown_architecture_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["--data", "d", "--output", "o", "--arch", "vgg"])
    assert raised.value.code == 2
    assert "invalid choice: 'vgg'" in capsys.readouterr().err


def test_help_and_bad_flags_import_neither_tensorflow_nor_keras() -> None:
    code = (
        "import sys, models.train.cli as cli\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0\n"
        "try:\n"
        "    cli.main(['--data', 'd', '--output', 'o', '--arch', 'vgg'])\n"
        "except SystemExit as done:\n"
        "    assert done.code == 2\n"
        "sys.exit(bool({'tensorflow', 'keras'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "landcover train" in result.stdout


def test_missing_data_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--data", str(tmp_path / "nowhere"), "--output", str(tmp_path / "m"), "--arch", "unet"]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("landcover train: ")


def test_progress_logging_follows_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set up once, it writes wherever stderr is now, never to a stream closed since."""
    import io
    import logging

    from models.train.cli import log_progress_to_stderr

    logger = logging.getLogger("landcover")
    for name in ("handlers", "level", "propagate"):
        monkeypatch.setattr(logger, name, getattr(logger, name))
    monkeypatch.setattr(logger, "handlers", [])
    log_progress_to_stderr()
    log_progress_to_stderr()
    assert len(logger.handlers) == 1
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    logging.getLogger("landcover.train").info("step one")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    logging.getLogger("landcover.train").info("step two")
    assert second.getvalue().rstrip().endswith("landcover.train step two")
