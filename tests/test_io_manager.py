"""Asset values as JSON, never pickles (pipelines.io_manager): a dict, a FeatureIndex and a partitioned
value go through the I/O manager and come back equal with pickle unusable; a value that is not JSON data
is refused naming the asset and where; a data folder's old pickles are never read ("stored value gone")."""

import json
import pickle
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from adt.features.index import FeatureIndex, TrackFeatures
from pipelines.io_manager import FORMAT, JsonIOManager, decode, stored_value_path
from pipelines.plan import SETTINGS_TAG, to_materialize

pytestmark = pytest.mark.faults

MANIFEST = {"key": "k1", "path": "/data/x/tracks.parquet", "rows": 3, "f": 0.25, "ok": True, "none": None,
            "cells": [{"train": "demo", "f_3class": 0.5}], "nested": {"a": ["b", 1, 2.5]}}
INDEX = FeatureIndex(
    key="fk", feature_type="log_mel", feature_params={"n_bins": 80, "f_min": 20.0, "window": "hann"},
    target_widening=False,
    tracks={"demo/1": TrackFeatures("demo/1", "demo", "train", Path("/d/1.x.npy"), Path("/d/1.y.npy"), "drum"),
            "demo/2": TrackFeatures("demo/2", "demo", "test", Path("/d/2.x.npy"), Path("/d/2.y.npy"), "separated",
                                    Path("/d/2d.x.npy"))},
    shards={"demo": {"train": "/s/train"}}, dataset_stats={"demo": {"key": "sk", "path": "/s/stats.json"}},
    combinations={"demo": {"dir": "/c", "train_sets": ["demo"], "frames": 10, "onsets": {"BD": 1}}})

parts = dg.StaticPartitionsDefinition(["a", "b", "c"])


@dg.asset
def manifest() -> dg.Output[dict]:
    # what the stages return on a fresh compute: tuples, Paths, numpy scalars among the JSON data
    value = {**MANIFEST, "path": Path(MANIFEST["path"]), "rows": np.int64(3), "f": np.float32(0.25),
             "ok": np.bool_(True), "nested": {"a": ("b", 1, np.float64(2.5))}}
    return dg.Output(value, metadata={"path": dg.MetadataValue.path("/data/x")})


@dg.asset
def features() -> FeatureIndex:
    return INDEX


@dg.asset(partitions_def=parts)
def per_dataset(context: dg.AssetExecutionContext) -> dict:
    return {"dataset": context.partition_key, "rows": len(context.partition_key)}


@dg.asset(ins={"per_dataset": dg.AssetIn(partition_mapping=dg.AllPartitionMapping(),
                                         metadata={"allow_missing_partitions": True})})
def unified(per_dataset: dict[str, dict], features: FeatureIndex, manifest: dict) -> dict:
    assert isinstance(features, FeatureIndex) and features == INDEX and manifest == MANIFEST
    return {"datasets": per_dataset}


def _defs() -> dg.Definitions:
    return dg.Definitions(assets=[manifest, features, per_dataset, unified], resources={"io_manager": JsonIOManager()})


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


def _no_pickle(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a stored value was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)


def test_values_round_trip_as_json_without_pickle(instance, monkeypatch):
    defs, storage = _defs(), Path(instance.storage_directory())
    legacy = storage / "manifest"  # a value stored by Dagster's pickling manager before
    legacy.parent.mkdir(parents=True, exist_ok=True)
    legacy.write_bytes(pickle.dumps({"old": "pickle"}))
    job = defs.resolve_implicit_global_asset_job_def()
    done = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("manifest"),
                                                                      dg.AssetKey("features")])
    assert done.success and not legacy.exists()  # the old pickle goes when its JSON is written
    meta = done.asset_materializations_for_node("manifest")[0].metadata
    assert meta["path"].value == "/data/x"  # the asset's own path metadata is kept
    assert meta["stored_value"].value == str(stored_value_path(storage, dg.AssetKey("manifest")))
    for name in ("a", "b"):
        assert job.execute_in_process(instance=instance, partition_key=name,
                                      asset_selection=[dg.AssetKey("per_dataset")]).success

    # on disk: JSON envelopes at <storage>/<key>[/<partition>].json, no pickle beside them
    doc = json.loads(stored_value_path(storage, dg.AssetKey("manifest")).read_text())
    assert doc == {"format": FORMAT, "type": "json", "value": MANIFEST}
    doc = json.loads(stored_value_path(storage, dg.AssetKey("features")).read_text())
    assert doc["type"] == "FeatureIndex" and doc["value"]["tracks"]["demo/2"]["x_drums"] == "/d/2d.x.npy"
    assert json.loads(stored_value_path(storage, dg.AssetKey("per_dataset"), "b").read_text())["value"] == {
        "dataset": "b", "rows": 1}
    assert sorted(p.relative_to(storage).as_posix() for p in storage.rglob("*.json")) == [
        "features.json", "manifest.json", "per_dataset/a.json", "per_dataset/b.json"]
    assert not any((storage / name).exists() for name in ("manifest", "features", "per_dataset/a", "per_dataset/b"))

    _no_pickle(monkeypatch)
    with defs.get_asset_value_loader(instance) as loader:
        assert loader.load_asset_value("manifest") == MANIFEST
        index = loader.load_asset_value("features")
        assert loader.load_asset_value("per_dataset", partition_key="a") == {"dataset": "a", "rows": 1}
    assert type(index) is FeatureIndex and index == INDEX
    assert all(type(t) is TrackFeatures and isinstance(t.x, Path) and isinstance(t.y, Path)
               for t in index.tracks.values())
    assert index.tracks["demo/1"].x_drums is None and index.tracks["demo/2"].x_drums == Path("/d/2d.x.npy")
    # a downstream run reads every stored partition (c never materialized: skipped), the index, the dict
    run = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("unified")])
    assert run.output_for_node("unified") == {"datasets": {"a": {"dataset": "a", "rows": 1},
                                                           "b": {"dataset": "b", "rows": 1}}}


def test_value_that_is_not_json_is_refused(tmp_path):
    manager = JsonIOManager(base_dir=str(tmp_path)).create_io_manager(dg.build_init_resource_context())
    context = dg.build_output_context(asset_key=dg.AssetKey("weird"))
    with pytest.raises(TypeError, match=r"asset weird: value\['bad'\]\['model'\] is a builtins.object"):
        manager.handle_output(context, {"ok": 1, "bad": {"model": object()}})
    with pytest.raises(TypeError, match=r"asset weird: value\['counts'\] has the key 3 \(int\)"):
        manager.handle_output(context, {"counts": {3: "x"}})
    with pytest.raises(TypeError, match=r"value\['x'\] is a numpy.ndarray"):
        manager.handle_output(context, {"x": np.zeros(3)})
    assert not any(tmp_path.rglob("*"))  # nothing written, not even half


def test_a_stored_file_names_no_class_to_import(tmp_path):
    with pytest.raises(ValueError, match="unknown stored value type 'os.system'"):
        decode({"format": FORMAT, "type": "os.system", "value": "rm -rf /"}, "x.json")
    with pytest.raises(ValueError, match="not a stored asset value"):
        decode({"py/object": "os.system"}, "x.json")


def test_a_data_folder_of_pickles_is_materialized_again(instance, monkeypatch):
    """A value stored as a pickle before the JSON manager is "stored value gone": the plan runs it again."""
    defs = _defs()
    keys = [dg.AssetKey("manifest"), dg.AssetKey("features")]
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=keys, tags={SETTINGS_TAG: "s"}).success
    assert to_materialize(instance, defs, keys, "s") == {}
    stored = stored_value_path(instance.storage_directory(), dg.AssetKey("features"))
    stored.unlink()
    stored.with_name("features").write_bytes(pickle.dumps(INDEX))  # what Dagster's default manager left
    _no_pickle(monkeypatch)
    assert to_materialize(instance, defs, keys, "s") == {dg.AssetKey("features"): "stored value gone"}
    assert job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("features")],
                                  tags={SETTINGS_TAG: "s"}).success
    assert to_materialize(instance, defs, keys, "s") == {} and not stored.with_name("features").exists()
