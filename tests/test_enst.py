"""adt.data.datasets.enst on a tiny archive in the official layout (tests/layouts/enst.py)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adt.audio import read_audio
from adt.config import get_profile
from adt.data.archives import extract
from adt.data.datasets import BEAT_COLUMNS, ONSET_COLUMNS, TRACK_COLUMNS, enst
from adt.data.download import ManualDownloadRequired, fetch, fetch_all
from adt.vocab import CLASSES_5
from tests.layouts import enst as layout

Q = 2 / 2**15  # two 16-bit quantization steps

MINUS_ONE = {d: [n for n, m in tracks if m] for d, tracks in layout.TRACKS.items()}
N_EVENTS = len(layout.EVENTS)
N_KEPT = sum(1 for _, lab in layout.EVENTS if lab not in ("cb", "sweep"))


def _profile(**kw):
    return dataclasses.replace(get_profile("tiny").data, **kw)


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory) -> Path:
    """The fixture archive placed by hand into a downloads folder and unpacked."""
    tmp = tmp_path_factory.mktemp("enst")
    (tmp / "downloads").mkdir()
    for name, data in layout.archive_files().items():
        (tmp / "downloads" / name).write_bytes(data)
    raw, _ = fetch_all(enst.REMOTES, tmp / "downloads", tmp / "raw", progress=False)
    return raw


def test_manual_flow(tmp_path):
    remote = enst.REMOTES[0]
    assert remote.manual == enst.HOMEPAGE and remote.filename == layout.ARCHIVE and enst.ACCESS == "on request"
    downloads = tmp_path / "downloads"
    with pytest.raises(ManualDownloadRequired) as err:
        fetch(remote, downloads, progress=False)
    message = str(err.value)
    assert remote.manual in message and remote.filename in message and str(downloads.resolve()) in message
    assert not (downloads / remote.filename).exists()

    (downloads / remote.filename).write_bytes(layout.archive_files()[remote.filename])
    raw, checksums = fetch_all(enst.REMOTES, downloads, tmp_path / "raw", progress=False)
    assert list(checksums) == [remote.filename]
    assert (raw / layout.ROOT / "drummer_3" / "annotation").is_dir()
    tables = enst.build(raw, tmp_path / "out", _profile(tracks_per_split=1, max_duration_s=2.0))
    assert tables.tracks["split"].tolist() == ["train", "validation", "test"]
    assert len(tables.onsets) > 0


def test_manual_flow_from_mirror_folder(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / layout.ARCHIVE).write_bytes(layout.archive_files()[layout.ARCHIVE])
    with pytest.raises(ManualDownloadRequired, match="mirror folder"):
        fetch(enst.REMOTES[0], tmp_path / "empty_downloads", mirror=str(tmp_path / "no_such_mirror"),
              progress=False)
    path = fetch(enst.REMOTES[0], tmp_path / "downloads", mirror=str(mirror), progress=False)
    assert path.read_bytes() == (mirror / layout.ARCHIVE).read_bytes()


def test_load_index(raw_dir):
    index = enst.load_index(raw_dir)
    assert list(index.columns) == enst.INDEX_COLUMNS
    expected = [f"enst/{d}/{n}" for d, tracks in layout.TRACKS.items() for n, _ in sorted(tracks)]
    assert index["track_id"].tolist() == expected
    # the same index from the archive's folder itself
    assert enst.load_index(raw_dir / layout.ROOT)["annotation_path"].equals(index["annotation_path"])
    assert index["wet_mix_path"].notna().all()
    for row in index.itertuples():
        assert Path(row.annotation_path).is_file() and Path(row.wet_mix_path).is_file()
        assert row.minus_one == pd.notna(row.accompaniment_path) == ("minus-one" in row.name)
    assert int(index["minus_one"].sum()) == 8

    row = index.set_index("name").loc["121_MIDI-minus-one_bigband_brushes"]
    assert (row.kind, row["style"], row.implement, row.drummer) == ("MIDI-minus-one", "bigband", "brushes",
                                                                     "drummer_1")
    assert index.set_index("name").loc["127_minus-one_rock-60s_sticks", "style"] == "rock-60s"
    assert pd.isna(index.set_index("name").loc["001_hits_snare-drum_sticks_x6", "style"])

    with pytest.raises(FileNotFoundError, match="drummer_N"):
        enst.load_index(raw_dir / layout.ROOT / "drummer_1" / "audio")


def test_split_by_drummer(raw_dir):
    index = enst.load_index(raw_dir)
    split = dict(zip(index["track_id"], index["split"]))
    for d in ("drummer_1", "drummer_2"):
        assert {s for t, s in split.items() if f"/{d}/" in t} == {"train"}
    held = sorted(MINUS_ONE["drummer_3"])  # 4 minus-one tracks: first half validation, rest test
    assert [split[f"enst/drummer_3/{n}"] for n in held] == ["validation", "validation", "test", "test"]
    assert pd.isna(split["enst/drummer_3/001_hits_snare-drum_sticks_x6"])

    # the minus-one selection, drummers in turn within train
    selected = enst.select_tracks(index, None)
    assert selected["minus_one"].all() and len(selected) == 8
    assert selected["track_id"].tolist() == [
        "enst/drummer_1/107_minus-one_salsa_sticks", "enst/drummer_2/115_minus-one_salsa_sticks",
        "enst/drummer_1/121_MIDI-minus-one_bigband_brushes", "enst/drummer_2/130_MIDI-minus-one_bigband_sticks",
        *[f"enst/drummer_3/{n}" for n in held]]
    assert enst.select_tracks(index, 1)["split"].tolist() == ["train", "validation", "test"]


def test_label_mapping():
    assert len(enst.LABELS) == 20
    assert {enst.label_class(lab) for lab in ("bd",)} == {"BD"}
    assert {enst.label_class(lab) for lab in ("sd", "sd-", "rs", "cs")} == {"SD"}
    assert {enst.label_class(lab) for lab in ("lft", "lt", "lmt", "mt", "ltr", "mtr")} == {"TT"}
    assert {enst.label_class(lab) for lab in ("chh", "ohh")} == {"HH"}
    assert {enst.label_class(lab) for lab in ("cr", "cr1", "cr5", "rc", "rc3", "ch5", "spl2", "c", "c4")} == {"CY"}
    assert [enst.label_class(lab) for lab in ("cb", "sticks", "sweep", "xyz", "BD")] == [None] * 5
    assert set(enst.CLASS_MAP.values()) == set(CLASSES_5)


def test_track_onsets(raw_dir):
    tracks = enst.load_tracks(raw_dir)
    assert len(tracks) == 11
    track = tracks["enst/drummer_1/107_minus-one_salsa_sticks"]
    assert track.minus_one and track.split == "train" and track.style == "salsa"
    on = track.onsets
    assert list(on.columns) == ONSET_COLUMNS and len(on) == N_KEPT
    assert on["time_s"].is_monotonic_increasing and on["velocity"].isna().all()
    assert not {"cb", "sweep"} & set(on["label"])
    assert {"sd-", "rc3", "mtr", "cr1", "spl2", "c1", "ch5"} <= set(on["label"])  # labels kept as written
    assert (on["drum"] == on["label"].map(enst.label_class)).all()
    assert set(on["drum"]) == set(CLASSES_5)
    assert track.beats.empty and list(track.beats.columns) == BEAT_COLUMNS
    assert not tracks["enst/drummer_1/045_phrase_rock_simple_medium_sticks"].minus_one


def test_unknown_label_dropped_with_warning(tmp_path, caplog):
    path = tmp_path / "x.txt"
    path.write_text("0.5 bd\n0.7 xyz\n\n0.9 cb\n1.0 rc2\n")
    with caplog.at_level(logging.WARNING, logger="adt.data.datasets.enst"):
        on = enst.Track(track_id="enst/drummer_9/x", drummer="drummer_9", name="x", annotation_path=str(path)).onsets
    assert on["label"].tolist() == ["bd", "rc2"] and on["drum"].tolist() == ["BD", "CY"]
    assert str(path) in caplog.text and "xyz" in caplog.text and "cb" not in caplog.text


def test_malformed_annotation(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("0.5 bd\n0.6\n")
    with pytest.raises(ValueError, match=f"{path}:2"):
        enst.read_annotation(path)
    for bad in ("abc sd\n", "0.1 sd extra\n", "-1 sd\n", "nan sd\n"):
        path.write_text("0.5 bd\n" + bad)
        with pytest.raises(ValueError, match=":2: expected"):
            enst.read_annotation(path)


def test_malformed_annotation_fails_build(tmp_path):
    raw = extract(_write_archive(tmp_path), tmp_path / "raw")
    ann = raw / layout.ROOT / "drummer_1" / "annotation" / "107_minus-one_salsa_sticks.txt"
    ann.write_text(ann.read_text() + "3.1 rc 1\n")
    with pytest.raises(ValueError, match=f"{ann}:{N_EVENTS + 1}"):
        enst.build(raw, tmp_path / "out", _profile(tracks_per_split=1, max_duration_s=2.0))


def _write_archive(tmp_path: Path) -> Path:
    path = tmp_path / layout.ARCHIVE
    path.write_bytes(layout.archive_files()[layout.ARCHIVE])
    return path


def test_mix_is_wet_plus_accompaniment(raw_dir):
    tracks = enst.load_tracks(raw_dir)
    track = tracks["enst/drummer_1/107_minus-one_salsa_sticks"]
    mix, sr = track.mix_audio()
    wet, _ = read_audio(track.wet_mix_path)
    acc, _ = read_audio(track.accompaniment_path)
    assert sr == layout.SR and mix.shape == (1, int(layout.ACC_S * layout.SR))  # padded to the longer file
    i = int(round(0.35 * sr)) + 20  # inside the snare's tone
    assert abs(wet[0, i]) > 0.1 and abs(acc[0, i]) > 0.01
    assert mix[0, i] == pytest.approx(wet[0, i] + acc[0, i], abs=1e-6)
    np.testing.assert_allclose(mix[0, wet.shape[1]:], acc[0, wet.shape[1]:], atol=1e-6)  # the padded tail
    drums, _ = track.drum_audio()
    np.testing.assert_array_equal(drums, wet)

    stereo = tracks["enst/drummer_1/121_MIDI-minus-one_bigband_brushes"]  # mono wet, stereo accompaniment
    mix2, _ = stereo.mix_audio()
    acc2, _ = read_audio(stereo.accompaniment_path)
    assert mix2.shape[0] == 2
    np.testing.assert_allclose(mix2[1, :100] - mix2[0, :100], acc2[1, :100] - acc2[0, :100], atol=1e-6)

    with pytest.raises(FileNotFoundError, match="not a minus-one track"):
        tracks["enst/drummer_3/001_hits_snare-drum_sticks_x6"].mix_audio()


def test_build_cropped(raw_dir, tmp_path):
    profile = _profile(tracks_per_split=1, max_duration_s=2.0)
    tables = enst.build(raw_dir, tmp_path / "out", profile)
    tracks, onsets, beats = tables.tracks, tables.onsets, tables.beats
    assert list(tracks.columns) == TRACK_COLUMNS and list(onsets.columns) == ONSET_COLUMNS
    assert list(beats.columns) == BEAT_COLUMNS and beats.empty
    assert tracks["track_id"].tolist() == ["enst/drummer_1/107_minus-one_salsa_sticks",
                                           "enst/drummer_3/126_minus-one_salsa_sticks",
                                           "enst/drummer_3/140_MIDI-minus-one_bigband_sticks"]
    assert tracks["split"].tolist() == ["train", "validation", "test"]
    assert (tracks["dataset"] == "enst").all() and tracks["midi_path"].isna().all()
    assert tracks["drummer"].tolist() == ["drummer_1", "drummer_3", "drummer_3"]
    assert tracks["style"].tolist() == ["salsa", "salsa", "bigband"]
    assert (tracks["duration_s"] == 2.0).all() and (tracks["sample_rate"] == layout.SR).all()

    index = enst.load_index(raw_dir).set_index("track_id")
    for t in tracks.itertuples():
        folder = tmp_path / "out" / f"{t.drummer}__{t.track_id.rsplit('/', 1)[1]}"
        assert Path(t.mix_path) == folder / "mix.wav" and Path(t.drum_path) == folder / "drums.wav"
        mix, sr = read_audio(t.mix_path)
        drums, _ = read_audio(t.drum_path)
        wet, _ = read_audio(index.loc[t.track_id, "wet_mix_path"])
        acc, _ = read_audio(index.loc[t.track_id, "accompaniment_path"])
        assert mix.shape == drums.shape == (1, 2 * sr)
        assert np.abs(mix).max() <= enst.PEAK + Q
        # one gain for mix and drums: min(1, 0.9 / peak of the whole summed track)
        full = wet[0] + acc[0, : wet.shape[1]]
        gain = min(1.0, enst.PEAK / max(np.abs(full).max(), np.abs(acc).max(), np.abs(wet).max()))
        np.testing.assert_allclose(drums[0], gain * wet[0, : 2 * sr], atol=Q)
        np.testing.assert_allclose(mix[0], gain * (wet[0, : 2 * sr] + acc[0, : 2 * sr]), atol=Q)
        o = onsets[onsets.track_id == t.track_id]
        assert len(o) == sum(1 for time, lab in layout.EVENTS if time < 2.0 and lab not in ("cb", "sweep"))
        assert (o["time_s"] < t.duration_s).all()
    loud = np.abs(read_audio(tracks["mix_path"][1])[0]).max()
    assert loud == pytest.approx(enst.PEAK, abs=Q)  # the loud track was scaled down to the peak
    i = int(round(0.35 * layout.SR)) + 20  # the quiet train track is unscaled: mix = wet + acc exactly
    mix, _ = read_audio(tracks["mix_path"][0])
    wet, _ = read_audio(index.loc[tracks["track_id"][0], "wet_mix_path"])
    acc, _ = read_audio(index.loc[tracks["track_id"][0], "accompaniment_path"])
    assert mix[0, i] == pytest.approx(wet[0, i] + acc[0, i], abs=Q)

    assert set(onsets["drum"]) <= set(CLASSES_5) and onsets["velocity"].isna().all()
    assert (onsets["drum"] == onsets["label"].map(enst.label_class)).all()

    # the mixed files are reused
    paths = [Path(p) for p in [*tracks["mix_path"], *tracks["drum_path"]]]
    mtimes = [p.stat().st_mtime_ns for p in paths]
    again = enst.build(raw_dir, tmp_path / "out", profile)
    pd.testing.assert_frame_equal(again.tracks, tracks)
    assert [p.stat().st_mtime_ns for p in paths] == mtimes


def test_build_all_uncropped(raw_dir, tmp_path):
    tables = enst.build(raw_dir, tmp_path / "out", _profile(tracks_per_split=None, max_duration_s=None))
    tracks = tables.tracks
    assert len(tracks) == 8 and tracks["split"].value_counts().to_dict() == {"train": 4, "validation": 2,
                                                                             "test": 2}
    assert np.allclose(tracks["duration_s"], layout.ACC_S, atol=1 / layout.SR)  # padded to the accompaniment
    stereo = tracks[tracks.track_id.str.endswith("121_MIDI-minus-one_bigband_brushes")].iloc[0]
    mix, _ = read_audio(stereo.mix_path)
    drums, _ = read_audio(stereo.drum_path)
    assert mix.shape[0] == drums.shape[0] == 2
    assert len(tables.onsets) == 8 * N_KEPT
