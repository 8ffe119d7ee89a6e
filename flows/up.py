"""``landcover up``: the embedded default, for a person on one machine.

Three child processes, supervised by this one:

1. ``prefect server start`` on 127.0.0.1 (API, UI, scheduler, automations), its state
   (``PREFECT_HOME``: database, profiles) under ``<root>/prefect``, its log in ``<root>/logs``;
2. ``python -m flows.deployments`` serving every deployment (``prefect.serve``: a local process
   worker, so flow runs execute on this machine) with the cron schedule and the event trigger;
3. ``python -m flows.drops.watcher`` on ``<root>/drops``, which emits one
   ``landcover.imagery.dropped`` event per sub-folder that gets a ``_DONE`` marker.

Ctrl-C (or SIGTERM) stops them in reverse order with SIGTERM (SIGKILL after a grace period);
if any child dies, the others are stopped too and ``up`` exits non-zero. Children run in their
own sessions, so Ctrl-C reaches only this supervisor, which then stops them in order.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from flows.deployments import DEPLOYMENTS
from flows.drops.events import DROP_MARKER

DEFAULT_ROOT = Path(".work") / "landcover"
DEFAULT_PORT = 4200
# The server has no authentication: it listens on loopback unless told otherwise (--host).
DEFAULT_HOST = "127.0.0.1"
READY_LINE = "landcover is up"


class ChildExitedError(RuntimeError):
    """A supervised process exited on its own."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


def child_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """Environment for the children: isolated Prefect state, no telemetry, quiet libraries."""
    env = dict(os.environ)
    for key in ("PREFECT_API_KEY", "PREFECT_PROFILE"):
        env.pop(key, None)
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            "PYTHONWARNINGS": env.get("PYTHONWARNINGS", "ignore::FutureWarning"),
            # Training progress (the `landcover` logger) in the flow runs' logs and the UI.
            "PREFECT_LOGGING_EXTRA_LOGGERS": env.get("PREFECT_LOGGING_EXTRA_LOGGERS", "landcover"),
        }
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    else:
        env.pop("PREFECT_API_URL", None)
    return env


def prefect_executable() -> str:
    """The ``prefect`` CLI of this environment (beside this interpreter)."""
    candidate = Path(sys.executable).with_name("prefect")
    return str(candidate) if candidate.exists() else "prefect"


def server_command(port: int, host: str = DEFAULT_HOST) -> list[str]:
    """``prefect server start`` on ``host`` (loopback by default: the API has no login)."""
    return [
        prefect_executable(),
        "server",
        "start",
        "--host",
        host,
        "--port",
        str(port),
        "--analytics-off",
    ]


def start_server(
    home: Path, port: int, log: IO[Any], host: str = DEFAULT_HOST
) -> subprocess.Popen[bytes]:
    command = server_command(port, host)
    return subprocess.Popen(
        command, env=child_env(home), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def start_serve(
    root: str, home: Path, api_url: str, log: IO[Any] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.deployments", "--root", root],
        env=child_env(home, api_url),
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
    )


def start_watcher(
    folder: Path, home: Path, api_url: str, log: IO[Any] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.drops.watcher", "--folder", str(folder)],
        env=child_env(home, api_url),
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
    )


def describe(proc: subprocess.Popen[bytes]) -> str:
    args = proc.args if isinstance(proc.args, list | tuple) else [proc.args]
    return f"`{' '.join(map(str, args))}` (exit status {proc.returncode})"


def _get_json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read() or b"null")


def wait_until(
    check: Any, timeout: float, what: str, procs: Sequence[subprocess.Popen[bytes]] = ()
) -> None:
    """Poll ``check()`` until truthy; fail early if a child died, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise ChildExitedError(f"{describe(proc)} exited while waiting for {what}")
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def server_healthy(api_url: str) -> bool:
    return _get_json(f"{api_url}/health") is True


def deployments_ready(api_url: str) -> bool:
    """Every deployment registered, and the drop trigger's automation created."""
    deployments = _get_json(f"{api_url}/deployments/filter", {"limit": 50})
    names = {d["name"] for d in deployments}
    if len(deployments) < len(DEPLOYMENTS) or names != {spec.name for spec in DEPLOYMENTS}:
        return False
    automations = _get_json(f"{api_url}/automations/filter", {"limit": 50})
    expected = sum(len(spec.triggers) for spec in DEPLOYMENTS)
    return len(automations) >= expected


def stop_all(procs: Sequence[subprocess.Popen[bytes]], grace: float = 20.0) -> None:
    """SIGTERM each child (in the order given), wait for it, SIGKILL what does not stop."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover up",
        description="Start the embedded default: a local Prefect server (UI + API), the landcover "
        "deployments served by a local process worker (nightly-inference on cron, imagery-drop "
        "on drop events), and a watcher of the drop folder. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "--root", default=str(DEFAULT_ROOT), help="work folder: data, Prefect state, logs"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="Prefect server port")
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address the Prefect server listens on (default: loopback only; the API has no "
        "authentication, so 0.0.0.0 exposes it to the network)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="start-up timeout, seconds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    root = Path(args.root).resolve()
    home, logs, drops = root / "prefect", root / "logs", root / "drops"
    for folder in (home, logs, drops):
        folder.mkdir(parents=True, exist_ok=True)
    if port_in_use(args.port):
        print(
            f"landcover up: port {args.port} is in use; pick another with --port", file=sys.stderr
        )
        return 2
    api_url = f"http://127.0.0.1:{args.port}/api"
    ui_url = f"http://127.0.0.1:{args.port}"
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    procs: list[subprocess.Popen[bytes]] = []
    server_log = open(logs / "server.log", "ab")  # noqa: SIM115 - closed in finally
    try:
        print(f"starting the Prefect server on {ui_url} (log: {logs / 'server.log'}) …", flush=True)
        if args.host != DEFAULT_HOST:
            print(f"warning: the Prefect API (no login) listens on {args.host}", file=sys.stderr)
        server = start_server(home, args.port, server_log, args.host)
        procs.append(server)
        wait_until(lambda: server_healthy(api_url), args.timeout, "the Prefect server", procs)
        print("serving the deployments …", flush=True)
        procs.append(start_serve(str(root), home, api_url))
        wait_until(lambda: deployments_ready(api_url), args.timeout, "the deployments", procs)
        procs.append(start_watcher(drops, home, api_url))
        print(
            f"\n{READY_LINE}\n"
            f"  Prefect UI:   {ui_url}\n"
            f"  data root:    {root}  (raw/, incoming/, models/, predictions/, reports/)\n"
            f"  drop folder:  {drops}\n"
            f"    put scenes in a new sub-folder, e.g. {drops / 'my-drop'}/, then create the\n"
            f"    empty file {DROP_MARKER} in it. Labeled pairs ({{id}}_sat.jpg +\n"
            f"    {{id}}_mask.png) go to training, unlabeled {{id}}_sat.jpg to inference.\n"
            f"  nightly inference: cron 0 2 * * * (UTC) over {root / 'incoming'}\n"
            f"  stop: Ctrl-C (stops the watcher, the deployments and the server)\n",
            flush=True,
        )
        while True:
            for proc in procs:
                if proc.poll() is not None:
                    raise ChildExitedError(f"{describe(proc)} exited")
            time.sleep(1.0)
    except KeyboardInterrupt:
        stopping = True
        return 0
    except (ChildExitedError, TimeoutError) as error:
        print(f"landcover up: {error}; stopping", file=sys.stderr)
        return 1
    finally:
        print("stopping …" if stopping else "cleaning up …", flush=True)
        stop_all(list(reversed(procs)))
        server_log.close()
        print("stopped.", flush=True)
