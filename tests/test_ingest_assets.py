"""The ingest assets in Dagster: every dataset materialized from its official layout
(tests/layouts fixtures: in a mirror folder, or placed in data/downloads for the
request-only ones), a dataset card in the metadata, and a clear failure for a
request-only dataset that has not been placed."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib

import dagster as dg
import pandas as pd
import pytest

from adt.data.datasets import TRACK_COLUMNS, get_module

FIXTURE_DATASETS = ("egmd", "slakh", "enst", "adtof")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A data folder, a mirror folder with the open datasets' fixture archives, the
    request-only ones placed in data/downloads, remotes re-pinned to the fixtures."""
    data, mirror = tmp_path / "data", tmp_path / "mirror"
    (data / "downloads").mkdir(parents=True)
    mirror.mkdir()
    monkeypatch.setenv("ADT_DATA_DIR", str(data))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{data / 'mlflow.db'}")
    for name in FIXTURE_DATASETS:
        module = get_module(name)
        files = importlib.import_module(f"tests.layouts.{name}").archive_files()
        remotes = []
        for remote in module.REMOTES:
            data_bytes = files[remote.filename]
            folder = data / "downloads" if remote.manual else mirror
            (folder / remote.filename).write_bytes(data_bytes)
            remotes.append(dataclasses.replace(remote, sha256=(hashlib.sha256(data_bytes).hexdigest(),), md5=(),
                                               size=len(data_bytes), extracted_size=None))
        monkeypatch.setattr(module, "REMOTES", remotes)
    return {"data": data, "mirror": mirror}


def _materialize(name: str, mirror) -> dg.ExecuteInProcessResult:
    from pipelines.assets import ASSET
    from pipelines.io_manager import JsonIOManager
    from pipelines.resources import AdtSettings, DataStoreResource

    return dg.materialize([ASSET["raw_dataset"], ASSET["dataset_tables"]], partition_key=name, raise_on_error=False,
                          instance=dg.DagsterInstance.ephemeral(),
                          resources={"settings": AdtSettings(profile="tiny", mirror=str(mirror)),
                                     "io_manager": JsonIOManager(), "data_store": DataStoreResource()})


@pytest.mark.parametrize("name", FIXTURE_DATASETS)
def test_dataset_materializes_from_its_official_layout(env, name):
    result = _materialize(name, env["mirror"])
    assert result.success
    out = result.output_for_node("dataset_tables")
    tracks = pd.read_parquet(f"{out.dir}/tracks.parquet")
    assert list(tracks.columns) == TRACK_COLUMNS and len(tracks) >= 2 and (tracks.dataset == name).all()
    onsets = pd.read_parquet(f"{out.dir}/onsets.parquet")
    assert len(onsets) > 0
    meta = result.asset_materializations_for_node("dataset_tables")[0].metadata
    # the dataset card as Dagster shows it: its table per split as a table, the lines about the dataset inline
    assert meta["per_split_note"].value.startswith(f"### {name}") and meta["tracks"].value == len(tracks)
    assert isinstance(meta["per_split"], dg.TableMetadataValue)
    assert meta["per_split"].schema.columns[0].name == "split"
    # a second materialization reuses everything (same data version)
    again = _materialize(name, env["mirror"])
    assert again.output_for_node("dataset_tables").key == out.key


def test_request_only_dataset_not_placed_fails_clearly(env):
    (env["data"] / "downloads" / "ENST-drums-public.zip").unlink()
    result = _materialize("enst", env["mirror"])
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.step_failure_data.user_failure_data.description or failure.step_failure_data.error)
    assert "request it at" in message and "ENST-drums-public.zip" in message
    assert str(env["data"] / "downloads") in message
    assert not (env["data"] / "raw" / "enst").exists()
