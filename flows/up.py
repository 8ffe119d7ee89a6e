"""``landcover up``: the embedded default, for a person on one machine.

Three child processes, supervised by this one:

1. ``prefect server start`` (API, UI, scheduler, automations) on ``--host``/``--port``, its
   state (``PREFECT_HOME``: database, profiles) under ``<root>/prefect``, its log in
   ``<root>/logs``; the UI is told where that API is (``PREFECT_UI_API_URL``), so it works on
   any port;
2. ``python -m flows.deployments`` serving every deployment (``prefect.serve``: a local process
   worker, so flow runs execute on this machine) with the cron schedule and the event trigger;
   ``--train-preset`` and ``--train KEY=VALUE`` size the training a labelled drop starts;
3. ``python -m flows.drops.watcher`` on ``<root>/drops``, which emits one
   ``landcover.imagery.dropped`` event per sub-folder that gets a ``_DONE`` marker.

The Prefect API has no login of its own. ``up`` listens on loopback by default; any other
address (``--host 0.0.0.0``, a LAN address, a host name) is refused unless ``--allow-remote``
is given, and then the risk is printed: without ``PREFECT_API_AUTH_STRING`` anyone who reaches
the port can start, cancel and read every flow run; with it, the password still crosses the
network in clear unless TLS is put in front (docs/deployment.md).

"landcover is up" is printed once every deployment is registered, resumed (a previous ``up``
that stopped left them paused) and polled by the serving process, and the drop trigger exists.
SIGINT (Ctrl-C) and SIGTERM both stop everything, also when ``up`` was started from a script
(whose background jobs inherit SIGINT ignored): the children, in reverse order, with SIGTERM
to their process groups, SIGKILL after a grace period, and SIGKILL for any process they
started in a session of its own (flow runs). If any child dies, the others are stopped too and
``up`` exits non-zero. Children run in their own sessions, so Ctrl-C in a terminal reaches only
this supervisor, which then stops them in order.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from flows.deployments import DEPLOYMENTS, NIGHTLY_CRON, TIMEZONE
from flows.drops.events import DROP_MARKER

DEFAULT_ROOT = Path(".work") / "landcover"
DEFAULT_PORT = 4200
# The server has no authentication: it listens on loopback unless told otherwise (--host).
DEFAULT_HOST = "127.0.0.1"
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
# ``user:password``: Prefect's basic auth. Given to ``up``, the server requires it (as
# PREFECT_SERVER_API_AUTH_STRING) and every child and ``up`` itself sends it.
AUTH_ENV = "PREFECT_API_AUTH_STRING"
SERVER_AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"
READY_LINE = "landcover is up"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class ChildExitedError(RuntimeError):
    """A supervised process exited on its own."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``localhost``, 127.0.0.0/8, ::1)."""
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name (other than localhost) or a wildcard may reach the network


def remote_risk(host: str, port: int, authenticated: bool) -> str:
    """What exposing the API on ``host`` means, printed when ``--allow-remote`` is given."""
    where = f"{_url_host(host) or '*'}:{port}"
    if not authenticated:
        return (
            f"warning: the Prefect API on {where} has no login: anyone who can reach it can "
            "start, cancel and delete flow runs (training, inference, drop unpacking, with any "
            "parameters), read their logs and parameters, and change deployments. Set "
            f"{AUTH_ENV}=user:password before `landcover up` (the server then requires it as "
            f"{SERVER_AUTH_ENV}) and put TLS in front of the port (docs/deployment.md)."
        )
    return (
        f"warning: the Prefect API on {where} requires {AUTH_ENV}'s login, sent as HTTP basic "
        "auth: without TLS in front of the port, the password crosses the network in clear "
        "(docs/deployment.md)."
    )


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


def connect_host(host: str) -> str:
    """Where this machine's clients reach a server bound to ``host`` (loopback for a wildcard)."""
    return "127.0.0.1" if host in WILDCARD_HOSTS else host


def browser_host(host: str) -> str:
    """Where a browser reaches a server bound to ``host``: for a wildcard, this machine's name
    (a browser elsewhere cannot use 127.0.0.1, nor any browser 0.0.0.0)."""
    return socket.gethostname() if host in WILDCARD_HOSTS else host


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def api_url(host: str, port: int) -> str:
    """The API for the children on this machine."""
    return f"http://{_url_host(connect_host(host))}:{port}/api"


def ui_api_url(host: str, port: int) -> str:
    """The API as the UI (in a browser) calls it: same host and port as the page."""
    return f"http://{_url_host(browser_host(host))}:{port}/api"


def child_env(home: Path, api: str | None = None) -> dict[str, str]:
    """Environment for the children: isolated Prefect state, no telemetry, quiet libraries."""
    env = dict(os.environ)
    for key in ("PREFECT_API_KEY", "PREFECT_PROFILE", "PREFECT_UI_API_URL"):
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
    if api:
        env["PREFECT_API_URL"] = api
    else:
        env.pop("PREFECT_API_URL", None)
    return env


def server_env(home: Path, host: str, port: int) -> dict[str, str]:
    """The server's environment: its host and port, and the API URL its UI must call.

    Without ``PREFECT_UI_API_URL`` Prefect derives the UI's API from its settings, not from
    ``--port``, so a server on 4300 served a UI that called 4200.
    """
    env = child_env(home)
    env.update(
        {
            "PREFECT_SERVER_API_HOST": host,
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_UI_API_URL": ui_api_url(host, port),
        }
    )
    if env.get(AUTH_ENV) and not env.get(SERVER_AUTH_ENV):
        env[SERVER_AUTH_ENV] = env[AUTH_ENV]
    return env


def auth_headers() -> dict[str, str]:
    """The basic-auth header for ``up``'s own API calls, when an auth string is set."""
    auth = os.environ.get(AUTH_ENV) or os.environ.get(SERVER_AUTH_ENV)
    if not auth:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


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
    return subprocess.Popen(
        server_command(port, host),
        env=server_env(home, host, port),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def serve_command(root: str, training: dict[str, Any] | None = None) -> list[str]:
    command = [sys.executable, "-m", "flows.deployments", "--root", root]
    if training:
        command += ["--training", json.dumps(training, sort_keys=True)]
    return command


def start_serve(
    root: str,
    home: Path,
    api: str,
    log: IO[Any] | None = None,
    training: dict[str, Any] | None = None,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        serve_command(root, training),
        env=child_env(home, api),
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
    )


def start_watcher(
    folder: Path, home: Path, api: str, log: IO[Any] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.drops.watcher", "--folder", str(folder)],
        env=child_env(home, api),
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
    )


def describe(proc: subprocess.Popen[bytes]) -> str:
    args = proc.args if isinstance(proc.args, list | tuple) else [proc.args]
    return f"`{' '.join(map(str, args))}` (exit status {proc.returncode})"


def _get_json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **auth_headers()}
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read() or b"null")


def wait_until(
    check: Callable[[], Any],
    timeout: float,
    what: str,
    procs: Sequence[subprocess.Popen[bytes]] = (),
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


def server_healthy(api: str) -> bool:
    return _get_json(f"{api}/health") is True


def deployments_not_ready(
    deployments: Sequence[dict[str, Any]], automations: Sequence[dict[str, Any]]
) -> list[str]:
    """What is still missing before the deployments can run (empty: ready).

    Every deployment must be registered, not paused (a stopped ``serve`` pauses them; the new
    one resumes them a moment after registering), and READY (polled by the serving process);
    the nightly schedule must be active and the drop trigger's automation present.
    """
    found = {(d.get("name"), d.get("entrypoint", "").rsplit(".", 1)[-1]): d for d in deployments}
    missing = []
    for spec in DEPLOYMENTS:
        entrypoint = spec.function
        deployment = found.get((spec.name, entrypoint))
        label = f"{spec.function} ({spec.name})"
        if deployment is None:
            missing.append(f"{label}: not registered")
            continue
        if deployment.get("paused"):
            missing.append(f"{label}: paused")
        if deployment.get("status") != "READY":
            missing.append(f"{label}: status {deployment.get('status')}")
        if spec.cron and not any(
            s.get("active") and (s.get("schedule") or {}).get("cron") == spec.cron
            for s in deployment.get("schedules") or []
        ):
            missing.append(f"{label}: schedule {spec.cron} not active")
    triggers = {t["name"] for spec in DEPLOYMENTS for t in spec.triggers}
    present = {a.get("name") for a in automations if a.get("enabled", True)}
    missing += [f"automation {name}: not created" for name in sorted(triggers - present)]
    return missing


def deployments_ready(api: str) -> bool:
    deployments = _get_json(f"{api}/deployments/filter", {"limit": 200})
    automations = _get_json(f"{api}/automations/filter", {"limit": 200})
    return not deployments_not_ready(deployments, automations)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (from ``/proc``; none where there is no ``/proc``)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop_all(procs: Sequence[subprocess.Popen[bytes]], grace: float = 20.0) -> None:
    """SIGTERM each child's process group (in the order given), wait, SIGKILL what does not
    stop; then SIGKILL whatever they started that is still alive (e.g. flow runs that a
    serving process started in sessions of their own)."""
    left: list[int] = []
    for proc in procs:
        if proc.poll() is not None:
            continue
        below = descendants(proc.pid)  # before it stops: orphans are re-parented
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        left += below
    for pid in left:
        _kill(pid, signal.SIGKILL)


def training_overrides(
    preset: str | None, pairs: Sequence[str], minutes: float | None = None
) -> dict[str, Any]:
    """The training drop-triggered retraining runs with, checked now (a typo must fail at
    start-up, not when the first labelled drop arrives hours later). ``minutes`` is the
    trainer's ``max_minutes`` budget for each architecture the flow trains."""
    from flows.options import train_config, with_preset
    from models.registry import ARCHITECTURES
    from pipelines.core.options import parse_assignments

    training = parse_assignments(pairs, flag="--train")
    if preset is not None:
        training["preset"] = preset
    if minutes is not None:
        training["max_minutes"] = minutes
    for arch in ARCHITECTURES:  # each architecture the train flow trains must accept them
        train_config(with_preset(training), data="records", output="model", arch=arch)
    return training


def _parser() -> argparse.ArgumentParser:
    from models.train.config import PRESETS

    parser = argparse.ArgumentParser(
        prog="landcover up",
        description="Start the embedded default: a local Prefect server (UI + API), the landcover "
        "deployments served by a local process worker (nightly-inference on cron, imagery-drop "
        "on drop events), and a watcher of the drop folder. Ctrl-C (or SIGTERM) stops "
        "everything.",
    )
    parser.add_argument(
        "--root", default=str(DEFAULT_ROOT), help="work folder: data, Prefect state, logs"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="Prefect server port")
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address the Prefect server listens on (default: loopback only; the API has no "
        "authentication, so any other address needs --allow-remote)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host beyond loopback (e.g. 0.0.0.0): the risk is printed; set "
        f"{AUTH_ENV}=user:password to require a login",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="start-up timeout, seconds")
    training = parser.add_argument_group(
        "training started by a labelled drop (and by a train run started from the UI)"
    )
    training.add_argument(
        "--train-preset",
        choices=tuple(PRESETS),
        default=None,
        help="the settings of `landcover train --preset` (cpu: small crops and widths, minutes "
        "on a laptop; gpu: full width, mixed precision)",
    )
    training.add_argument(
        "--train",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a TrainConfig field over the preset, e.g. --train epochs=3 --train "
        "steps_per_epoch=20 (repeatable; checked at start-up)",
    )
    training.add_argument(
        "--train-minutes",
        type=float,
        default=None,
        metavar="N",
        help="a training budget per architecture: each retrain plans its schedule for the "
        "steps that fit in N minutes and keeps its best epoch (`landcover train --max-minutes`)",
    )
    return parser


def ready_text(
    ui: str, root: Path, drops: Path, training: dict[str, Any], host: str, port: int
) -> str:
    sized = ", ".join(f"{k}={v}" for k, v in sorted(training.items())) or (
        "the train flow's defaults (--train-preset cpu for a laptop)"
    )
    return (
        f"\n{READY_LINE}\n"
        f"  Prefect UI:   {ui}   (API {ui_api_url(host, port)})\n"
        f"  data root:    {root}  (raw/, incoming/, models/, predictions/, reports/)\n"
        f"  drop folder:  {drops}\n"
        f"    put scenes in a new sub-folder, e.g. {drops / 'my-drop'}/, then create the\n"
        f"    empty file {DROP_MARKER} in it. Labeled pairs ({{id}}_sat.jpg +\n"
        f"    {{id}}_mask.png) go to training, unlabeled {{id}}_sat.jpg to inference.\n"
        f"  retraining:   {sized}\n"
        f"  nightly inference: cron {NIGHTLY_CRON} ({TIMEZONE}) over {root / 'incoming'}\n"
        f"  stop: Ctrl-C or SIGTERM (stops the watcher, the deployments and the server)\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not is_loopback(args.host) and not args.allow_remote:
        parser.error(
            f"--host {args.host} exposes the Prefect API beyond this machine, and it has no "
            "login: add --allow-remote to do it anyway (and set "
            f"{AUTH_ENV}=user:password to require one)"
        )
    try:
        training = training_overrides(args.train_preset, args.train, args.train_minutes)
    except (ValueError, TypeError) as error:
        parser.error(f"training options: {error}")
    root = Path(args.root).resolve()
    home, logs, drops = root / "prefect", root / "logs", root / "drops"
    for folder in (home, logs, drops):
        folder.mkdir(parents=True, exist_ok=True)
    if port_in_use(args.port, connect_host(args.host)):
        print(
            f"landcover up: port {args.port} is in use; pick another with --port", file=sys.stderr
        )
        return 2
    api = api_url(args.host, args.port)
    ui = ui_api_url(args.host, args.port).removesuffix("/api")
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        # Installed for SIGINT too: a script's background job starts with SIGINT ignored.
        nonlocal stopping
        if stopping:
            return  # already stopping: a second Ctrl-C must not cut the clean-up short
        stopping = True
        raise KeyboardInterrupt

    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)
    procs: list[subprocess.Popen[bytes]] = []
    server_log = open(logs / "server.log", "ab")  # noqa: SIM115 - closed in finally
    try:
        print(f"starting the Prefect server on {ui} (log: {logs / 'server.log'}) …", flush=True)
        if not is_loopback(args.host):
            print(remote_risk(args.host, args.port, bool(auth_headers())), file=sys.stderr)
        server = start_server(home, args.port, server_log, args.host)
        procs.append(server)
        wait_until(lambda: server_healthy(api), args.timeout, "the Prefect server", procs)
        print("serving the deployments …", flush=True)
        procs.append(start_serve(str(root), home, api, training=training))
        wait_until(
            lambda: deployments_ready(api), args.timeout, "the deployments (ready, resumed)", procs
        )
        procs.append(start_watcher(drops, home, api))
        print(ready_text(ui, root, drops, training, args.host, args.port), flush=True)
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
        stopping = True
        for sig in STOP_SIGNALS:  # from here on a signal changes nothing: clean up first
            signal.signal(sig, signal.SIG_IGN)
        print("stopping …", flush=True)
        stop_all(list(reversed(procs)))
        server_log.close()
        print("stopped.", flush=True)
