"""Dagster metadata a person reads (pipelines.metadata): MLflow runs and models as links to make ui's MLflow,
figures sized to the page, tables as Dagster tables (issue 31)."""

from __future__ import annotations


def test_mlflow_run_metadata_links_to_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from adt import tracking
    from pipelines.metadata import mlflow_run

    with tracking.run("zero_shot", "zero-shot-matrix") as run:
        pass
    meta = mlflow_run(run.info.run_id)
    assert list(meta) == ["mlflow_run"]  # the link, whose URL holds the id: no raw id row beside it
    url = (f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
           "?workflowType=machine_learning")  # MLflow 3: the runs view
    # a short link text: a URL value shows its whole address, which widened the metadata table past the page
    assert meta["mlflow_run"].md_str == f"[MLflow run {run.info.run_id[:8]}]({url})"
    assert mlflow_run(None) == {} and mlflow_run("0" * 32) == {}  # unknown to this store: no link
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
    from pipelines.metadata import FIGURE_WIDTH, figure, rounded

    with tracking.run("zero_shot", "zero-shot-matrix") as run:
        pass
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert "zero-shot-matrix" in tags["mlflow.note.content"] and "Profile tiny" in tags["mlflow.note.content"]
    assert tags["dagster.run_id"] == "0123abcd" and tags["dagster.run_url"].endswith("/runs/0123abcd")
    assert f"[0123abcd]({tags['dagster.run_url']})" in tags["mlflow.note.content"]  # a link in the description
    experiment = mlflow.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"] == tracking.EXPERIMENTS["zero_shot"]
    wide, narrow = tmp_path / "fig3.png", tmp_path / "heatmap.png"
    _png(wide, 1500, 600)
    _png(narrow, 500, 400)
    client = mlflow.MlflowClient()
    for path in (wide, narrow):
        client.log_artifact(run.info.run_id, str(path))
    base = f"http://127.0.0.1:5000/get-artifact?path={{}}&run_uuid={run.info.run_id}"
    meta = figure("fig3", wide, run.info.run_id, "Fig. 3")
    assert list(meta) == ["fig3"]  # one entry: no raw _url or _path rows beside the image
    text = meta["fig3"].md_str
    assert f"![Fig. 3]({base.format('fig3.preview.png')})" in text and f"({base.format('fig3.png')})" in text
    assert len(text) < 1000  # Dagster shows Markdown under 1,000 characters inline, longer behind a button
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert logged == {"fig3.png", "fig3.preview.png", "heatmap.png"}
    assert figure("fig3", wide, run.info.run_id, "Fig. 3") == meta  # a re-materialization reuses the preview
    from PIL import Image

    with Image.open(client.download_artifacts(run.info.run_id, "fig3.preview.png", str(tmp_path))) as small:
        assert small.size == (FIGURE_WIDTH, round(600 * FIGURE_WIDTH / 1500))
    assert f"![Map]({base.format('heatmap.png')})" in figure("map", narrow, run.info.run_id, "Map")["map"].md_str
    assert rounded({"f": 0.123456789, "xs": [1.0000001, "a"]}) == {"f": 0.1235, "xs": [1.0, "a"]}


def _png(path, width: int, height: int) -> None:
    from PIL import Image

    Image.new("RGB", (width, height), "white").save(path)


def test_markdown_and_dicts_become_dagster_tables():
    import pandas as pd

    from pipelines.metadata import mapping_table, markdown_tables, table_entries

    markdown = ("**Table 2** (test SDR, dB)\n\n| procedure | drums | bass |\n|:---|---:|---:|\n"
                "| independent | 5.12 | - |\n| interleaved | 6.3 | 1.5 |\n\n`*` heard the real songs")
    meta = markdown_tables("table_2", markdown)
    assert set(meta) == {"table_2", "table_2_note"}
    table = meta["table_2"]
    assert [c.name for c in table.schema.columns] == ["procedure", "drums", "bass"]
    assert [c.type for c in table.schema.columns] == ["string", "float", "float"]
    assert [r.data for r in table.records] == [{"procedure": "independent", "drums": 5.12, "bass": None},
                                              {"procedure": "interleaved", "drums": 6.3, "bass": 1.5}]
    assert meta["table_2_note"].md_str == "**Table 2** (test SDR, dB)\n\n`*` heard the real songs"
    two = markdown_tables("t", "| a |\n|---|\n| x |\n\n| b |\n|---|\n| 2 |")
    assert set(two) == {"t", "t_2"} and two["t_2"].records[0].data == {"b": 2}
    flat = mapping_table("params", {"lr": 0.00123456, "layers": 3, "cell": "gru"}, key="parameter")["params"]
    assert [r.data for r in flat.records] == [{"parameter": "lr", "value": "0.0012"},  # mixed kinds: text
                                             {"parameter": "layers", "value": "3"},
                                             {"parameter": "cell", "value": "gru"}]
    assert mapping_table("m", {"a": 0.5, "b": 2.0})["m"].records[1].data == {"name": "b", "value": 2.0}
    nested = mapping_table("ppl", {"k5": {"test": 1.41234567, "val": 1.5}, "k3": {"test": 1.3, "val": 1.2}},
                           key="lm")["ppl"]
    assert [r.data for r in nested.records] == [{"lm": "k5", "test": 1.4123, "val": 1.5},
                                               {"lm": "k3", "test": 1.3, "val": 1.2}]
    # wider than the metadata column (Dagster never wraps headers): split in parts, each with the first column
    wide = pd.DataFrame({"method": ["CRNN (tatum level)", "+ GRU"],
                         **{f"{d} {s} F": [0.7, 0.8] for d in ("demo", "groove", "mdb") for s in ("madmom", "gt")}})
    parts = table_entries("table_ii", wide)
    assert list(parts) == ["table_ii", "table_ii (2/2)"]
    columns = [[c.name for c in parts[k].schema.columns] for k in parts]
    assert all(c[0] == "method" for c in columns) and sum(len(c) - 1 for c in columns) == 6
    assert list(table_entries("narrow", wide.iloc[:, :3])) == ["narrow"]


def test_registered_model_links_open_the_model_training_view(tmp_path, monkeypatch):
    import mlflow
    import torch

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from adt import tracking
    from pipelines.metadata import registered_model

    tracking.setup()
    client = mlflow.MlflowClient()
    client.create_registered_model("adt-test")
    with tracking.run("transcriber", "a model") as run:
        torch.save({}, tmp_path / "w.pt")
        mlflow.log_artifact(str(tmp_path / "w.pt"), "model")
    version = client.create_model_version("adt-test", f"runs:/{run.info.run_id}/model", run.info.run_id).version
    client.set_registered_model_alias("adt-test", "champion", version)
    expected = f"http://127.0.0.1:5000/#/models/adt-test/versions/{version}?workflowType=machine_learning"
    assert tracking.model_url(f"models:/adt-test/{version}") == expected
    assert registered_model("models:/adt-test@champion")["model"].md_str == (
        f"[adt-test@champion in the MLflow registry]({expected})")
    assert registered_model("models:/adt-test/99") == {"model": "models:/adt-test/99"}  # unknown: the URI as text
    assert registered_model(None) == {}


def test_a_run_logged_after_its_work_spans_it(tmp_path, monkeypatch):
    """Issue 31: runs lasted 36-139 ms, since results are logged after the work; ``started`` gives the run the
    work's start, so its duration is the work's."""
    import time

    import mlflow

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from adt import tracking

    started = time.time() - 42.0  # the work began 42 s ago
    with tracking.run("zero_shot", "zero-shot-matrix", params={"a": 1}, started=started) as run:
        mlflow.log_metric("f", 0.5)
    info = mlflow.get_run(run.info.run_id)
    assert info.info.run_name == "zero-shot-matrix" and info.info.status == "FINISHED"
    assert 41.0 <= (info.info.end_time - info.info.start_time) / 1000 < 60.0
    assert info.data.params == {"a": "1"} and info.data.metrics == {"f": 0.5} and "git_commit" in info.data.tags
    again = tracking.log_once("beats", "madmom-beats", "k", lambda: mlflow.log_metric("g", 1.0), started=started)
    assert (mlflow.get_run(again).info.end_time - mlflow.get_run(again).info.start_time) / 1000 >= 41.0
