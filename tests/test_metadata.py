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
                                      f"{run.info.run_id}?workflowType=machine_learning")  # MLflow 3: runs view
    assert mlflow_run(None) == {} and mlflow_run("0" * 32) == {"mlflow_run_id": "0" * 32}  # unknown: no link
    assert tracking.metric_name("f3", "demo+groove", "mdb") == "f3.demo_groove.mdb"


def test_run_description_experiment_kind_and_figure_links(tmp_path, monkeypatch):
    """Every run says what it is (``mlflow.note.content``) and which Dagster run made it; experiments open on
    their runs; a figure is an image served by MLflow's ``/get-artifact`` and a link; floats are rounded."""
    import mlflow

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("ADT_PROFILE", "tiny")
    monkeypatch.setenv("ADT_DAGSTER_RUN_ID", "0123abcd")
    from adt import tracking
    from pipelines.metadata import figure, rounded

    with tracking.run("zero_shot", "zero-shot-matrix") as run:
        pass
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert "zero-shot-matrix" in tags["mlflow.note.content"] and "Profile tiny" in tags["mlflow.note.content"]
    assert tags["dagster.run_id"] == "0123abcd" and tags["dagster.run_url"].endswith("/runs/0123abcd")
    experiment = mlflow.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"] == tracking.EXPERIMENTS["zero_shot"]
    meta = figure("fig3", tmp_path / "fig3.png", run.info.run_id, "Fig. 3")
    assert meta["fig3_url"].url == f"http://127.0.0.1:5000/get-artifact?path=fig3.png&run_uuid={run.info.run_id}"
    assert f"![Fig. 3]({meta['fig3_url'].url})" in meta["fig3"].md_str
    assert rounded({"f": 0.123456789, "xs": [1.0000001, "a"]}) == {"f": 0.1235, "xs": [1.0, "a"]}
