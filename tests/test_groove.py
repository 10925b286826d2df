"""adt.data.datasets.groove on the real (mirrored) Groove MIDI archive, with a fake renderer."""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from adt.config import get_profile
from adt.data.archives import extract
from adt.data.datasets import BEAT_COLUMNS, ONSET_COLUMNS, TRACK_COLUMNS, groove
from adt.data.download import fetch
from adt.data.corpus import Stems



@pytest.fixture(scope="module")
def raw_dir(shared_datasets, tmp_path_factory) -> Path:
    """The mirrored archive (conftest's ``shared_datasets``), fetched (digest checked) and extracted."""
    tmp = tmp_path_factory.mktemp("groove")
    archive = fetch(groove.REMOTES[0], tmp / "downloads", mirror=str(shared_datasets), progress=False)
    return extract(archive, tmp / "raw")


class FakeRenderer:
    """Stands in for adt.data.render: clicks at note onsets (too loud on purpose) plus a hum."""

    KITS = {"kit_b": 1, "kit_a": 0}

    def __init__(self):
        self.calls = []

    def render_track(self, drums, kit, seed, sample_rate=44100, accompaniment=True, **_):
        self.calls.append((kit, seed))
        n = int((drums.get_end_time() + 0.5) * sample_rate)
        stem = np.zeros((2, n), np.float32)
        for inst in drums.instruments:
            for note in inst.notes:
                i = int(note.start * sample_rate)
                stem[:, i:i + 64] += 1.5 * note.velocity / 127
        t = np.arange(n) / sample_rate
        acc = np.tile(0.3 * np.sin(2 * np.pi * 110 * t), (2, 1)).astype(np.float32)
        silent = np.zeros_like(stem)
        return Stems(stem, acc if accompaniment else silent, silent)


@pytest.fixture
def fake_render(monkeypatch) -> FakeRenderer:
    """The fake renderer, in this process: renders run here (``ADT_JOBS=1``; a worker would import the real one)."""
    monkeypatch.setenv("ADT_JOBS", "1")
    fake = FakeRenderer()
    module = types.ModuleType("adt.data.render")
    module.KITS = fake.KITS
    corpus = types.ModuleType("adt.data.corpus")
    corpus.render_track = fake.render_track
    corpus.Stems = Stems
    monkeypatch.setitem(sys.modules, "adt.data.corpus", corpus)
    monkeypatch.setitem(sys.modules, "adt.data.render", module)
    return fake


def test_load_index(raw_dir):
    index = groove.load_index(raw_dir)
    assert len(index) == 1150
    assert index["split"].value_counts().to_dict() == {"train": 897, "validation": 124, "test": 129}
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in index["midi_path"])
    assert index["track_id"].is_unique
    assert "groove/drummer1/session1/1_funk_80_beat_4-4" in set(index["track_id"])
    assert groove.load_index(raw_dir / "groove")["midi_path"].equals(index["midi_path"])


def test_select_tracks_is_deterministic_and_prefix_stable(raw_dir):
    index = groove.load_index(raw_dir)
    small = groove.select_tracks(index, {"train": 5, "validation": 2, "test": 3})
    large = groove.select_tracks(index, {"train": 20, "validation": 4, "test": 6})
    assert small["split"].tolist() == ["train"] * 5 + ["validation"] * 2 + ["test"] * 3
    assert (small["beat_type"] == "beat").all() and (small["time_signature"] == "4-4").all()
    assert (small["duration"] >= groove.MIN_DURATION_S).all()
    for split in ("train", "validation", "test"):
        s, l_ = small[small.split == split], large[large.split == split]
        assert s["track_id"].tolist() == l_["track_id"].tolist()[: len(s)]
    assert small[small.split == "train"]["drummer"].nunique() == 5  # drummers taken in turn
    assert groove.select_tracks(index, {"train": 5, "validation": 2, "test": 3}).equals(small)
    assert len(groove.select_tracks(index, {"train": 10**6})) == 329  # all 4/4 train beats of 5 s or more


def test_build_with_fake_renderer(raw_dir, tmp_path, fake_render):
    profile = get_profile("tiny").data  # 3 train, 1 validation, 2 test, cropped to 12 s
    tables = groove.build(raw_dir, tmp_path / "out", profile)
    tracks, onsets, beats = tables.tracks, tables.onsets, tables.beats
    assert list(tracks.columns) == TRACK_COLUMNS
    assert list(onsets.columns) == ONSET_COLUMNS
    assert list(beats.columns) == BEAT_COLUMNS
    assert tracks["split"].tolist() == ["train"] * 3 + ["validation"] + ["test"] * 2
    assert tracks["track_id"].is_unique and tracks["track_id"].str.startswith("groove/drummer").all()
    assert (tracks["dataset"] == "groove").all() and (tracks["sample_rate"] == 44100).all()
    assert tracks["kit"].tolist() == ["kit_a", "kit_b", "kit_a", "kit_a", "kit_a", "kit_b"]
    assert len(fake_render.calls) == 6
    assert len({seed for _, seed in fake_render.calls}) == 6
    assert tracks["style"].notna().all() and tracks["drummer"].str.startswith("drummer").all()

    for t in tracks.itertuples():
        assert 0 < t.duration_s <= profile.max_duration_s
        drums, sr = sf.read(t.drum_path, dtype="float32", always_2d=True)
        mix, sr_mix = sf.read(t.mix_path, dtype="float32", always_2d=True)
        assert sr == sr_mix == 44100 and drums.shape == mix.shape and drums.shape[1] == 2
        assert drums.shape[0] == round(t.duration_s * sr)
        assert max(np.abs(drums).max(), np.abs(mix).max()) <= groove.PEAK + 1e-3  # jointly scaled
        assert np.abs(mix - drums).max() > 0.01  # accompaniment is in the mix
        assert Path(t.midi_path).is_file()
        o = onsets[onsets.track_id == t.track_id]
        assert len(o) > 0 and (o["time_s"] < t.duration_s).all() and o["time_s"].is_monotonic_increasing
        b = beats[beats.track_id == t.track_id]
        assert len(b) >= 4 and (np.diff(b["time_s"]) > 0).all() and (b["time_s"] < t.duration_s).all()
        assert set(b["position"]) <= {1, 2, 3, 4} and b["position"].iloc[0] == 1

    assert {"BD", "SD", "HH"} <= set(onsets["drum"])
    assert onsets["velocity"].between(1, 127).all()
    assert onsets["label"].map(int).isin(list(groove.GM_NOTES_USED)).all()

    # second build: everything comes from the cache, same tables
    again = groove.build(raw_dir, tmp_path / "out", profile)
    assert len(fake_render.calls) == 6
    pd.testing.assert_frame_equal(again.tracks, tracks)
    pd.testing.assert_frame_equal(again.onsets, onsets)

    # another crop invalidates the cache
    groove.build(raw_dir, tmp_path / "out", dataclasses.replace(profile, max_duration_s=6.0,
                                                                 groove_tracks={"train": 1}))
    assert len(fake_render.calls) == 7


def test_several_kits_per_performance(raw_dir, tmp_path, fake_render):
    profile = dataclasses.replace(get_profile("tiny").data, groove_tracks={"train": 2}, render_kits_per_track=2,
                                  render_accompaniment=False, max_duration_s=4.0)
    tables = groove.build(raw_dir, tmp_path / "out", profile)
    tracks = tables.tracks
    assert len(tracks) == 4 and (tracks.split == "train").all()
    first, second = tracks.track_id.iloc[0], tracks.track_id.iloc[1]
    assert second == f"{first}@{tracks.kit.iloc[1]}" and tracks.kit.iloc[0] != tracks.kit.iloc[1]
    assert tracks.mix_path.isna().all()  # drums only
    # both renders carry the same ground truth
    o = tables.onsets
    assert o[o.track_id == first].time_s.tolist() == o[o.track_id == second].time_s.tolist()


def test_tracks_load_lazily(raw_dir):
    tracks = groove.load_tracks(raw_dir)
    assert len(tracks) == 1150
    t = tracks["groove/drummer1/session1/1_funk_80_beat_4-4"]
    assert t.split == "train" and t.bpm == 80 and t.time_signature == "4-4"
    assert len(t.onsets) > 100 and set(t.onsets.drum) <= {"BD", "SD", "TT", "HH", "CY"}
    assert t.beats.position.between(1, 4).all()
