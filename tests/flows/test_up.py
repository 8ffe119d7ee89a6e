"""``landcover up`` for real (a real ``prefect server start``, served deployments, the
drop-folder watcher), then a ``landcover.imagery.dropped`` event, emitted directly and by the
watcher, must each lead to a COMPLETED ``imagery-drop`` run with the event's parameters."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flows.drops.events import DROP_MARKER
from flows.up import READY_LINE, port_in_use

STARTUP_S = 180
RUN_S = 120


class Up:
    """``landcover up`` in a subprocess, with its output collected by a thread."""

    def __init__(self, root: Path, port: int) -> None:
        self.api = f"http://127.0.0.1:{port}/api"
        self.lines: list[str] = []
        env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "up", "--root", str(root), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if any(READY_LINE in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError("landcover up did not come up:\n" + "".join(self.lines[-60:]))

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.api + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.api + path, timeout=10) as response:
            return json.loads(response.read())

    def completed_drop_run(self, prefix: str) -> dict[str, Any]:
        deployment = self.get("/deployments/name/imagery-drop/landcover")
        deadline = time.monotonic() + RUN_S
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            runs = self.post(
                "/flow_runs/filter",
                {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}, "limit": 50},
            )
            for run in runs:
                if run["parameters"].get("prefix") == prefix:
                    if run["state_type"] in ("FAILED", "CRASHED", "CANCELLED"):
                        raise AssertionError(f"imagery-drop run {run['state_type']}: {run}")
                    if run["state_type"] == "COMPLETED":
                        return run
            time.sleep(1.0)
        raise AssertionError(f"no completed run for {prefix}: {runs}\n" + "".join(self.lines[-40:]))

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout=90)


def unlabeled_scene(tiny_scenes: Path, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    image = sorted(tiny_scenes.glob("*_sat.jpg"))[0]
    shutil.copy(image, folder)
    return image.name


def emit_drop_event(api: str, bucket: str, prefix: str) -> None:
    """Emit the event from a separate process, as the GCS bridge or any producer would."""
    code = (
        "import sys\n"
        "from prefect.events import emit_event\n"
        "from flows.drops.events import drop_event\n"
        "from flows.drops.watcher import flush_events\n"
        "assert emit_event(**drop_event(sys.argv[1], sys.argv[2])) is not None\n"
        "flush_events()\n"
    )
    env = {**os.environ, "PREFECT_API_URL": api}
    subprocess.run([sys.executable, "-c", code, bucket, prefix], env=env, check=True, timeout=120)


@pytest.mark.slow
def test_drop_events_start_imagery_drop_runs_on_a_real_server(
    tmp_path: Path, tiny_scenes: Path, free_port: Callable[[], int], scene_readers: None
) -> None:
    root, port = tmp_path / "work", free_port()
    up = Up(root, port)
    try:
        up.wait_ready()
        automations = up.post("/automations/filter", {"limit": 10})
        assert [a["name"] for a in automations] == ["landcover-imagery-dropped"]

        # (a) an event emitted directly: parameters come from its resource labels.
        bucket = tmp_path / "bucket"
        name = unlabeled_scene(tiny_scenes, bucket / "emitted")
        emit_drop_event(up.api, str(bucket), "emitted")
        run = up.completed_drop_run("emitted")
        assert run["parameters"]["bucket"] == str(bucket)
        assert run["parameters"]["root"] == str(root.resolve())
        assert (root / "incoming" / name).is_file()
        assert not (bucket / "emitted" / name).exists()

        # (b) a drop completed in the watched folder: files first, the marker last.
        drop = root / "drops" / "watched"
        unlabeled_scene(tiny_scenes, drop)
        (drop / "notes.txt").write_text("not a scene")
        (drop / DROP_MARKER).touch()
        run = up.completed_drop_run("watched")
        assert run["parameters"]["bucket"] == str((root / "drops").resolve())
        assert (root / "rejected" / "watched" / "notes.txt").is_file()
    finally:
        status = up.stop()
    assert status == 0, "".join(up.lines[-40:])
    assert "stopped." in "".join(up.lines)
    assert not port_in_use(port)


@pytest.mark.parametrize(("argv", "host"), [([], "127.0.0.1"), (["--host", "0.0.0.0"], "0.0.0.0")])
def test_up_binds_the_server_to_loopback_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], host: str
) -> None:
    """The Prefect API has no login: `landcover up` listens on 127.0.0.1 by default."""
    from flows import up

    started: list[list[str]] = []

    class Stop(KeyboardInterrupt):
        pass

    def fake_popen(command: list[str], **_: object) -> None:
        started.append(command)
        raise Stop

    monkeypatch.setattr(up, "port_in_use", lambda port, host="127.0.0.1": False)
    monkeypatch.setattr(up.subprocess, "Popen", fake_popen)
    monkeypatch.setattr(up.signal, "signal", lambda *_: None)
    assert up.main(["--root", str(tmp_path), "--port", "4999", *argv]) == 0
    (command,) = started
    assert command[command.index("--host") + 1] == host
    assert up.server_command(4200)[-5:] == [
        "--host",
        "127.0.0.1",
        "--port",
        "4200",
        "--analytics-off",
    ]
