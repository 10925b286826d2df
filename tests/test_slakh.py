"""adt.data.datasets.slakh on a tiny archive in the official layout (tests/layouts/slakh.py), downloaded over HTTP."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adt.audio import read_audio
from adt.config import get_profile
from adt.data.datasets import BEAT_COLUMNS, ONSET_COLUMNS, TRACK_COLUMNS, slakh
from adt.data.download import Remote, fetch_all
from adt.midi import load_midi, onsets_from_midi
from adt.vocab import GM_TO_CLASS
from tests.layouts import slakh as layout

SR = layout.SAMPLE_RATE
WITH_DRUMS = ["Track00001", "Track00002", "Track00003", "Track00005"]


@pytest.fixture(scope="module")
def archive() -> bytes:
    return layout.archive_files()[slakh.REMOTES[0].filename]


@pytest.fixture
def raw_dir(http_server, archive, tmp_path) -> Path:
    """The fixture archive fetched from the local HTTP server (SHA-256 checked) and unpacked."""
    name = slakh.REMOTES[0].filename
    http_server.files[f"/{name}"] = archive
    digest = hashlib.sha256(archive).hexdigest()
    remote = Remote(name, f"{http_server.base}/{name}", sha256=(digest,))
    target, checksums = fetch_all([remote], tmp_path / "downloads", tmp_path / "raw", progress=False)
    assert checksums == {name: digest}
    return target


def expected_onsets(track: str, stems: list[str]) -> set[tuple[float, str, str]]:
    """(time, 5-class, GM note) of the given stems' mapped notes, as the layout wrote them."""
    return {(round(t, 4), GM_TO_CLASS[p], str(p)) for s in stems for t, p, _ in layout.DRUM_NOTES[(track, s)]
            if p in GM_TO_CLASS and p not in slakh.DROPPED_NOTES}


def as_set(onsets: pd.DataFrame) -> set[tuple[float, str, str]]:
    return {(round(r.time_s, 4), r.drum, r.label) for r in onsets.itertuples()}


def test_module_facts():
    (remote,) = slakh.REMOTES
    assert remote.filename == "slakh2100_flac_redux.tar.gz"
    assert remote.url.startswith("https://zenodo.org/records/4599666/files/slakh2100_flac_redux.tar.gz")
    assert remote.md5 == ("f4b71b6c45ac9b506f59788456b3f0c4",) and remote.size == 104_322_767_708
    assert slakh.NAME == "slakh" and slakh.ACCESS == "open" and "CC BY 4.0" in slakh.LICENSE
    assert "manilow2019cutting" in slakh.CITATION


def test_load_index(raw_dir):
    index = slakh.load_index(raw_dir)
    assert list(index.columns) == slakh.INDEX_COLUMNS
    assert index["name"].tolist() == [f"Track0000{i}" for i in range(1, 7)]
    assert index["track_id"].tolist() == [f"slakh/Track0000{i}" for i in range(1, 7)]
    assert index["split"].tolist() == ["train", "train", "validation", "test", "test", "omitted"]
    by_name = index.set_index("name")
    assert by_name["drum_stems"].to_dict() == {"Track00001": ["S02"], "Track00002": ["S00", "S02"],
                                               "Track00003": ["S01"], "Track00004": [], "Track00005": ["S00"],
                                               "Track00006": ["S00"]}
    assert by_name["has_drums"].to_dict() == {n: n != "Track00004" for n in by_name.index}
    assert by_name.loc["Track00003", "unrendered_drum_stems"] == ["S02"]  # a drum stem with no flac
    assert by_name.loc["Track00002", "drum_plugins"] == ["garage_kit_lite.nkm", "stadium_kit.nkm"]
    assert by_name["n_stems"].tolist() == [3, 3, 3, 2, 2, 2]
    for row in index.itertuples():
        assert Path(row.mix_path).is_file() and Path(row.all_src_path).is_file() and Path(row.metadata_path).is_file()
        assert all(Path(p).is_file() for p in row.drum_audio_paths + row.drum_midi_paths)
        assert [Path(p).stem for p in row.drum_audio_paths] == row.drum_stems
        assert [Path(p).stem for p in row.drum_midi_paths] == row.drum_stems
    # the top folder itself is accepted too
    assert slakh.load_index(raw_dir / "slakh2100_flac_redux")["mix_path"].equals(index["mix_path"])
    with pytest.raises(FileNotFoundError, match="slakh2100_flac_redux"):
        slakh.load_index(raw_dir / "slakh2100_flac_redux" / "train")


def test_onsets_come_from_the_rendered_drum_midi_only(raw_dir):
    tracks = slakh.load_tracks(raw_dir)
    assert sorted(tracks) == [f"slakh/Track0000{i}" for i in range(1, 7)]

    t1 = tracks["slakh/Track00001"]
    assert as_set(t1.onsets) == expected_onsets("Track00001", ["S02"]) and len(t1.onsets) == 30
    assert "TT" not in set(t1.onsets["drum"])  # the piano's notes 48/50 are not read as toms
    bass_times = {round(s, 4) for s, _, _ in layout.OTHER_NOTES[("Track00001", "S01")]}
    assert not bass_times & {round(t, 4) for t in t1.onsets["time_s"]}  # nor the bass (36, 38, 40, 43)
    assert "56" not in set(t1.onsets["label"])  # cowbell dropped
    assert t1.onsets["time_s"].is_monotonic_increasing and list(t1.onsets.columns) == ONSET_COLUMNS
    assert set(t1.onsets["velocity"]) == {110.0, 100.0, 70.0, 120.0}

    t2 = tracks["slakh/Track00002"]  # two drum stems, merged; the kick both play at 0.0 counts once
    assert as_set(t2.onsets) == expected_onsets("Track00002", ["S00", "S02"])
    assert len(t2.onsets) == len(expected_onsets("Track00002", ["S00", "S02"]))
    first = t2.onsets[(t2.onsets["time_s"] == 0.0) & (t2.onsets["drum"] == "BD")]
    assert len(first) == 1 and first["velocity"].item() == 100.0  # the louder of 100 and 80
    assert {"TT", "CY"} <= set(t2.onsets["drum"]) and not {"54", "58"} & set(t2.onsets["label"])

    t3 = tracks["slakh/Track00003"]  # S02 (snares) is not rendered: not ground truth
    assert as_set(t3.onsets) == expected_onsets("Track00003", ["S01"])
    assert set(t3.onsets["drum"]) == {"BD", "HH"}

    t4 = tracks["slakh/Track00004"]
    assert not t4.has_drums and t4.onsets.empty
    with pytest.raises(ValueError, match="no rendered drum stem"):
        t4.drum_audio()


def test_label_mapping(raw_dir):
    tracks = slakh.load_tracks(raw_dir)
    onsets = pd.concat([t.onsets for t in tracks.values() if t.has_drums], ignore_index=True)
    assert len(onsets) == sum(len(expected_onsets(t.name, list(t.drum_stems))) for t in tracks.values()) == 82
    assert (onsets["drum"] == onsets["label"].astype(int).map(GM_TO_CLASS)).all()
    assert set(onsets["drum"]) == {"BD", "SD", "TT", "HH", "CY"}
    assert {"35", "36", "38", "40", "42", "44", "45", "46", "47", "49", "51", "53"} == set(onsets["label"])
    assert onsets["velocity"].between(1, 127).all()


def test_beats_from_all_src_tempo_map(raw_dir):
    tracks = slakh.load_tracks(raw_dir)
    b1 = tracks["slakh/Track00001"].beats  # 4/4 at 120 bpm
    assert list(b1.columns) == BEAT_COLUMNS and len(b1) >= 9
    np.testing.assert_allclose(np.diff(b1["time_s"]), 0.5, atol=1e-6)
    assert b1["position"].tolist()[:8] == [1, 2, 3, 4, 1, 2, 3, 4]
    b5 = tracks["slakh/Track00005"].beats  # 3/4 at 100 bpm
    np.testing.assert_allclose(np.diff(b5["time_s"]), 0.6, atol=1e-6)
    assert b5["position"].tolist()[:6] == [1, 2, 3, 1, 2, 3]


def test_drum_audio_is_the_sum_of_the_rendered_drum_stems(raw_dir):
    tracks = slakh.load_tracks(raw_dir)
    t2 = tracks["slakh/Track00002"]
    drums, sr = t2.drum_audio()
    s0, _ = read_audio(t2.drum_audio_paths[0])
    s2, _ = read_audio(t2.drum_audio_paths[1])
    assert sr == SR and drums.shape == (1, int(layout.DURATION_S * SR))
    np.testing.assert_allclose(drums, s0 + s2, atol=1e-6)
    assert np.abs(s0).max() > 0.05 and np.abs(s2).max() > 0.05
    mix, _ = t2.mix_audio()
    guitar, _ = read_audio(Path(t2.mix_path).parent / "stems" / "S01.flac")
    np.testing.assert_allclose(drums, mix - guitar, atol=1e-6)  # the mix's drum part

    t3 = tracks["slakh/Track00003"]  # one rendered drum stem, one not
    drums3, _ = t3.drum_audio()
    np.testing.assert_allclose(drums3, read_audio(t3.drum_audio_paths[0])[0], atol=1e-6)


def test_build_selection_and_cropping(raw_dir, tmp_path):
    profile = dataclasses.replace(get_profile("tiny").data, tracks_per_split=1, max_duration_s=3.0)
    out = tmp_path / "out"
    skipped: list[dict] = []
    tables = slakh.build(raw_dir, out, profile, skipped=skipped)
    tracks, onsets, beats = tables.tracks, tables.onsets, tables.beats
    assert skipped == []
    assert list(tracks.columns) == TRACK_COLUMNS
    assert list(onsets.columns) == ONSET_COLUMNS and list(beats.columns) == BEAT_COLUMNS
    # the first track with drums per split: Track00004 (test) has none, Track00006 is omitted
    assert tracks["track_id"].tolist() == ["slakh/Track00001", "slakh/Track00003", "slakh/Track00005"]
    assert tracks["split"].tolist() == ["train", "validation", "test"]
    assert (tracks["dataset"] == "slakh").all() and (tracks["sample_rate"] == SR).all()
    assert tracks["duration_s"].tolist() == [3.0, 3.0, 3.0]
    assert tracks["kit"].tolist() == ["session_kit_full.nkm", "funk_kit.nkm", "studio_drummer.nkm"]
    assert tracks[["style", "drummer"]].isna().all(axis=None)

    full = slakh.load_tracks(raw_dir)
    for t in tracks.itertuples():
        track = full[t.track_id]
        assert Path(t.drum_path) == out / track.name / "drums.wav"
        assert Path(t.mix_path) == out / track.name / "mix.wav"
        assert t.midi_path == track.drum_midi_paths[0]  # one drum stem: its own MIDI file
        drums, sr = read_audio(t.drum_path)
        assert sr == SR and drums.shape == (1, 3 * SR)
        np.testing.assert_allclose(drums, track.drum_audio()[0][:, : 3 * SR], atol=1e-4)
        mix, _ = read_audio(t.mix_path)
        np.testing.assert_allclose(mix, track.mix_audio()[0][:, : 3 * SR], atol=1e-4)
        o = onsets[onsets.track_id == t.track_id].reset_index(drop=True)
        pd.testing.assert_frame_equal(o, track.onsets[track.onsets["time_s"] < 3.0].reset_index(drop=True))
        assert len(o) > 5 and o["time_s"].max() < 3.0
        b = beats[beats.track_id == t.track_id]
        assert len(b) >= 5 and b["time_s"].max() < 3.0
    assert set(onsets[onsets.track_id == "slakh/Track00003"]["drum"]) == {"BD", "HH"}

    # outputs are reused
    files = sorted(out.rglob("*.wav"))
    assert len(files) == 6
    mtimes = [f.stat().st_mtime_ns for f in files]
    again = slakh.build(raw_dir, out, profile)
    assert again.tracks.equals(tracks) and again.onsets.equals(onsets)
    assert [f.stat().st_mtime_ns for f in files] == mtimes


def test_build_all_uncropped_merges_drum_midi(raw_dir, tmp_path):
    profile = dataclasses.replace(get_profile("tiny").data, tracks_per_split=None, max_duration_s=None)
    out = tmp_path / "out"
    tables = slakh.build(raw_dir, out, profile)
    assert tables.tracks["track_id"].tolist() == [f"slakh/{n}" for n in WITH_DRUMS]
    assert (tables.tracks["duration_s"] == layout.DURATION_S).all()
    t = tables.tracks.set_index("track_id").loc["slakh/Track00002"]
    assert t["mix_path"].endswith("train/Track00002/mix.flac")  # no crop: the original mix
    assert Path(t["midi_path"]) == out / "Track00002" / "drums.mid"  # two drum stems: merged MIDI
    assert t["kit"] == "garage_kit_lite.nkm+stadium_kit.nkm"
    pm = load_midi(t["midi_path"])
    assert len(pm.instruments) == 2 and all(i.is_drum for i in pm.instruments)
    merged = slakh.merge_onsets([onsets_from_midi(pm, "slakh/Track00002")])
    merged = merged[~merged["label"].isin(["58"])].reset_index(drop=True)
    o = tables.onsets[tables.onsets.track_id == "slakh/Track00002"].reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, o)
    drums, _ = read_audio(t["drum_path"])
    assert drums.shape == (1, int(layout.DURATION_S * SR))
    assert set(tables.onsets["track_id"]) == {f"slakh/{n}" for n in WITH_DRUMS}


def test_build_skips_a_track_with_a_missing_stem(raw_dir, tmp_path, caplog):
    raw = tmp_path / "copy"
    shutil.copytree(raw_dir, raw)
    missing = raw / "slakh2100_flac_redux" / "train" / "Track00001" / "stems" / "S02.flac"
    missing.unlink()
    profile = dataclasses.replace(get_profile("tiny").data, tracks_per_split=1, max_duration_s=3.0)
    skipped: list[dict] = []
    with caplog.at_level(logging.WARNING, logger="adt.data.datasets.slakh"):
        tables = slakh.build(raw, tmp_path / "out", profile, skipped=skipped)
    assert tables.tracks["track_id"].tolist() == ["slakh/Track00002", "slakh/Track00003", "slakh/Track00005"]
    assert [s["track_id"] for s in skipped] == ["slakh/Track00001"] and str(missing) in skipped[0]["reason"]
    assert str(missing) in caplog.text
    assert "slakh/Track00001" not in set(tables.onsets["track_id"])


@pytest.mark.parametrize("text, problem", [
    ("stems: [S00: {is_drum: true\n", "malformed metadata.yaml"),
    ("UUID: abc\nstems: 3\n", "'stems' mapping"),
    ("stems:\n  S00: {is_drum: yes please, audio_rendered: true}\n", "boolean 'is_drum'"),
])
def test_malformed_metadata(raw_dir, tmp_path, text, problem):
    raw = tmp_path / "copy"
    shutil.copytree(raw_dir, raw)
    bad = raw / "slakh2100_flac_redux" / "validation" / "Track00003" / "metadata.yaml"
    bad.write_text(text)
    with pytest.raises(ValueError, match=problem) as err:
        slakh.load_index(raw)
    assert str(bad) in str(err.value)
    with pytest.raises(ValueError, match="Track00003/metadata.yaml"):
        slakh.build(raw, tmp_path / "out", get_profile("tiny").data)
