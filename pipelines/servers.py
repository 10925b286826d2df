"""The two UIs of ``make ui`` as child processes, for the browser tests and ``scripts/ui_screenshots.py``:
``dagster dev`` (webserver, daemon and code server of the ``pipelines`` code location) and ``mlflow server``
(one worker), on 127.0.0.1, each in its own process group, stopped with everything they started."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

#: Seconds to wait for a UI to answer (``dagster dev`` loads the code location in a server of its own).
START_TIMEOUT_S = 420


@contextlib.contextmanager
def serve(dagster_home: Path, mlflow_uri: str, dagster_port: int, mlflow_port: int, logs: Path) -> Iterator[dict]:
    """Start both UIs over ``dagster_home`` (its instance) and ``mlflow_uri`` (the tracking store); yields
    ``{"dagster": url, "mlflow": url}`` once both answer, and stops them (SIGINT, then SIGKILL after 30 s).

    Raises:
        TimeoutError: a UI did not answer within :data:`START_TIMEOUT_S` (its log is in ``logs``).
    """
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env.pop("DAGSTER_MODULE_NAME", None)  # set by the Makefile: with -m as well, dagster dev never comes up
    venv = Path(shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster").parent
    logs.mkdir(parents=True, exist_ok=True)
    urls = {"dagster": f"http://127.0.0.1:{dagster_port}", "mlflow": f"http://127.0.0.1:{mlflow_port}"}
    servers = [subprocess.Popen([str(venv / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
                                 "--workers", "1", "--backend-store-uri", mlflow_uri],
                                env=env, stdout=open(logs / "mlflow.log", "w"), stderr=subprocess.STDOUT,
                                start_new_session=True),
               subprocess.Popen([str(venv / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(dagster_port),
                                 "-m", "pipelines"], env=env, cwd=Path(__file__).resolve().parents[1],
                                stdout=open(logs / "dagster.log", "w"), stderr=subprocess.STDOUT,
                                start_new_session=True)]
    try:
        for url in (f"{urls['mlflow']}/health", f"{urls['dagster']}/server_info"):
            deadline = time.time() + START_TIMEOUT_S
            while True:
                try:
                    urllib.request.urlopen(url, timeout=5)
                    break
                except OSError:
                    if time.time() > deadline:
                        raise TimeoutError(f"{url} did not answer in {START_TIMEOUT_S} s (logs in {logs})") from None
                    time.sleep(1)
        yield urls
    finally:
        for server in servers:  # each in its own process group: the servers and their workers
            os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)


#: Chromium's flags for this machine's closed network (no background connections) as root in a container.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
