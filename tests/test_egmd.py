"""adt.data.datasets.egmd on a tiny archive in the official layout (tests/layouts/egmd.py),
downloaded from the local HTTP server with adt.data.download.fetch_all."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adt.audio import read_audio
from adt.config import get_profile
from adt.data.datasets import BEAT_COLUMNS, ONSET_COLUMNS, TRACK_COLUMNS, DatasetTables, egmd, track_folder
from adt.data.download import Remote, fetch_all
from adt.vocab import GM_TO_CLASS
from tests.layouts import egmd as layout

TRAIN_ORDER = ["egmd/drummer1/session1/1_funk_120_beat_4-4_2",   # drummer1, kit "60s Rock"
               "egmd/drummer2/session1/4_rock_105_beat_4-4_1",   # drummer2, kit "Acoustic Kit"
               "egmd/drummer1/session1/1_funk_120_beat_4-4_1"]   # drummer1 again, its other kit
VALIDATION = "egmd/drummer1/session2/3_hiphop_95_beat_4-4_3"
TEST = "egmd/drummer2/eval_session/1_funk-groove1_138_beat_4-4_1"
ROW_OF = {r.track_id: r for r in layout.ROWS}


@pytest.fixture(scope="module")
def archive() -> tuple[str, bytes]:
    (name, data), = layout.archive_files().items()
    return name, data


@pytest.fixture
def raw_dir(archive, http_server, tmp_path) -> Path:
    """The fixture archive served over HTTP, fetched (SHA-256 checked) and unpacked by fetch_all."""
    name, data = archive
    http_server.files["/" + name] = data
    remote = Remote(name, f"{http_server.base}/{name}", (hashlib.sha256(data).hexdigest(),))
    target, checksums = fetch_all([remote], tmp_path / "downloads", tmp_path / "raw", progress=False)
    assert checksums == {name: hashlib.sha256(data).hexdigest()}
    assert (target / "e-gmd-v1.0.0" / "e-gmd-v1.0.0.csv").is_file()
    return target


def profile(**changes):
    return dataclasses.replace(get_profile("tiny").data, **changes)


def test_module_constants():
    assert egmd.NAME == "egmd" and egmd.ACCESS == "open" and "CC BY 4.0" in egmd.LICENSE
    assert "2004.00188" in egmd.CITATION and egmd.HOMEPAGE.startswith("https://")
    (remote,) = egmd.REMOTES
    assert remote.filename == "e-gmd-v1.0.0.zip" and remote.url.endswith("/e-gmd/v1.0.0/e-gmd-v1.0.0.zip")
    assert remote.verifiable and remote.size > 2 * 10**9  # never auto-downloaded by `make demo`
    assert egmd.MIDI_REMOTE.filename == "e-gmd-v1.0.0-midi.zip"


def test_archive_is_deterministic_and_small(archive):
    name, data = archive
    assert name == egmd.REMOTES[0].filename
    assert layout.archive_files()[name] == data and len(data) < 300_000


def test_load_index(raw_dir):
    index = egmd.load_index(raw_dir)
    assert list(index.columns) == egmd.CSV_COLUMNS + ["midi_path", "audio_path", "track_id"]
    assert len(index) == len(layout.ROWS) == 7
    assert index["split"].value_counts().to_dict() == {"train": 5, "validation": 1, "test": 1}
    assert index["track_id"].tolist() == [r.track_id for r in layout.ROWS]
    assert index["kit_name"].nunique() == 3 and index["drummer"].nunique() == 2
    assert index["duration"].dtype == float and index["bpm"].tolist() == [r.bpm for r in layout.ROWS]
    for col in ("midi_path", "audio_path"):
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in index[col])
    assert index["midi_path"].str.endswith(".midi").all() and index["audio_path"].str.endswith(".wav").all()
    # the folder itself works as root too
    assert egmd.load_index(raw_dir / "e-gmd-v1.0.0")["audio_path"].equals(index["audio_path"])


def test_load_index_errors(raw_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="e-gmd-v1.0.0.csv"):
        egmd.load_index(tmp_path / "nothing")
    csv = raw_dir / "e-gmd-v1.0.0" / "e-gmd-v1.0.0.csv"
    df = pd.read_csv(csv)
    df.drop(columns=["kit_name"]).to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"e-gmd-v1.0.0.csv: missing columns \['kit_name'\]"):
        egmd.load_index(raw_dir)
    df.assign(split=["train"] * 6 + ["dev"]).to_csv(csv, index=False)
    with pytest.raises(ValueError, match="unknown split values \\['dev'\\]"):
        egmd.load_index(raw_dir)


def test_tracks_onsets_beats_audio(raw_dir):
    tracks = egmd.load_tracks(raw_dir)
    assert list(tracks) == [r.track_id for r in layout.ROWS]
    for track_id, t in tracks.items():
        row = ROW_OF[track_id]
        assert (t.split, t.drummer, t.kit, t.style, t.performance) == (row.split, row.drummer, row.kit_name,
                                                                      row.style, row.performance)
        assert t.drum_path == t.audio_path and t.mix_path is None

        # onsets: exactly the mapped MIDI notes, with their velocities
        expected = [(s, p, v) for s, p, v in layout.notes(row) if p in GM_TO_CLASS]
        o = t.onsets
        assert list(o.columns) == ONSET_COLUMNS and (o["track_id"] == track_id).all()
        assert len(o) == len(expected)
        got = sorted(zip(o["time_s"], o["label"].astype(int), o["velocity"]))
        np.testing.assert_allclose([g[0] for g in got], [e[0] for e in expected], atol=1e-4)  # tempo in whole µs
        assert [(g[1], g[2]) for g in got] == [(e[1], float(e[2])) for e in expected]
        assert (o["drum"] == o["label"].astype(int).map(GM_TO_CLASS)).all()
        assert str(layout.UNMAPPED_NOTE) not in set(o["label"])  # cowbell dropped

        # beats from the tempo map and time signature
        b = t.beats
        assert list(b.columns) == BEAT_COLUMNS
        np.testing.assert_allclose(np.diff(b["time_s"]), 60.0 / row.bpm, atol=1e-4)
        n_beats = int(row.time_signature.split("-")[0])
        assert b["position"].tolist()[: n_beats + 1] == [*range(1, n_beats + 1), 1]

        # audio: mono 22.05 kHz with a click at each note
        audio, sr = t.drum_audio()
        assert sr == layout.SAMPLE_RATE and audio.shape == (1, round(row.duration * sr))
        for s, _, _ in expected[:8]:
            i = round(s * sr)
            assert np.abs(audio[0, i:i + 100]).max() > 0.05
        quiet = audio[0, round((expected[0][0] + 0.1) * sr):round((expected[0][0] + 0.12) * sr)]
        assert np.abs(quiet).max() < 0.01

    # label mapping of the TD-17 notes used (GM note -> 5-class)
    o = tracks[TEST].onsets
    mapping = dict(zip(o["label"].astype(int), o["drum"]))
    assert mapping == {36: "BD", 38: "SD", 42: "HH", 46: "HH", 45: "TT", 49: "CY"}


def test_order_and_selection(raw_dir):
    index = egmd.load_index(raw_dir)
    ordered = egmd.order_tracks(index)
    # excluded: the 3/4 beat and the 3 s fill
    assert set(index["track_id"]) - set(ordered["track_id"]) == {
        "egmd/drummer1/session1/2_jazz_120_beat_3-4_1", "egmd/drummer2/session1/5_rock_105_fill_4-4_2"}
    assert ordered["track_id"].tolist() == TRAIN_ORDER + [VALIDATION, TEST]
    first_two = ordered.head(2)
    assert first_two["drummer"].nunique() == 2 and first_two["kit_name"].nunique() == 2
    assert egmd.select_tracks(index, 1)["track_id"].tolist() == [TRAIN_ORDER[0], VALIDATION, TEST]
    assert egmd.select_tracks(index, 2)["track_id"].tolist() == TRAIN_ORDER[:2] + [VALIDATION, TEST]
    assert egmd.select_tracks(index, None)["track_id"].tolist() == ordered["track_id"].tolist()
    # the order does not depend on the CSV's row order
    shuffled = index.sample(frac=1.0, random_state=3)
    assert egmd.order_tracks(shuffled)["track_id"].tolist() == ordered["track_id"].tolist()


def test_build_cropped(raw_dir, tmp_path):
    out = tmp_path / "out"
    skipped = []
    tables = egmd.build(raw_dir, out, profile(tracks_per_split=1, max_duration_s=3.0), skipped=skipped)
    assert isinstance(tables, DatasetTables)
    tracks, onsets, beats = tables.tracks, tables.onsets, tables.beats
    assert list(tracks.columns) == TRACK_COLUMNS
    assert list(onsets.columns) == ONSET_COLUMNS and list(beats.columns) == BEAT_COLUMNS
    assert tracks["track_id"].tolist() == [TRAIN_ORDER[0], VALIDATION, TEST]
    assert tracks["split"].tolist() == ["train", "validation", "test"]
    assert (tracks["dataset"] == "egmd").all() and tracks["mix_path"].isna().all()
    assert skipped == []
    index = egmd.load_index(raw_dir).set_index("track_id")
    for t in tracks.itertuples():
        row = ROW_OF[t.track_id]
        assert (t.kit, t.style, t.drummer) == (row.kit_name, row.style, row.drummer)
        assert t.midi_path == index.loc[t.track_id, "midi_path"]  # the original MIDI
        assert t.duration_s == pytest.approx(3.0) and t.sample_rate == layout.SAMPLE_RATE
        assert Path(t.drum_path) == out / track_folder(t.track_id) / "drums.wav"
        audio, sr = read_audio(t.drum_path)
        assert audio.shape == (1, 3 * layout.SAMPLE_RATE)
        original, _ = read_audio(index.loc[t.track_id, "audio_path"])
        np.testing.assert_allclose(audio, original[:, : audio.shape[1]], atol=1 / 32768)
        o = onsets[onsets.track_id == t.track_id]
        expected = [(s, p) for s, p, _ in layout.notes(row) if p in GM_TO_CLASS and s < 3.0]
        assert len(o) == len(expected) > 0 and (o["time_s"] < 3.0).all()
        b = beats[beats.track_id == t.track_id]
        assert (b["time_s"] < 3.0).all() and len(b) == int(np.ceil(3.0 * row.bpm / 60 - 1e-9))
    assert set(onsets["drum"]) == {"BD", "SD", "HH", "TT", "CY"}

    # crops are reused
    mtimes = [Path(p).stat().st_mtime_ns for p in tracks["drum_path"]]
    again = egmd.build(raw_dir, out, profile(tracks_per_split=1, max_duration_s=3.0))
    assert again.tracks.equals(tracks) and again.onsets.equals(onsets)
    assert [Path(p).stat().st_mtime_ns for p in tracks["drum_path"]] == mtimes


def test_build_all_uncropped(raw_dir, tmp_path):
    tables = egmd.build(raw_dir, tmp_path / "out", profile(tracks_per_split=None, max_duration_s=None))
    assert tables.tracks["track_id"].tolist() == TRAIN_ORDER + [VALIDATION, TEST]
    assert not (tmp_path / "out").exists()  # nothing to crop: the original wavs are referenced
    index = egmd.load_index(raw_dir).set_index("track_id")
    assert tables.tracks["drum_path"].tolist() == index.loc[tables.tracks["track_id"], "audio_path"].tolist()
    assert tables.tracks["duration_s"].tolist() == pytest.approx([6.0, 6.0, 6.0, 6.0, 5.5])
    n_mapped = sum(sum(p in GM_TO_CLASS for _, p, _ in layout.notes(ROW_OF[t])) for t in tables.tracks["track_id"])
    assert len(tables.onsets) == n_mapped


def test_missing_or_broken_files_are_skipped(raw_dir, tmp_path, caplog):
    base = raw_dir / "e-gmd-v1.0.0"
    missing_wav = base / (ROW_OF[TRAIN_ORDER[0]].stem + ".wav")
    missing_wav.unlink()
    broken_midi = base / (ROW_OF[TEST].stem + ".midi")
    broken_midi.write_bytes(b"not a MIDI file")
    with caplog.at_level(logging.WARNING, logger="adt.data.datasets.egmd"):
        skipped = []
        tables = egmd.build(raw_dir, tmp_path / "out", profile(tracks_per_split=1, max_duration_s=3.0),
                            skipped=skipped)
    # the next train track in the order takes the missing one's place; test has no other
    assert tables.tracks["track_id"].tolist() == [TRAIN_ORDER[1], VALIDATION]
    assert [s["track_id"] for s in skipped] == [TRAIN_ORDER[0], TEST]
    messages = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(missing_wav) in messages and str(broken_midi) in messages
    assert set(tables.onsets["track_id"]) == {TRAIN_ORDER[1], VALIDATION}
