"""Automation: weekly retraining, a sensor that ingests newly placed dataset archives, and one that
fails the runs of dead processes.

* :data:`weekly_retraining` – a schedule running the ``adt_training`` job (transcriber
  + zero_shot_matrix) every Monday at 03:00 UTC. Stopped by default: turn it on in the
  Dagster UI (it needs the dagster-daemon, e.g. ``dagster dev``).
* :data:`new_archive_sensor` – every 60 s, looks at ``<ADT_DATA_DIR>/downloads`` and, when
  ``ADT_DATA_MIRROR`` is a folder, at that folder for archives named as a dataset's
  ``REMOTES`` (``adt.data.datasets.get_module(name).REMOTES``); when a dataset's archives are
  all present and one of them is new or changed, it requests one ``adt_raw_datasets`` run
  for that dataset's partition. Stopped by default too: ingesting a dataset checksums,
  unpacks and builds archives of up to ~100 GB (E-GMD, Slakh), which nobody should get
  by merely starting the daemon; turn it on in the UI to have new archives picked up.

* :data:`dead_run_sensor` – every 60 s, marks failed the runs still ``STARTED`` whose process is gone
  (:func:`fail_dead_runs`). Running by default: a ``kill -9`` (or a crash, a reboot) leaves a run
  ``STARTED`` for good, and with the queue's limit of one ``adt/stage=training`` run every later
  training run (the weekly schedule's too) would wait behind it forever. ``make demo`` runs the same
  check before it starts. On Kubernetes (dagster-k8s's ``K8sRunLauncher``: each run a pod on some node) it skips:
  Dagster's run monitoring watches the run pods there.

Jobs are referenced by name (defined in :mod:`pipelines.definitions`, which imports
this module's lists), so there is no circular import.

Sensor rules, per archive file (name, size, modification time):

* the cursor (JSON ``{"seen": {path: "size:mtime_ns"}}``) holds what was already
  handled; the first evaluation only records the files present (baseline, no runs:
  those are what ``make demo`` ingests) – later, a path that is new or whose size or
  mtime changed is "new";
* a new file still being written (modified less than :data:`SETTLE_S` seconds ago) is
  left for a later tick, unrecorded;
* a new file older than the dataset's raw pointer (``<data>/raw/<name>/current.json``,
  written by ``raw_dataset``) was already ingested (e.g. ``raw_dataset`` downloaded it
  itself): recorded, no run;
* otherwise: ``RunRequest(partition_key=<dataset>, run_key=<file>:<mtime_ns>:<size>)``,
  so each archive version triggers one run (Dagster also drops repeated run keys).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg

TRAINING_JOB = "adt_training"
RAW_JOB = "adt_raw_datasets"
#: A new archive must be unmodified this long (seconds) before it triggers a run.
SETTLE_S = 30.0
#: Seconds between sensor evaluations.
SENSOR_INTERVAL_S = 60

weekly_retraining = dg.ScheduleDefinition(
    name="adt_weekly_retraining",
    job_name=TRAINING_JOB,
    cron_schedule="0 3 * * 1",  # Mondays 03:00
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain the transcriber and recompute the zero-shot matrix every week (adt_training job).",
)


def watched_folders() -> list[Path]:
    """``<ADT_DATA_DIR>/downloads`` and the ``ADT_DATA_MIRROR`` folder (when it is a folder)."""
    from adt.config import data_dir, mirror

    folders = [data_dir() / "downloads"]
    value = mirror()
    if value and not value.startswith(("http://", "https://")) and Path(value).is_dir():
        folders.append(Path(value).resolve())
    return folders


def remote_files() -> dict[str, list[str]]:
    """Dataset name -> the archive file names of its ``REMOTES`` (datasets without any are left out)."""
    from adt.data.datasets import DATASETS, get_module

    out = {}
    for name in DATASETS:
        files = [r.filename for r in get_module(name).REMOTES]
        if files:
            out[name] = files
    return out


def _signature(path: Path) -> tuple[str, float]:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}", st.st_mtime


def evaluate_archives(cursor: str | None, now: float | None = None) -> tuple[list[dg.RunRequest], str, list[str]]:
    """One sensor evaluation (see the module docstring for the rules).

    Args:
        cursor: the previous evaluation's cursor, or None on the first one.
        now: the current time in seconds since the epoch (default ``time.time()``).

    Returns:
        ``(run requests, new cursor, log lines)``.
    """
    from adt.config import data_dir

    now = time.time() if now is None else now
    first = cursor is None
    seen: dict[str, str] = {} if first else json.loads(cursor).get("seen", {})
    folders = watched_folders()
    requests, notes = [], []
    for dataset, files in remote_files().items():
        found = {f: next((d / f for d in folders if (d / f).is_file()), None) for f in files}
        pointer = data_dir() / "raw" / dataset / "current.json"
        ingested_at = pointer.stat().st_mtime if pointer.is_file() else None
        fresh = []
        for path in (p for p in found.values() if p is not None):
            sig, mtime = _signature(path)
            if seen.get(str(path)) == sig:
                continue
            if first:
                seen[str(path)] = sig
            elif now - mtime < SETTLE_S:
                notes.append(f"{path}: modified {now - mtime:.0f} s ago, waiting for it to settle")
            elif ingested_at is not None and mtime <= ingested_at:
                seen[str(path)] = sig
                notes.append(f"{path}: already ingested by raw_dataset[{dataset}]")
            else:
                fresh.append((path, sig))
        if not fresh:
            continue
        missing = [f for f, p in found.items() if p is None]
        if missing:
            notes.append(f"{dataset}: new archive, still waiting for {', '.join(missing)}")
            continue
        for path, sig in fresh:
            seen[str(path)] = sig
        path, sig = fresh[0]
        size, mtime_ns = sig.split(":")
        requests.append(dg.RunRequest(run_key=f"{path.name}:{mtime_ns}:{size}", partition_key=dataset,
                                      tags={"adt/trigger": "new-archive", "adt/archive": path.name}))
        notes.append(f"{dataset}: new archive {path} -> {RAW_JOB} run")
    return requests, json.dumps({"seen": seen}, sort_keys=True), notes


@dg.sensor(name="adt_new_archive_sensor", job_name=RAW_JOB, minimum_interval_seconds=SENSOR_INTERVAL_S,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Runs adt_raw_datasets for a dataset whose archive (named as in its REMOTES) appears "
                       "or changes in data/downloads or the ADT_DATA_MIRROR folder.")
def new_archive_sensor(context: dg.SensorEvaluationContext):
    requests, cursor, notes = evaluate_archives(context.cursor)
    for line in notes:
        context.log.info(line)
    context.update_cursor(cursor)
    if not requests:
        return dg.SkipReason(f"no new dataset archives in {', '.join(str(d) for d in watched_folders())}")
    return requests


#: A run ``STARTED`` this long (seconds) without an event naming its process is judged dead (unless a live
#: process holds the data folder's lock): the event comes a moment after ``STARTED``, before any step.
NO_PID_GRACE_S = 600.0
#: Seconds of slack when a process's start (from the wall clock) is compared with an event's time.
CLOCK_SLACK_S = 60.0
#: Run tags naming the run's process: its pid and :func:`adt.atomic.process_start` (:func:`record_run_process`).
PID_TAG, PROCESS_START_TAG = "adt/pid", "adt/process_start"


def record_run_process(instance: dg.DagsterInstance, run_id: str) -> None:
    """Tag run ``run_id`` with this process's pid and start (:func:`adt.atomic.process_start`), so that
    :func:`fail_dead_runs` tells the run's process from a later one given the same pid. Called by the
    ``AdtSettings`` resource as a run starts (tags, not an event: Dagster has no public engine-event API)."""
    import os

    from adt.atomic import process_start

    start = process_start(os.getpid())
    if start is not None:
        instance.add_run_tags(run_id, {PID_TAG: str(os.getpid()), PROCESS_START_TAG: start})


def _run_process(instance: dg.DagsterInstance, run_id: str) -> tuple[int | None, float | None]:
    """The pid of the run's process and when it was logged: the latest engine event with a ``pid`` (the
    executor's "Executing steps in process (pid: N)") or, for a run on dagster-celery's executor (whose events
    name no pid), the process that logged its latest "Submitting celery task" (the run's orchestrating process;
    the steps run in the workers); or ``(None, None)``."""
    pid = logged = None
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event is not None else None
        if data is not None and "pid" in (data.metadata or {}):
            pid, logged = int(data.metadata["pid"].value), record.event_log_entry.timestamp
        elif event is not None and event.pid and (event.message or "").startswith("Submitting celery task"):
            pid, logged = event.pid, record.event_log_entry.timestamp
    return pid, logged


def dead_run_reason(run: dg.DagsterRun, pid: int | None, logged: float | None, started: float,
                    now: float) -> str | None:
    """Why the ``STARTED`` run ``run`` is dead, or None when it may be alive (:func:`fail_dead_runs`).

    Args:
        pid, logged: the pid its executor logged and when (:func:`_run_process`), or None.
        started: when it started (seconds since the epoch).
    """
    from adt.atomic import process_alive, process_started_at, same_process
    from adt.lock import live_holder

    if pid is None:
        if now - started < NO_PID_GRACE_S or live_holder():
            return None  # still starting, or a live writer of the data folder that may be it
        return (f"no process recorded {(now - started) / 60:.0f} min after it started and no live process holds "
                "the data folder's lock (killed while starting?)")
    if not process_alive(pid):
        return f"its process (pid {pid}) is gone (killed or crashed)"
    start = run.tags.get(PROCESS_START_TAG) if run.tags.get(PID_TAG) == str(pid) else None
    if start is not None:
        return None if same_process(pid, start) else f"pid {pid} is now another process (the run's was killed)"
    began = process_started_at(pid)  # no recorded start (a run from before, another executor): by the clock
    if began is not None and logged is not None and began > logged + CLOCK_SLACK_S:
        return f"pid {pid} is now another process, started after the run logged it (the run's was killed)"
    return None


def fail_dead_runs(instance: dg.DagsterInstance, now: float | None = None) -> list[str]:
    """Mark ``FAILURE`` every run ``STARTED`` whose process has died; returns their run ids.

    A run's process is the pid of its executor (the engine event "Executing steps in process (pid: N)"
    every run of this code location writes) and, when the ``AdtSettings`` resource tagged it
    (:func:`record_run_process`), that process's start (:func:`adt.atomic.process_start`). The instance is
    this machine's (SQLite storage under ``DAGSTER_HOME``). A run is dead (:func:`dead_run_reason`) when:

    * its pid no longer exists;
    * its pid exists but is another process (a reused pid): another start than the tagged one or, without
      a tag, a process started more than :data:`CLOCK_SLACK_S` after the pid was logged;
    * it logged no pid for :data:`NO_PID_GRACE_S` after it started (killed between ``STARTED`` and the
      event) and no live process other than this one holds the data folder's lock (:func:`adt.lock.live_holder`:
      a live writer may be that run, so it is left until the writer ends).

    Args:
        now: the current time in seconds since the epoch (default ``time.time()``).
    """
    now = time.time() if now is None else now
    failed = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        run = record.dagster_run
        pid, logged = _run_process(instance, run.run_id)
        started = record.start_time or record.create_timestamp.timestamp()
        reason = dead_run_reason(run, pid, logged, started, now)
        if reason is None:
            continue
        instance.report_run_failed(run, f"{reason}; marked failed so that queued runs can start")
        failed.append(run.run_id)
    return failed


@dg.sensor(name="adt_dead_run_sensor", minimum_interval_seconds=SENSOR_INTERVAL_S,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Marks failed the runs still STARTED whose process died (kill -9, crash), so that "
                       "queued training runs can start.")
def dead_run_sensor(context: dg.SensorEvaluationContext):
    if type(context.instance.run_launcher).__name__ == "K8sRunLauncher":  # deploy/k8s/: runs in pods elsewhere
        return dg.SkipReason("runs are Kubernetes Jobs: Dagster's run monitoring fails those whose pod died "
                             "(deploy/k8s/config/instance.yaml); their pids are not this pod's to judge")
    failed = fail_dead_runs(context.instance)
    return dg.SkipReason(f"marked failed: {', '.join(failed)}" if failed else "no run of a dead process")


SCHEDULES = [weekly_retraining]
SENSORS = [new_archive_sensor, dead_run_sensor]

