"""Storage layout, scene-name parsing and input fingerprints."""

from __future__ import annotations

import datetime as dt

from flows.layout import (
    Layout,
    fingerprint,
    model_version,
    new_run_id,
    safe_name,
)


def test_layout_local_and_gcs_roots_give_the_design_folders() -> None:
    local = Layout("/data/lc")
    assert local.raw == "/data/lc/raw"
    assert local.incoming == "/data/lc/incoming"
    assert local.records("v1") == "/data/lc/records/v1"
    assert local.fingerprint_file("v1") == "/data/lc/records/v1/fingerprint.json"
    assert (
        local.model_dir("unet", "20240601-000000-ab") == "/data/lc/models/unet/20240601-000000-ab"
    )
    assert local.promoted_pointer == "/data/lc/models/promoted.json"
    assert local.predictions("unet-1") == "/data/lc/predictions/unet-1"
    assert local.report("r1") == "/data/lc/reports/r1"
    assert local.rejected("d1") == "/data/lc/rejected/d1"
    assert local.retrain_due == "/data/lc/state/retrain-due.json"
    gcs = Layout("gs://bucket/lc/")
    assert gcs.raw == "gs://bucket/lc/raw"
    assert gcs.promoted_pointer == "gs://bucket/lc/models/promoted.json"


def test_run_ids_sort_by_time_and_names_are_safe() -> None:
    early = new_run_id(dt.datetime(2024, 6, 1, 2, 0, tzinfo=dt.UTC), "aaaa")
    late = new_run_id(dt.datetime(2024, 6, 2, 1, 0, tzinfo=dt.UTC), "0000")
    assert early == "20240601-020000-aaaa" and early < late
    assert safe_name("drops/2024 06/01/") == "drops_2024_06_01"
    assert safe_name("///") == "drop"
    assert model_version("unet", "v1") == "unet-v1"


def test_fingerprint_changes_with_files_sizes_and_options_only() -> None:
    files = [("1_sat.jpg", 100), ("1_mask.png", 20)]
    options = {"patch_size": 612, "seed": 0}
    base = fingerprint(files, options)
    assert fingerprint(list(reversed(files)), dict(reversed(options.items()))) == base
    assert fingerprint([("1_sat.jpg", 101), ("1_mask.png", 20)], options) != base
    assert fingerprint([*files, ("2_sat.jpg", 5)], options) != base
    assert fingerprint(files, {**options, "patch_size": 256}) != base


def test_the_flows_state_has_one_home_and_each_drop_its_own_folder_there() -> None:
    layout = Layout("/r")
    assert layout.state == "/r/state"
    for path in (layout.retrain_due, layout.drop_lock, layout.watcher_state):
        assert path.startswith("/r/state/")
    # Names that clean up alike, or one prefix in two buckets, never share a receipt.
    states = {
        layout.drop_state(u) for u in ("/drops/a/b", "/drops/a_b", "gs://x/a_b", "gs://y/a_b")
    }
    assert len(states) == 4 and all(s.startswith("/r/state/drops/") for s in states)
    key = layout.drop_state("gs://bucket/drops/2024-06-01").rsplit("/", 1)[-1]
    assert key.startswith("2024-06-01-") and len(key) == len("2024-06-01-") + 12
    assert layout.drop_state("/drops/a_b/") == layout.drop_state("/drops/a_b")
