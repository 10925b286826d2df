"""A cold ``make demo`` on the Celery executor (two workers on this machine) against the in-process executor:
wall time of each run and what each step of the downstream job costs around its own work.

Usage: .venv/bin/python benchmarks/bench_celery.py [--profile tiny] [--executors celery in_process] [--workers 2]
[--store]

One PostgreSQL (:mod:`adt.postgres`) and one Redis (:mod:`adt.broker`) for the whole benchmark; per executor a
fresh data folder (benchmarks/out/celery-<executor>-data) and fresh databases, so both runs use the same stores:
Dagster's run and event storage (deploy/dagster.yaml), the asset values (ADT_IO_PG_URL) and MLflow in PostgreSQL.
Only the executor differs: ``python -m pipelines.materialize`` with ``ADT_EXECUTOR=in_process``, or with
``ADT_EXECUTOR=celery`` and ``python -m pipelines.celery_workers --workers N`` running beside it. The figures come
from each instance's event log (the downstream job, ``adt_downstream``):

* run wall: RUN_START to RUN_SUCCESS; steps: the sum of STEP_START to STEP_SUCCESS;
* with ``--store``: the Celery run's MLflow is a tracking server with proxied artifacts (:func:`adt.tracking.server`)
  holding the data folder's store (``ADT_DATA_STORE=mlflow-artifacts:/adt-data``, :mod:`adt.data_store`): each
  step pulls and pushes through it; its "pull" and "push" columns are the seconds the steps logged for them;
* per step, Celery: from ready (its last upstream step's STEP_SUCCESS) to submitted (the executor's "Submitting
  celery task": it polls its tasks' results once a second) and from submitted to STEP_START (the broker, waiting
  for a free worker, the worker's execution plan and resources); in process: the previous step's end to its
  STEP_START (loading its inputs, the resources).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
#: A step's log line of :mod:`adt.data_store` ("data store: pulled 3 files, 0.1 MiB in 0.2 s from ...").
STORE_LINE = re.compile(r"data store: (?P<way>pulled|pushed) \d+ files, [\d.]+ MiB in (?P<seconds>[\d.]+) s")


def environment(executor: str, profile: str, pg: str, redis: str, mlflow_uri: str | None = None) -> dict:
    """The environment of one executor's runs (and workers): its own data folder and databases (``mlflow_uri``: a
    tracking server, which then holds the data folder's store too)."""
    from adt import postgres

    data = OUT / f"celery-{executor}-data"
    shutil.rmtree(data, ignore_errors=True)
    home = data / "dagster"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    dagster_db = postgres.create_database(pg, f"dagster_{executor}")
    return {**os.environ, "PYTHONPATH": str(ROOT), "ADT_PROFILE": profile, "ADT_DATA_DIR": str(data),
            "DAGSTER_HOME": str(home), "ADT_DAGSTER_PG_URL": dagster_db, "ADT_IO_PG_URL": dagster_db,
            "MLFLOW_TRACKING_URI": mlflow_uri or postgres.create_database(pg, f"mlflow_{executor}"),
            **({"ADT_DATA_STORE": "mlflow-artifacts:/adt-data"} if mlflow_uri else {}), "ADT_EXECUTOR": executor,
            "ADT_CELERY_BROKER": redis, "ADT_CELERY_BACKEND": redis[:-1] + "1", "OMP_WAIT_POLICY": "PASSIVE",
            "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def start_workers(env: dict, count: int, log: Path) -> subprocess.Popen:
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "pipelines.celery_workers", "--workers", str(count)],
                                cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while "celery workers ready" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"workers did not start: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    return proc


def stop_workers(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=700)


def step_table(env: dict, job: str = "adt_downstream") -> tuple[dict, list[dict]]:
    """The last run of ``job`` in the instance of ``env``: ``({wall, steps, count}, [per step])`` (module
    docstring); a step's ``ready`` is the end of the last of its upstream stages in the run (its checks: unknown)."""
    import dagster as dg

    from adt.stages import BY_NAME, upstream

    os.environ["ADT_DAGSTER_PG_URL"] = env["ADT_DAGSTER_PG_URL"]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        run = instance.get_runs(filters=dg.RunsFilter(job_name=job), limit=1)[0]
        records = [r.event_log_entry for r in instance.get_records_for_run(run.run_id).records]
    steps: dict[str, dict] = {}
    run_start = run_end = previous_end = None
    for entry in records:
        moved = STORE_LINE.search(entry.user_message or "") if entry.step_key else None
        if moved:
            steps.setdefault(entry.step_key, {})[moved["way"]] = float(moved["seconds"])
        event = entry.dagster_event
        kind, t, key = (event.event_type, entry.timestamp, event.step_key) if event else (None, 0, None)
        if kind == dg.DagsterEventType.RUN_START:
            run_start = previous_end = t
        elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
            run_end = t
        elif key and kind == dg.DagsterEventType.ENGINE_EVENT and (event.message or "").startswith(
                "Submitting celery task"):
            steps.setdefault(key, {})["submitted"] = t
        elif key and kind == dg.DagsterEventType.STEP_START:
            steps.setdefault(key, {}).update(start=t, after_previous=t - previous_end)
        elif key and kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            steps.setdefault(key, {}).update(end=t, ok=kind == dg.DagsterEventType.STEP_SUCCESS)
            previous_end = t
    for key, step in steps.items():
        if key in BY_NAME:
            ends = [steps[u]["end"] for u in upstream(BY_NAME[key]) if u in steps and "end" in steps[u]]
            step["ready"] = max(ends) if ends else run_start
    total = sum(s["end"] - s["start"] for s in steps.values() if "end" in s and "start" in s)
    return {"wall": (run_end or 0) - (run_start or 0), "steps": total, "count": len(steps)}, [
        {"step": k, **v} for k, v in sorted(steps.items(), key=lambda kv: kv[1].get("start", 0))]


def measure(executor: str, args, pg: str, redis: str, mlflow_uri: str | None = None) -> tuple[float, dict, list[dict]]:
    env = environment(executor, args.profile, pg, redis, mlflow_uri if executor == "celery" else None)
    workers = start_workers(env, args.workers, OUT / f"celery-{executor}-workers.log") if executor == "celery" else None
    try:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pipelines.materialize", "--profile", args.profile], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wall = time.perf_counter() - start
        (OUT / f"celery-{executor}-demo.log").write_text(done.stdout)
        if done.returncode:
            raise RuntimeError(f"make demo on {executor} failed: {done.stdout[-3000:]}")
    finally:
        if workers is not None:
            stop_workers(workers)
    summary, steps = step_table(env)
    (OUT / f"celery-{executor}-steps.json").write_text(json.dumps({"wall": wall, "summary": summary, "steps": steps},
                                                                   indent=1))
    return wall, summary, steps


def report(results: dict) -> None:
    for executor, (wall, summary, steps) in results.items():
        print(f"\n{executor}: cold make demo {wall:.1f} s; adt_downstream run {summary['wall']:.1f} s, "
              f"{summary['count']} steps, their own time {summary['steps']:.1f} s")
    print("\n| step | in process s | before it s | celery s | ready -> submitted s | submitted -> started s | pull s "
          "| push s |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
    local = {s["step"]: s for s in results.get("in_process", (0, 0, []))[2]}
    remote = {s["step"]: s for s in results.get("celery", (0, 0, []))[2]}

    def cell(value) -> str:
        return "-" if value is None else f"{value:.2f}"

    for name in dict.fromkeys([*local, *remote]):
        a, b = local.get(name, {}), remote.get(name, {})
        own = [x["end"] - x["start"] if "end" in x and "start" in x else None for x in (a, b)]
        submit = b["submitted"] - b["ready"] if "submitted" in b and "ready" in b else None
        pickup = b["start"] - b["submitted"] if "submitted" in b and "start" in b else None
        print(f"| {name} | {cell(own[0])} | {cell(a.get('after_previous'))} | {cell(own[1])} | {cell(submit)} | "
              f"{cell(pickup)} | {cell(b.get('pulled'))} | {cell(b.get('pushed'))} |")


def main() -> None:
    from adt import broker, postgres

    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--executors", nargs="+", default=["celery", "in_process"], choices=("celery", "in_process"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--store", action="store_true", help="the Celery run's files through ADT_DATA_STORE on an "
                                                             "MLflow tracking server")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    with postgres.server() as pg, broker.server() as redis, contextlib.ExitStack() as stack:
        mlflow_uri = None
        if args.store:
            from adt import tracking

            shutil.rmtree(OUT / "celery-store-artifacts", ignore_errors=True)
            mlflow_uri, _ = stack.enter_context(tracking.server(postgres.create_database(pg, "mlflow_store"),
                                                                OUT / "celery-store-artifacts"))
        for executor in args.executors:
            results[executor] = measure(executor, args, pg, redis, mlflow_uri)
            print(f"{executor}: done in {results[executor][0]:.1f} s", flush=True)
    print(f"profile {args.profile}, {args.workers} celery workers, {os.cpu_count()} cores, load average now "
          f"{os.getloadavg()[0]:.1f}")
    report(results)


if __name__ == "__main__":
    main()
