"""Fault tier: the drop flow SIGKILLed at several points, resumed, and run twice at once.

Each run is a real child process (``python -c``) against the session's Prefect API; faults are
injected by wrapping one function in the child and killing the process with SIGKILL at that
point, so no ``finally`` or exception handler runs. No person steps in afterwards: a restarted
watcher announces the unfinished drop again (and so does a re-touched ``_DONE``), and the next
run takes over the killed run's drop lock at once (its holder's pid is dead) and finishes its
journal. After it every file of the drop is in exactly one place (raw/, incoming/ or
rejected/), byte-identical; the receipt lists each file once with its checksum; retraining is
recorded once per delivery.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.drops.events import BUCKET_LABEL, DROP_MARKER, PREFIX_LABEL
from flows.drops.receipt import JOURNAL_NAME, RECEIPT_NAME
from flows.drops.watcher import DropWatcher
from flows.layout import Layout

pytestmark = pytest.mark.slow

CHILD = r"""
import json, os, signal, sys
args = json.loads(sys.argv[1])
fault = args.pop("fault")

def die(*_a, **_k):
    os.kill(os.getpid(), signal.SIGKILL)

if fault == "between-moves":
    from pipelines.io import integrity
    real_move, moves = integrity.verified_move, []
    def verified_move(src, dst):
        moves.append(src)
        if len(moves) == 3:  # two files moved, the third not started
            die()
        return real_move(src, dst)
    integrity.verified_move = verified_move
elif fault == "between-copy-and-delete":
    from pipelines.io import integrity
    real, calls = integrity.delete_object, []
    def delete_object(uri, **kw):
        calls.append(uri)
        if len(calls) == 3:  # the third source: copied and verified, not yet deleted
            die()
        return real(uri, **kw)
    integrity.delete_object = delete_object
elif fault == "after-moves-before-receipt":
    import flows.drops.unpack
    flows.drops.unpack.write_receipt = die
elif fault == "during-retrain-trigger":
    import flows.drops.drop
    real_due = flows.drops.drop.record_due
    def record_due(*a, **k):
        real_due(*a, **k)  # retraining recorded as due; the receipt does not know it yet
        die()
    flows.drops.drop.record_due = record_due

from flows.drops.drop import imagery_drop
result = imagery_drop(**args)
print("RESULT", json.dumps({k: result[k] for k in ("labeled", "unlabeled", "deliveries")}))
"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_drop(drops: Path, tiny_scenes: Path) -> dict[str, str]:
    """Two labeled pairs, one unlabeled scene, one stray file; returns name → sha256."""
    folder = drops / "d"
    folder.mkdir(parents=True)
    ids = sorted(p.name[: -len("_sat.jpg")] for p in tiny_scenes.glob("*_sat.jpg"))
    names = [f"{ids[0]}_sat.jpg", f"{ids[0]}_mask.png", f"{ids[1]}_sat.jpg"]
    names += [f"{ids[1]}_mask.png", f"{ids[2]}_sat.jpg"]
    for name in names:
        (folder / name).write_bytes((tiny_scenes / name).read_bytes())
    (folder / "notes.txt").write_bytes(b"not a scene")
    (folder / DROP_MARKER).touch()
    return {p.name: sha(p.read_bytes()) for p in folder.iterdir() if p.name != DROP_MARKER}


def run_child(
    api_url: str, drops: Path, root: Path, fault: str = "none", prefix: str = "d"
) -> subprocess.Popen[str]:
    args = {
        "bucket": str(drops),
        "prefix": prefix,
        "root": str(root),
        "retrain": False,
        "predict": False,
        "fault": fault,
    }
    env = {**os.environ, "PREFECT_API_URL": api_url}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def api_url(prefect_harness: None) -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url
    return str(url)


def check_final_state(drops: Path, root: Path, dropped: dict[str, str]) -> None:
    """No loss, no double move, receipt complete, counts reconcile, retraining due once."""
    folder = drops / "d"
    assert list(folder.iterdir()) == []  # every file moved out, the marker removed
    state = Path(Layout(str(root)).drop_state(str(folder)))
    assert sorted(p.name for p in state.iterdir()) == [RECEIPT_NAME]  # the journal is done
    placed: dict[str, list[str]] = {}
    for area in ("raw", "incoming", "rejected"):
        for path in (root / area).rglob("*"):
            if path.is_file() and path.name != "errors.jsonl":
                placed.setdefault(sha(path.read_bytes()), []).append(str(path))
    for name, digest in dropped.items():
        assert len(placed.get(digest, [])) == 1, (name, placed.get(digest))
    assert sum(len(v) for v in placed.values()) == len(dropped)
    receipt = json.loads((state / RECEIPT_NAME).read_text())
    files = [f for d in receipt["deliveries"] for f in d["files"]]
    assert sorted(f["from"].rsplit("/", 1)[-1] for f in files) == sorted(dropped)
    assert all(f["sha256"] == dropped[f["from"].rsplit("/", 1)[-1]] for f in files)
    assert len(receipt["labeled"]) == 2 and len(receipt["unlabeled"]) == 1
    assert [r["reason"] for r in receipt["rejected"]] and len(receipt["rejected"]) == 1
    errors = (root / "rejected" / "d" / "errors.jsonl").read_text().splitlines()
    assert len(errors) == 1
    due = json.loads((root / "state" / "retrain-due.json").read_text())["due"]
    assert len(due) == len(receipt["deliveries"]) == 1
    assert all(d["follow_ups"].get("training") for d in receipt["deliveries"])


@pytest.mark.parametrize(
    "fault",
    [
        "between-moves",
        "between-copy-and-delete",
        "after-moves-before-receipt",
        "during-retrain-trigger",
    ],
)
def test_killed_drop_runs_are_resumed_without_a_person_and_without_loss_or_double_moves(
    api_url: str, tmp_path: Path, tiny_scenes: Path, scene_readers: None, fault: str
) -> None:
    drops, root = tmp_path / "drops", tmp_path / "root"
    dropped = make_drop(drops, tiny_scenes)
    state_file = Layout(str(root)).watcher_state
    announced: list[dict[str, object]] = []
    running = DropWatcher(drops, announced.append, state_file=state_file)
    assert running.poll() == ["d"]
    killed = run_child(api_url, drops, root, fault)
    output = killed.communicate(timeout=600)[0]
    assert killed.returncode == -9, output[-3000:]
    assert (drops / "d" / DROP_MARKER).exists()  # unfinished
    lock = Path(Layout(str(root)).drop_lock)
    assert lock.exists() and json.loads(lock.read_text())["pid"] == killed.pid  # left behind
    if fault == "between-moves":
        journal = Path(Layout(str(root)).drop_state(str(drops / "d"))) / JOURNAL_NAME
        moved = [p for a in ("raw", "incoming", "rejected") for p in (root / a).rglob("*")]
        assert journal.exists() and len([p for p in moved if p.is_file()]) == 2
    # The watcher restarts (landcover up again): it announces the unfinished drop again.
    assert running.poll() == []  # the old watcher already said it once
    restarted: list[dict[str, object]] = []
    assert DropWatcher(drops, restarted.append, state_file=state_file).poll() == ["d"]
    event = restarted[0]
    assert event["payload"]["resumed"] is True  # type: ignore[index]
    resource = event["resource"]
    assert (resource[BUCKET_LABEL], resource[PREFIX_LABEL]) == (str(drops.resolve()), "d")  # type: ignore[index]
    # So does a re-touched marker, on a watcher that kept running.
    os.utime(drops / "d" / DROP_MARKER, ns=(1, 1))
    assert running.poll() == ["d"]
    # The run that event starts takes over the dead run's lock at once and finishes the drop.
    rerun = run_child(api_url, Path(resource[BUCKET_LABEL]), root, prefix=resource[PREFIX_LABEL])  # type: ignore[index]
    output = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, output[-3000:]
    check_final_state(drops, root, dropped)
    assert not lock.exists()


def test_the_same_event_twice_and_two_runs_at_once_end_as_one_run(
    api_url: str, tmp_path: Path, tiny_scenes: Path, scene_readers: None
) -> None:
    drops, root = tmp_path / "drops", tmp_path / "root"
    dropped = make_drop(drops, tiny_scenes)
    first, second = run_child(api_url, drops, root), run_child(api_url, drops, root)
    outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], (
        outputs[0][-2000:] + outputs[1][-2000:]
    )
    check_final_state(drops, root, dropped)
    results = [json.loads(o.split("RESULT ", 1)[1].splitlines()[0]) for o in outputs]
    assert sorted(len(r["deliveries"]) for r in results) == [0, 1]  # one moved, one found none
    receipt_file = Path(Layout(str(root)).drop_state(str(drops / "d"))) / RECEIPT_NAME
    receipt = receipt_file.read_bytes()
    (drops / "d" / DROP_MARKER).touch()  # the same drop event delivered again
    again = run_child(api_url, drops, root)
    assert again.communicate(timeout=600)[0] and again.returncode == 0
    assert receipt_file.read_bytes() == receipt
    check_final_state(drops, root, dropped)
