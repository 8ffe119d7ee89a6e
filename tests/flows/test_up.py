"""``landcover up`` for real (a real ``prefect server start``, served deployments, the
drop-folder watcher): a ``landcover.imagery.dropped`` event, emitted directly and by the
watcher, must each lead to a COMPLETED ``imagery-drop`` run with the event's parameters; the UI,
driven in a headless Chromium, works on a non-default port; SIGINT stops everything even when
``up`` was started with SIGINT ignored; a second start says "up" only once the deployments are
resumed. The rest checks the pieces (readiness, signals, the children's environment) alone."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flows import up as up_module
from flows.drops.events import DROP_MARKER
from flows.up import READY_LINE, port_in_use

STARTUP_S = 180
RUN_S = 120


def ignore_sigint() -> None:
    """What a shell does to a script's background job: SIGINT ignored (inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Up:
    """``landcover up`` in a subprocess, with its output collected by a thread."""

    def __init__(
        self,
        root: Path,
        port: int,
        *extra: str,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.api = f"{self.url}/api"
        self.lines: list[str] = []
        env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        command = [sys.executable, "-m", "flows.cli", "up", "--root", str(root)]
        self.proc = subprocess.Popen(
            [*command, "--port", str(port), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
            preexec_fn=preexec_fn,
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

    def signal_up_only(self, sig: int) -> int:
        """Send ``sig`` to the supervisor alone (as ``kill`` does); its exit status."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=90)

    def output(self) -> str:
        return "".join(self.lines)


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


@pytest.mark.parametrize(
    ("argv", "host"),
    [
        ([], "127.0.0.1"),
        (["--host", "::1"], "::1"),
        (["--host", "localhost"], "localhost"),
        (["--host", "0.0.0.0", "--allow-remote"], "0.0.0.0"),
    ],
)
def test_up_binds_the_server_to_loopback_unless_told_otherwise(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    host: str,
) -> None:
    """The Prefect API has no login: `landcover up` listens on 127.0.0.1 by default."""
    monkeypatch.delenv("PREFECT_SERVER_API_AUTH_STRING", raising=False)
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
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
    err = capsys.readouterr().err
    if "--allow-remote" in argv:  # the risk, said out loud
        assert "has no login" in err and "PREFECT_API_AUTH_STRING=user:password" in err
    else:
        assert "warning" not in err
    assert up.server_command(4200)[-5:] == [
        "--host",
        "127.0.0.1",
        "--port",
        "4200",
        "--analytics-off",
    ]


# ---- the pieces ------------------------------------------------------------------------------


def deployment(function: str, **fields: Any) -> dict[str, Any]:
    """A deployment as the API lists it, registered, resumed and READY unless told otherwise."""
    module = {
        "train": "flows.train",
        "train_model": "flows.train",
        "imagery_drop": "flows.drops.drop",
        "nightly_inference": "flows.inference",
    }[function]
    schedules = []
    if function == "nightly_inference":
        schedules = [{"active": True, "schedule": {"cron": "0 2 * * *", "timezone": "UTC"}}]
    return {
        "name": "landcover",
        "entrypoint": f"{module}.{function}",
        "paused": False,
        "status": "READY",
        "schedules": schedules,
        **fields,
    }


FUNCTIONS = ("train", "train_model", "imagery_drop", "nightly_inference")
AUTOMATIONS = [{"name": "landcover-imagery-dropped", "enabled": True}]


def test_up_is_ready_only_when_every_deployment_is_resumed_polled_and_scheduled() -> None:
    ready = [deployment(f) for f in FUNCTIONS]
    assert up_module.deployments_not_ready(ready, AUTOMATIONS) == []
    # What a second start sees first: the previous serve paused them all on its way out.
    paused = [deployment(f, paused=True) for f in FUNCTIONS]
    assert up_module.deployments_not_ready(paused, AUTOMATIONS) == [
        f"{f} (landcover): paused" for f in FUNCTIONS
    ]
    not_polled = [*ready[:3], deployment("nightly_inference", status="NOT_READY")]
    assert up_module.deployments_not_ready(not_polled, AUTOMATIONS) == [
        "nightly_inference (landcover): status NOT_READY"
    ]
    inactive = deployment("nightly_inference")
    inactive["schedules"][0]["active"] = False
    assert up_module.deployments_not_ready([*ready[:3], inactive], AUTOMATIONS) == [
        "nightly_inference (landcover): schedule 0 2 * * * not active"
    ]
    assert up_module.deployments_not_ready(ready[1:], []) == [
        "train (landcover): not registered",
        "automation landcover-imagery-dropped: not created",
    ]


@pytest.mark.parametrize(
    ("host", "ui_api"),
    [
        ("127.0.0.1", "http://127.0.0.1:4300/api"),
        ("192.0.2.7", "http://192.0.2.7:4300/api"),
        ("0.0.0.0", f"http://{socket.gethostname()}:4300/api"),
        ("::1", "http://[::1]:4300/api"),
    ],
)
def test_the_ui_calls_the_api_on_the_port_and_host_up_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, ui_api: str
) -> None:
    """Before, ``--port 4300`` served a UI that called the API on 4200."""
    monkeypatch.setenv("PREFECT_UI_API_URL", "http://127.0.0.1:4200/api")  # a stale one
    env = up_module.server_env(tmp_path, host, 4300)
    assert env["PREFECT_UI_API_URL"] == ui_api
    assert (env["PREFECT_SERVER_API_HOST"], env["PREFECT_SERVER_API_PORT"]) == (host, "4300")
    assert "PREFECT_UI_API_URL" not in up_module.child_env(tmp_path, "http://x/api")
    # The children on this machine reach a wildcard-bound server on loopback.
    assert up_module.api_url("0.0.0.0", 4300) == "http://127.0.0.1:4300/api"


def test_train_overrides_are_typed_merged_with_the_preset_and_checked_at_start() -> None:
    assert up_module.training_overrides("cpu", ["epochs=3", "loss=dice+ce", "crop_size=null"]) == {
        "preset": "cpu",
        "epochs": 3,
        "loss": "dice+ce",
        "crop_size": None,
    }
    assert up_module.training_overrides(None, []) == {}
    assert up_module.training_overrides("cpu", [], 12.5) == {"preset": "cpu", "max_minutes": 12.5}
    with pytest.raises(ValueError, match="max_minutes"):
        up_module.training_overrides(None, [], 0.0)
    with pytest.raises(ValueError, match="--max-minutes"):  # a budget plans the epoch length
        up_module.training_overrides(None, ["steps_per_epoch=5"], 3.0)
    with pytest.raises(ValueError, match=r"unknown training option.*epochz"):
        up_module.training_overrides(None, ["epochz=3"])
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        up_module.training_overrides(None, ["epochs"])
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        up_module.training_overrides("cpu", ["epochs=0"])
    assert up_module.serve_command("/r", {"preset": "cpu"})[-2:] == [
        "--training",
        '{"preset": "cpu"}',
    ]


def test_a_bad_train_option_stops_up_before_it_starts_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        up_module.main(["--root", str(tmp_path / "r"), "--train", "epochz=3"])
    assert exit_info.value.code == 2
    assert "training options: unknown training option(s) epochz" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


GRANDCHILD = r"""
import subprocess, sys, time
# A flow run as a serving process starts it: a session of its own, out of our process group.
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                         start_new_session=True)
print(child.pid, flush=True)
time.sleep(300)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_stop_all_also_stops_what_a_child_started_in_another_session() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", GRANDCHILD],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    assert up_module.descendants(child.pid) == [grandchild] and alive(grandchild)
    up_module.stop_all([child], grace=10)
    assert child.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 10
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(grandchild)


# ---- the UI in a real browser ----------------------------------------------------------------

CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium() -> tuple[str, str]:
    """Debian's chromium and its driver (installed by .ci/run); skipped locally without them,
    never in CI."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    if os.environ.get("CI"):
        pytest.fail("chromium and chromedriver are missing: .ci/run installs them (apt)")
    pytest.skip("chromium + chromedriver not installed (apt-get install chromium chromium-driver)")


class Browser:
    """A headless Chromium driven by selenium, with its own throw-away profile."""

    def __init__(self, profile: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        browser, driver = chromium()
        options = Options()
        options.binary_location = browser
        for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(options=options, service=Service(driver))

    def text_once(self, url: str, *expected: str, timeout: float = 60) -> str:
        """The page's text once it shows every ``expected`` string (the UI loads its data
        from the API after the page itself)."""
        self.driver.get(url)
        deadline, text = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            text = self.driver.find_element("tag name", "body").text
            if all(e in text for e in expected):
                return text
            time.sleep(0.5)
        raise AssertionError(f"{url} never showed {expected}; it shows:\n{text[:2000]}")

    def close(self) -> None:
        self.driver.quit()


@pytest.mark.slow
def test_the_ui_on_a_non_default_port_signals_and_a_second_start(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    chromium()  # before minutes of start-up
    root, port = tmp_path / "work", free_port()
    assert port != up_module.DEFAULT_PORT
    # Started as a script's background job would be: SIGINT ignored.
    up = Up(root, port, "--train-preset", "cpu", "--train", "epochs=2", preexec_fn=ignore_sigint)
    browser = Browser(tmp_path / "chromium-profile")
    try:
        up.wait_ready()
        assert "retraining:   epochs=2, preset=cpu" in up.output()
        text = browser.text_once(
            f"{up.url}/deployments",
            "train-model",
            "imagery-drop",
            "nightly-inference",
            "4 Deployments",
        )
        assert "Can't connect" not in text
        nightly = up.get("/deployments/name/nightly-inference/landcover")
        detail = browser.text_once(
            f"{up.url}/deployments/deployment/{nightly['id']}", "At 02:00 AM every day"
        )
        assert "flows.inference.nightly_inference" in detail
        # A labelled drop's retraining is sized as asked.
        train = up.get("/deployments/name/train/landcover")
        assert train["parameters"]["training"] == {"preset": "cpu", "epochs": 2}
        children = up_module.descendants(up.proc.pid)
        assert len(children) >= 3  # server, serving process, watcher (and theirs)
        assert up.signal_up_only(signal.SIGINT) == 0, up.output()[-3000:]
    finally:
        browser.close()
        up.stop()
    assert "stopped." in up.output()
    assert [pid for pid in children if alive(pid)] == []
    assert not port_in_use(port)

    # The same root again: the deployments the first run paused on its way out must be
    # resumed before "up" is printed.
    again = Up(root, port)
    try:
        again.wait_ready()
        listed = again.post("/deployments/filter", {"limit": 50})
        assert len(listed) == 4
        assert [d for d in listed if d["paused"] or d["status"] != "READY"] == []
        train = again.get("/deployments/name/train/landcover")
        assert "training" not in train["parameters"]  # this start asked for no preset
        assert again.signal_up_only(signal.SIGTERM) == 0
    finally:
        again.stop()
    assert not port_in_use(port)


def test_one_auth_string_guards_the_server_and_is_sent_by_up_and_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_SERVER_API_AUTH_STRING", raising=False)
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    assert up_module.auth_headers() == {}
    assert "PREFECT_SERVER_API_AUTH_STRING" not in up_module.server_env(tmp_path, "0.0.0.0", 1)
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "admin:s3cret")
    assert up_module.server_env(tmp_path, "0.0.0.0", 1)["PREFECT_SERVER_API_AUTH_STRING"] == (
        "admin:s3cret"
    )
    assert up_module.child_env(tmp_path, "http://x/api")["PREFECT_API_AUTH_STRING"] == (
        "admin:s3cret"
    )
    assert up_module.auth_headers() == {"Authorization": "Basic YWRtaW46czNjcmV0"}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "myhost.example"])
def test_up_beyond_loopback_needs_allow_remote_and_starts_nothing_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    from flows import up

    started: list[object] = []
    monkeypatch.setattr(up.subprocess, "Popen", lambda *a, **k: started.append(a))
    with pytest.raises(SystemExit) as exit_info:
        up.main(["--root", str(tmp_path / "r"), "--host", host])
    assert exit_info.value.code == 2 and started == []
    err = capsys.readouterr().err
    assert f"--host {host} exposes the Prefect API" in err and "--allow-remote" in err
    assert not (tmp_path / "r").exists()


def test_the_remote_risk_names_the_auth_setting_or_the_missing_tls() -> None:
    bare = up_module.remote_risk("0.0.0.0", 4200, authenticated=False)
    assert "0.0.0.0:4200 has no login" in bare and "PREFECT_SERVER_API_AUTH_STRING" in bare
    guarded = up_module.remote_risk("::", 4200, authenticated=True)
    assert "[::]:4200" in guarded and "in clear" in guarded and "no login" not in guarded
    assert [up_module.is_loopback(h) for h in ("127.0.0.2", "::1", "LOCALHOST", "0.0.0.0")] == [
        True,
        True,
        True,
        False,
    ]
