"""The recipe learns real imagery: a short budgeted run on real DeepGlobe scenes
(``../shared/deepglobe-512``, skipped when absent) beats the colour rule and the majority class
on the fixed test split's scenes it never saw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.bench import quality

DATA = Path(quality.SUITES["512"]["folder"])


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason=f"real DeepGlobe scenes not found at {DATA}")
def test_a_two_minute_run_beats_the_colour_rule_on_real_scenes(tmp_path: Path) -> None:
    argv = ["--suite", "512", "--output", str(tmp_path), "--max-minutes", "2", "--epochs", "2"]
    argv += ["--train", "base_filters=8", "--train", "learning_rate=0.003"]
    assert quality.main(argv) == 0
    report = json.loads((tmp_path / "quality.json").read_text())
    assert len(report["split"]["test"]) == 33
    miou = {name: result["miou"] for name, result in report["results"].items()}
    assert miou["unet"] > miou["rgb-mean"] + 0.03, miou
    assert miou["unet"] > miou["majority"], miou
