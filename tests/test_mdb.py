"""adt.data.datasets.mdb on the real (mirrored) MDB Drums subset."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from adt.audio import read_audio
from adt.config import get_profile
from adt.data.datasets import BEAT_COLUMNS, ONSET_COLUMNS, TRACK_COLUMNS, mdb
from adt.data.download import extract, fetch
from adt.vocab import CLASSES_5


DRUM_ONLY = ["MusicDelta_80sRock", "MusicDelta_Beatles", "MusicDelta_Britpop", "MusicDelta_Country1",
             "MusicDelta_Grunge", "MusicDelta_Punk", "MusicDelta_Rockabilly", "MusicDelta_Shadows",
             "MusicDelta_SpeedMetal"]


@pytest.fixture(scope="module")
def raw_dir(shared_datasets, tmp_path_factory) -> Path:
    """The mirrored archive (conftest's ``shared_datasets``), fetched (digest checked) and extracted."""
    tmp = tmp_path_factory.mktemp("mdb")
    archive = fetch(mdb.REMOTES[0], tmp / "downloads", mirror=str(shared_datasets), progress=False)
    return extract(archive, tmp / "raw")


def test_load_index(raw_dir):
    index = mdb.load_index(raw_dir)
    assert index["name"].tolist() == DRUM_ONLY  # 9 drum-only recordings, sorted
    assert list(index.columns) == mdb.INDEX_COLUMNS
    assert index["beats_path"].notna().all() and index["subclass_path"].notna().all()
    assert index["mix_path"].isna().all()  # no mixes in this subset
    assert mdb.load_index(raw_dir / "MDBDrums-master" / "MDB Drums")["drum_path"].equals(index["drum_path"])


def test_annotation_readers(raw_dir):
    index = mdb.load_index(raw_dir)
    labels = set()
    for row in index.itertuples():
        ann = mdb.read_class_annotation(row.class_path)
        assert ann["time_s"].is_monotonic_increasing and len(ann) > 0
        labels |= set(ann["label"])
        beats = mdb.read_beats(row.beats_path)
        assert (np.diff(beats["time_s"]) > 0).all() and set(beats["position"]) <= {1, 2, 3, 4}
    assert labels <= {"KD", "SD", "HH", "TT", "CY", "OT"} and {"KD", "SD", "HH"} <= labels


def test_build_tiny(raw_dir, tmp_path):
    profile = get_profile("tiny")  # 2 tracks, cropped to 12 s
    tables = mdb.build(raw_dir, tmp_path / "out", profile)
    tracks, onsets, beats = tables.tracks, tables.onsets, tables.beats
    assert list(tracks.columns) == TRACK_COLUMNS
    assert list(onsets.columns) == ONSET_COLUMNS and list(beats.columns) == BEAT_COLUMNS
    assert tracks["track_id"].tolist() == ["mdb/" + n for n in DRUM_ONLY[:2]]
    assert (tracks["split"] == "test").all() and (tracks["dataset"] == "mdb").all()
    assert tracks["mix_path"].isna().all() and tracks["midi_path"].isna().all()

    for t in tracks.itertuples():
        audio, sr = read_audio(t.drum_path)
        assert sr == t.sample_rate == 44100
        assert audio.shape[1] == round(t.duration_s * sr) and t.duration_s == pytest.approx(12.0)
        assert Path(t.drum_path).is_relative_to(tmp_path / "out")  # the cropped copy
        assert np.abs(audio).max() > 0.01
        o = onsets[onsets.track_id == t.track_id]
        assert len(o) > 0 and (o["time_s"] < t.duration_s).all() and o["time_s"].is_monotonic_increasing
        b = beats[beats.track_id == t.track_id]
        assert len(b) > 4 and (np.diff(b["time_s"]) > 0).all() and (b["time_s"] < t.duration_s).all()
        assert set(b["position"]) <= {1, 2, 3, 4}

    assert set(onsets["drum"]) <= set(CLASSES_5) and {"BD", "SD"} <= set(onsets["drum"])
    assert (onsets["drum"] == onsets["label"].map(mdb.CLASS_MAP)).all()
    assert "OT" not in set(onsets["label"])
    assert onsets["velocity"].isna().all()

    # the cropped wavs are reused
    mtimes = [Path(p).stat().st_mtime_ns for p in tracks["drum_path"]]
    again = mdb.build(raw_dir, tmp_path / "out", profile)
    assert again.tracks.equals(tracks)
    assert [Path(p).stat().st_mtime_ns for p in tracks["drum_path"]] == mtimes


def test_build_uncropped_references_original(raw_dir, tmp_path):
    profile = dataclasses.replace(get_profile("tiny"), mdb_tracks=None, max_duration_s=None)
    tables = mdb.build(raw_dir, tmp_path / "out", profile)
    assert len(tables.tracks) == 9
    assert not (tmp_path / "out").exists()
    index = mdb.load_index(raw_dir)
    assert tables.tracks["drum_path"].tolist() == index["drum_path"].tolist()
    assert tables.tracks["duration_s"].between(20, 60).all()
    n_onsets = sum(len(mdb.read_class_annotation(p)) for p in index["class_path"])
    n_ot = sum((mdb.read_class_annotation(p)["label"] == "OT").sum() for p in index["class_path"])
    assert len(tables.onsets) <= n_onsets - n_ot
    assert set(tables.onsets["drum"]) == set(CLASSES_5)


def test_tracks_load_lazily(raw_dir):
    tracks = mdb.load_tracks(raw_dir)
    assert list(tracks) == ["mdb/" + n for n in DRUM_ONLY]
    punk = tracks["mdb/MusicDelta_Punk"]
    assert set(punk.onsets["drum"]) <= set(CLASSES_5) and len(punk.onsets) > 100
    assert punk.beats["position"].between(1, 4).all() and len(punk.beats) > 10
    audio, sr = punk.drum_audio()
    assert sr == 44100 and audio.shape[0] == 1
    with pytest.raises(FileNotFoundError, match="no full mix"):
        punk.mix_audio()


def test_genre_split(raw_dir, tmp_path):
    assert len(mdb.GENRE_SPLIT) == 23  # every MDB Drums track, once
    profile = dataclasses.replace(get_profile("tiny"), mdb_tracks=None, mdb_split="genre", max_duration_s=2.0)
    tracks = mdb.build(raw_dir, tmp_path / "out", profile).tracks
    split = dict(zip(tracks.track_id, tracks.split))
    assert split["mdb/MusicDelta_Punk"] == "train"  # the one track the thesis names
    assert split["mdb/MusicDelta_Britpop"] == "validation" and split["mdb/MusicDelta_SpeedMetal"] == "test"
    with pytest.raises(ValueError, match="unknown MDB split"):
        mdb.split_of("MusicDelta_Punk", "random")
