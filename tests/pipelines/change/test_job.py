"""The change job end to end on the DirectRunner: pairs by id and by footprint, a pair whose
maps cannot be aligned dead-lettered, the run table and summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from affine import Affine

from pipelines.answers.tables import read_parquet
from pipelines.change.cli import main as change_main
from pipelines.change.job import run_change

GRID = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)


def test_the_job_pairs_computes_and_reports(tmp_path: Path, write_map) -> None:
    before, after = tmp_path / "2023", tmp_path / "2024 [after]"
    forest = np.full((20, 20), 3, np.uint8)
    cleared = forest.copy()
    cleared[:10] = 0  # 200 px = 2 ha of forest became urban
    write_map(before / "a_mask.tif", forest, transform=GRID)
    write_map(after / "a_mask.tif", cleared, transform=GRID)
    # Different ids, same place: paired by footprint.
    write_map(before / "b_mask.tif", forest, transform=GRID)
    write_map(after / "b2_mask.tif", np.full((20, 20), 4, np.uint8), transform=GRID)
    # Same id, no georeference and another size: cannot be aligned → errors/.
    write_map(before / "c_mask.tif", forest, crs=None)
    write_map(after / "c_mask.tif", np.zeros((5, 5), np.uint8), crs=None)
    out = tmp_path / "changes"
    assert change_main(["--before", str(before), "--after", str(after), "--output", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["pairs"], summary["written"], summary["failed"]) == (3, 2, 1)
    assert "a: forest → urban: 2.00 ha" in summary["changes"]
    assert "b__b2: forest → water: 4.00 ha" in summary["changes"]
    table = read_parquet(str(out / "change_summary.parquet")).to_pylist()
    cells = {(r["pair_id"], r["from_class"], r["to_class"]): r for r in table}
    assert cells[("a", "forest", "urban")]["area_ha"] == 2.0
    assert cells[("a", "forest", "forest")]["pixels"] == 200
    assert cells[("b__b2", "forest", "water")]["matched_by"] == "footprint"
    assert (out / "change_summary.csv").read_text().startswith('"pair_id","before","after"')
    errors = [json.loads(line) for f in (out / "errors").glob("*.jsonl") for line in f.open()]
    assert len(errors) == 1 and errors[0]["scene_id"] == "c"
    assert "without a georeference" in errors[0]["reason"]
    assert sorted(p.name for p in out.glob("*_change.tif")) == ["a_change.tif", "b__b2_change.tif"]


def test_no_pairs_still_writes_an_empty_table(tmp_path: Path, write_map) -> None:
    write_map(tmp_path / "b" / "x_mask.tif", np.zeros((4, 4), np.uint8), transform=GRID)
    (tmp_path / "a").mkdir()
    summary = run_change(str(tmp_path / "b"), str(tmp_path / "a"), str(tmp_path / "o"))
    assert summary["pairs"] == 0 and summary["unpaired"]
    assert read_parquet(str(tmp_path / "o" / "change_summary.parquet")).num_rows == 0


def test_a_missing_folder_fails_before_beam(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = change_main(["--before", str(tmp_path / "x"), "--after", str(tmp_path), "--output", "o"])
    assert code == 2 and "does not exist" in capsys.readouterr().err
