"""adt.data.datasets.adtof on a tiny export in the tf.data.Dataset.save layout (tests/layouts/adtof.py)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from adt.config import get_profile
from adt.data.datasets import BEAT_COLUMNS, ONSET_COLUMNS, TRACK_COLUMNS, adtof
from adt.data.download import ManualDownloadRequired, fetch, fetch_all
from adt.vocab import CLASSES_5
from tests.layouts import adtof as layout

YT = ["yt_train_000000", "yt_train_000001", "yt_validation_000000", "yt_test_000000"]


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory) -> Path:
    """The fixture archive placed by hand into the downloads folder, then fetched and unpacked."""
    tmp = tmp_path_factory.mktemp("adtof")
    downloads = tmp / "downloads"
    downloads.mkdir()
    for name, data in layout.archive_files().items():
        (downloads / name).write_bytes(data)
    target, checksums = fetch_all(adtof.REMOTES, downloads, tmp / "raw", progress=False)
    assert list(checksums) == [adtof.ARCHIVE]
    return target


def test_manual_download_required(tmp_path):
    assert adtof.ACCESS == "on request" and adtof.REMOTES[0].manual == adtof.RECORD
    with pytest.raises(ManualDownloadRequired) as info:
        fetch(adtof.REMOTES[0], tmp_path / "downloads", progress=False)
    message = str(info.value)
    assert adtof.RECORD in message and adtof.ARCHIVE in message and str((tmp_path / "downloads").resolve()) in message
    with pytest.raises(ManualDownloadRequired):
        fetch_all(adtof.REMOTES, tmp_path / "downloads", tmp_path / "raw", progress=False)
    assert not (tmp_path / "raw").exists()


def test_split_folders_and_metadata(raw_dir):
    folders = adtof.split_folders(raw_dir)
    assert [(s, f.name) for s, f in folders] == [("train", "adtof_yt_train"), ("validation", "adtof_yt_val"),
                                                  ("test", "adtof_yt_test")]
    meta = adtof.read_metadata(folders[0][1])
    assert meta == {"run_id": layout.RUN_ID, "version": 2, "dtypes": [1, 1], "num_elements": 2, "finalized": True}
    assert [s for s, _ in adtof.split_folders(raw_dir, subset="adtof_rgw")] == ["test"]
    with pytest.raises(FileNotFoundError, match="adtof_yt"):
        adtof.split_folders(raw_dir / "export adtofv2" / "adtof_yt_train" / layout.RUN_ID)


def test_load_index(raw_dir):
    index = adtof.load_index(raw_dir)
    assert list(index.columns) == adtof.INDEX_COLUMNS
    assert index["name"].tolist() == YT and index["track_id"].tolist() == ["adtof/" + n for n in YT]
    assert index["split"].tolist() == ["train", "train", "validation", "test"]
    # the two train samples sit in two shards, first element of each
    assert [Path(p).parent.name for p in index["path"]][:2] == ["00000000.shard", "00000001.shard"]
    assert index["element"].tolist() == [0, 0, 0, 0]


def test_load_features(raw_dir):
    expected = layout.samples()
    got = list(adtof.load_features(raw_dir))
    assert [t for t, *_ in got] == ["adtof/" + n for n in YT]
    for track_id, split, x, y in got:
        x0, y0, _ = expected[track_id.split("/")[1]]
        assert x.shape == (400, adtof.N_BINS) and x.dtype == np.float32 and np.array_equal(x, x0[:, :, 0])
        assert y.shape == (400, 5) and y.dtype == np.float32 and np.array_equal(y, y0)
        assert split in track_id
    assert [t for t, *_ in adtof.load_features(raw_dir, tracks_per_split=1)] == [
        "adtof/yt_train_000000", "adtof/yt_validation_000000", "adtof/yt_test_000000"]


def test_onsets_from_targets():
    y = np.zeros((50, 5), dtype=np.float32)
    for frame, col in [(10, 0), (20, 4), (10, 3), (30, 1), (40, 2)]:
        y[frame - 1:frame + 2, col] = [0.5, 1.0, 0.5]
    onsets = adtof.onsets_from_targets(y)
    assert onsets["time_s"].tolist() == [0.1, 0.1, 0.2, 0.3, 0.4]
    assert onsets["label"].tolist() == ["BD", "HH", "CY+RD", "SD", "TT"]
    assert onsets["drum"].tolist() == ["BD", "HH", "CY", "SD", "TT"]
    assert onsets["velocity"].isna().all()


def test_build_whole(raw_dir, tmp_path):
    profile = dataclasses.replace(get_profile("tiny").data, tracks_per_split=None, max_duration_s=None)
    tables = adtof.build(raw_dir, tmp_path / "out", profile)
    tracks, onsets = tables.tracks, tables.onsets
    assert list(tracks.columns) == TRACK_COLUMNS and list(onsets.columns) == ONSET_COLUMNS
    assert list(tables.beats.columns) == BEAT_COLUMNS and tables.beats.empty
    assert tracks["track_id"].tolist() == ["adtof/" + n for n in YT]
    assert tracks["split"].tolist() == ["train", "train", "validation", "test"]
    assert (tracks["dataset"] == "adtof").all() and (tracks["sample_rate"] == 44100).all()
    assert (tracks["duration_s"] == 4.0).all()
    assert tracks[["mix_path", "drum_path", "midi_path"]].isna().all(axis=None)

    expected = layout.samples()
    for t in tracks.itertuples():
        x0, y0, frames = expected[t.track_id.split("/")[1]]
        x_path, y_path = adtof.feature_paths(tmp_path / "out", t.track_id)
        assert x_path.parent == tmp_path / "out" / t.track_id.split("/")[1]
        assert np.array_equal(np.load(x_path), x0[:, :, 0]) and np.array_equal(np.load(y_path), y0)
        o = onsets[onsets.track_id == t.track_id]
        want = sorted((round(f / 100, 6), adtof.CLASSES[col]) for col, fs in frames.items() for f in fs)
        assert sorted(zip(o["time_s"].round(6), o["label"])) == want
    assert set(onsets["drum"]) == set(CLASSES_5)
    assert (onsets["drum"] == onsets["label"].map(adtof.CLASS_MAP)).all()
    assert onsets["velocity"].isna().all()
    assert not list((tmp_path / "out").rglob(".tmp-*"))


def test_build_cropped_one_per_split(raw_dir, tmp_path):
    profile = dataclasses.replace(get_profile("tiny").data, tracks_per_split=1, max_duration_s=2.0)
    tables = adtof.build(raw_dir, tmp_path / "out", profile)
    tracks, onsets = tables.tracks, tables.onsets
    assert tracks["track_id"].tolist() == ["adtof/yt_train_000000", "adtof/yt_validation_000000",
                                           "adtof/yt_test_000000"]
    assert tracks["split"].tolist() == ["train", "validation", "test"]
    assert (tracks["duration_s"] == 2.0).all()
    expected = layout.samples()
    for t in tracks.itertuples():
        x_path, y_path = adtof.feature_paths(tmp_path / "out", t.track_id)
        x, y = np.load(x_path), np.load(y_path)
        assert x.shape == (200, 84) and y.shape == (200, 5)
        assert np.array_equal(y, expected[t.track_id.split("/")[1]][1][:200])
        o = onsets[onsets.track_id == t.track_id]
        assert len(o) >= 5 and (o["time_s"] < 2.0).all()  # every class hits early (layout)
        frames = expected[t.track_id.split("/")[1]][2]
        assert len(o) == sum(f < 200 for fs in frames.values() for f in fs)
    assert sorted(p.parent.name for p in (tmp_path / "out").glob("*/x.npy")) == sorted(
        t.split("/")[1] for t in tracks["track_id"])


def test_corrupt_or_unfinished_export(raw_dir, tmp_path):
    broken = tmp_path / "raw"
    shutil.copytree(raw_dir, broken)
    shard = next((broken / "export adtofv2" / "adtof_yt_test").rglob("*.snapshot"))
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"00000000\.snapshot: corrupt record data"):
        list(adtof.load_features(broken))

    meta = broken / "export adtofv2" / "adtof_yt_val" / "snapshot.metadata"
    meta.write_bytes(meta.read_bytes()[:-3])  # drop the finalized flag
    with pytest.raises(ValueError, match="adtof_yt_val/snapshot.metadata: the save was not finalized"):
        adtof.load_index(broken)
