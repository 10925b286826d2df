"""Celery workers for the runs of ``ADT_EXECUTOR=celery`` (dagster-celery's executor), started together on one
machine so that they share that machine's data folder (docs/scale-out.md).

Usage: ``python -m pipelines.celery_workers [--workers 2] [--config deploy/celery.yaml] [--name adt]``

Each worker is ``celery -A dagster_celery.app worker`` with the settings ``dagster-celery worker start -y`` gives it
(broker, result backend and ``config_source`` of the YAML file's ``execution.config``, written by dagster-celery's
own ``get_config_dir`` under ``DAGSTER_HOME``), importing the code location (the file's ``include``), one step at a
time in the worker's own process (``--pool solo``, as Dagster's in-process executor runs a run's steps; Celery's
default prefork pool runs tasks in daemonic processes, which may not start the worker processes of the stages that
use both cores, :mod:`adt.parallel`), named ``<name>-<i>@<host>``. This process holds the data folder's lock
(:mod:`adt.lock`) for as long as the workers run: the steps, its descendants, share it, so two steps of a run on two
workers of this machine do not refuse each other, while ``make demo`` or another set of workers on the same folder
is refused, naming this process.
It prints ``celery workers ready: <names>`` once every worker answers a ping through the broker.

SIGTERM or Ctrl-C stops them: warm shutdown (each worker finishes its running step), then, after
``--stop-timeout`` seconds, SIGKILL to each worker's process group. A worker that dies stops the others (exit
status 1). On Linux the workers get SIGTERM when this process dies (``PR_SET_PDEATHSIG``), so a killed launcher
leaves no worker writing an unlocked folder.

Needs ``DAGSTER_HOME`` with the instance every machine shares (``deploy/dagster.yaml``: PostgreSQL) and the
environment of the runs (``ADT_CELERY_BROKER``, ``ADT_CELERY_BACKEND``, ``ADT_IO_PG_URL``, ``ADT_DATA_DIR``,
``MLFLOW_TRACKING_URI``, ...).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


#: Set in each worker's environment (its name): the steps it runs are not their run's process
#: (``AdtSettings`` records no run process from them, :func:`pipelines.automation.record_run_process`).
CELERY_WORKER_ENV = "ADT_CELERY_WORKER"


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the launcher dies (Linux ``prctl``; elsewhere nothing)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def worker_command(name: str, includes: list[str], loglevel: str) -> list[str]:
    """The command of one worker (module docstring); its name is ``<name>@<host>``."""
    return [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker", "--prefetch-multiplier=1",
            "--pool=solo", "--loglevel", loglevel, "-n", f"{name}@%h",
            *(["-I", ",".join(includes)] if includes else [])]


def start(count: int, config: Path, name: str, loglevel: str) -> tuple[list[subprocess.Popen], list[str], Path]:
    """Start ``count`` workers; returns their processes, names (``<name>-<i>@<host>``) and the folder of their
    generated Celery settings (removed by :func:`stop`).

    Raises:
        RuntimeError: no ``DAGSTER_HOME``, or ``config`` is not a valid executor configuration (dagster-celery's
            validation: e.g. ``ADT_CELERY_BROKER`` unset), named.
    """
    import socket

    from dagster._core.errors import DagsterInvalidConfigError
    from dagster_celery.cli import get_config_dir, get_validated_config

    if not os.environ.get("DAGSTER_HOME"):
        raise RuntimeError("DAGSTER_HOME is not set: the workers need the instance the runs use "
                           "(deploy/dagster.yaml copied to $DAGSTER_HOME/dagster.yaml)")
    try:
        includes = list(get_validated_config(str(config)).get("include") or [])
        config_dir = Path(get_config_dir(str(config)))
    except (DagsterInvalidConfigError, OSError) as exc:
        raise RuntimeError(f"{config}: not a usable Celery executor configuration: {exc}") from None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(config_dir))
                                                        if p)}
    procs, names = [], []
    for i in range(1, count + 1):
        procs.append(subprocess.Popen(worker_command(f"{name}-{i}", includes, loglevel),
                                      env={**env, CELERY_WORKER_ENV: f"{name}-{i}"},
                                      start_new_session=True, preexec_fn=_die_with_parent))
        names.append(f"{name}-{i}@{socket.gethostname()}")
    return procs, names, config_dir


def celery_app(config: Path):
    """The Celery app of ``config`` as the workers and the runs build it (dagster-celery's ``make_app``), with
    its ``env:`` values read (``dagster_celery.cli.get_app`` passes them unread)."""
    from dagster_celery.cli import get_validated_config
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app

    checked = get_validated_config(str(config))
    return make_app(CeleryExecutor.for_cli(**{k: checked.get(k) for k in ("broker", "backend", "include",
                                                                         "config_source")}).app_args())


def wait_ready(config: Path, names: list[str], procs: list[subprocess.Popen], timeout_s: float,
               stopping: list) -> None:
    """Return once every worker of ``names`` answers a ping through the broker.

    Raises:
        RuntimeError: a worker exited, ``stopping`` got a signal, or not all answered within ``timeout_s``
            seconds (those missing named).
    """
    app = celery_app(config)
    deadline, answered = time.monotonic() + timeout_s, set()
    while True:
        if stopping:
            raise RuntimeError(f"stopped by signal {stopping[0]} while the workers started")
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a celery worker exited while starting (status {[p.poll() for p in procs]})")
        answered |= {host for reply in (app.control.ping(timeout=1.0) or []) for host in reply}
        if set(names) <= answered:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"celery workers not answering after {timeout_s:.0f} s: "
                               f"{', '.join(sorted(set(names) - answered))}")
        time.sleep(0.5)


def stop(procs: list[subprocess.Popen], config_dir: Path | None, timeout_s: float) -> None:
    """Warm shutdown (SIGTERM to each worker), then SIGKILL to the process group of any still running after
    ``timeout_s`` seconds; removes the generated settings folder."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # the worker and its pool processes (its own session)
        except ProcessLookupError:
            pass
        p.wait()
    if config_dir is not None:
        shutil.rmtree(config_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    from adt.lock import DataFolderBusy, data_lock
    from pipelines.definitions import CELERY_CONFIG

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="workers on this machine, one step each at a time")
    parser.add_argument("--config", type=Path, default=CELERY_CONFIG,
                        help="the executor's YAML (execution.config), the one the runs use")
    parser.add_argument("--name", default="adt", help="worker name prefix: <name>-<i>@<host>")
    parser.add_argument("--loglevel", default="INFO")
    parser.add_argument("--ready-timeout", type=float, default=180.0, help="seconds for every worker to answer")
    parser.add_argument("--stop-timeout", type=float, default=600.0,
                        help="seconds a stopping worker may take to finish its running step before SIGKILL")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")

    stopping = []

    def on_signal(signum, _frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    procs, config_dir, status = [], None, 0
    try:
        with data_lock(f"celery workers {args.name}-1..{args.workers}"):
            try:
                procs, names, config_dir = start(args.workers, args.config, args.name, args.loglevel)
                wait_ready(args.config, names, procs, args.ready_timeout, stopping)
                print(f"celery workers ready: {', '.join(names)}", flush=True)
                while not stopping:
                    if any(p.poll() is not None for p in procs):
                        print(f"error: a celery worker exited (status {[p.poll() for p in procs]}); stopping "
                              "the others", file=sys.stderr, flush=True)
                        status = 1
                        break
                    time.sleep(0.5)
            finally:  # inside the lock: no step of theirs writes after it is given back
                stop(procs, config_dir, args.stop_timeout)
    except (DataFolderBusy, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
