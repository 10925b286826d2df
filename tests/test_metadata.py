"""Dagster metadata a person reads (pipelines.metadata): MLflow runs as links to make ui's MLflow."""

from __future__ import annotations

import dagster as dg


def test_mlflow_run_metadata_links_to_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from adt import tracking
    from pipelines.metadata import mlflow_run

    with tracking.run("zero_shot", "zero-shot-matrix") as run:
        pass
    meta = mlflow_run(run.info.run_id)
    assert meta["mlflow_run_id"] == run.info.run_id
    assert isinstance(meta["mlflow_run"], dg.UrlMetadataValue)
    assert meta["mlflow_run"].url == (f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/"
                                      f"{run.info.run_id}")
    assert mlflow_run(None) == {} and mlflow_run("0" * 32) == {"mlflow_run_id": "0" * 32}  # unknown: no link
    assert tracking.metric_name("f3", "demo+groove", "mdb") == "f3.demo_groove.mdb"
