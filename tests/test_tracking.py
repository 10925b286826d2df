"""MLflow provenance and crash cleanup (adt.tracking): a run whose process was killed is closed as FAILED,
with its nested runs, by the next process; a live run is left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


@pytest.mark.faults
def test_runs_of_a_killed_process_are_closed_as_failed(store, monkeypatch):
    import mlflow

    from adt import tracking

    script = textwrap.dedent("""
        import os, mlflow
        from adt import tracking
        with tracking.run("transcriber", "sweep[demo]") as parent:
            with mlflow.start_run(run_name="trial-0", nested=True):
                print(parent.info.run_id, flush=True)
                os.kill(os.getpid(), 9)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ, timeout=300)
    assert done.returncode == -9
    parent_id = done.stdout.split()[0]
    tracking.setup()
    client = mlflow.MlflowClient()
    assert client.get_run(parent_id).info.status == "RUNNING"  # what a kill -9 leaves
    children = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")
    monkeypatch.setattr(tracking, "_closed_dead_runs", False)  # as in a new process
    with tracking.run("transcriber", "alive") as alive:  # the process's first experiment() closes them
        assert tracking.close_dead_runs() == []  # nothing left; this process's own run is alive
    for run_id in [parent_id, children[0].info.run_id]:
        r = client.get_run(run_id)
        assert r.info.status == "FAILED" and r.data.tags["adt.closed"] == "its process died"
    assert client.get_run(alive.info.run_id).info.status == "FINISHED"
