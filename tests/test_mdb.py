"""adt.data.datasets.mdb on the real (mirrored) MDB Drums subset and its multitracks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import soundfile as sf
import yaml

from adt.audio import read_audio
from adt.config import get_profile
from adt.data.archives import extract
from adt.data.datasets import BEAT_COLUMNS, ONSET_COLUMNS, TRACK_COLUMNS, mdb
from adt.data.download import ChecksumError, DownloadError, fetch, fetch_all
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


@pytest.fixture(scope="module")
def full_raw(shared_datasets, tmp_path_factory) -> Path:
    """Both mirrored archives (subset and multitracks) as the pipeline gets them: fetch_all's raw
    folder, each archive in ``<raw>/<archive name without .zip>/``."""
    if not (shared_datasets / mdb.REMOTES[1].filename).is_file():
        pytest.fail(f"the real-data mirror lacks {mdb.REMOTES[1].filename}: {shared_datasets}")
    tmp = tmp_path_factory.mktemp("mdb_full")
    raw, checksums = fetch_all(mdb.REMOTES, tmp / "downloads", tmp / "raw", mirror=str(shared_datasets),
                               progress=False)
    assert checksums == {r.filename: r.sha256[0] for r in mdb.REMOTES}  # the mirror's accepted digests
    return raw


def test_load_index(raw_dir):
    index = mdb.load_index(raw_dir)
    assert index["name"].tolist() == DRUM_ONLY  # 9 drum-only recordings, sorted
    assert list(index.columns) == mdb.INDEX_COLUMNS
    assert index["beats_path"].notna().all() and index["subclass_path"].notna().all()
    assert index["mix_path"].isna().all()  # no mixes in this subset
    assert index["multitrack_dir"].isna().all()  # nor multitracks
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
    profile = get_profile("tiny").data  # 2 tracks, cropped to 12 s
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
    profile = dataclasses.replace(get_profile("tiny").data, mdb_tracks=None, max_duration_s=None)
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
    with pytest.raises(FileNotFoundError, match="no multitracks"):
        punk.raws()


def test_genre_split(raw_dir, tmp_path):
    assert len(mdb.GENRE_SPLIT) == 23  # every MDB Drums track, once
    profile = dataclasses.replace(get_profile("tiny").data, mdb_tracks=None, mdb_split="genre", max_duration_s=2.0)
    tracks = mdb.build(raw_dir, tmp_path / "out", profile).tracks
    split = dict(zip(tracks.track_id, tracks.split))
    assert split["mdb/MusicDelta_Punk"] == "train"  # the one track the thesis names
    assert split["mdb/MusicDelta_Britpop"] == "validation" and split["mdb/MusicDelta_SpeedMetal"] == "test"
    with pytest.raises(ValueError, match="unknown MDB split"):
        mdb.split_of("MusicDelta_Punk", "random")


# --------------------------------------------------------------------------- multitracks


def test_load_index_finds_multitracks(full_raw):
    assert sorted(p.name for p in full_raw.iterdir()) == ["mdb-drums-multitracks", "mdb-drums-subset"]
    index = mdb.load_index(full_raw)
    assert index["name"].tolist() == DRUM_ONLY and list(index.columns) == mdb.INDEX_COLUMNS
    for row in index.itertuples():  # every drum-only song has its multitrack; METADATA-only songs are not indexed
        folder = Path(row.multitrack_dir)
        assert folder.is_absolute() and folder.name == row.name
        assert (folder / f"{row.name}_METADATA.yaml").is_file() and (folder / f"{row.name}_RAW").is_dir()
    # the subset's own folder alone: as before, no multitracks
    alone = mdb.load_index(full_raw / "mdb-drums-subset")
    assert alone["multitrack_dir"].isna().all() and alone["drum_path"].equals(index["drum_path"])
    tracks = mdb.load_tracks(full_raw)
    assert tracks["mdb/MusicDelta_Punk"].multitrack_dir == index["multitrack_dir"][DRUM_ONLY.index("MusicDelta_Punk")]


def test_raws_and_roles(full_raw):
    tracks = mdb.load_tracks(full_raw)
    n_raws = 0
    for track in tracks.values():
        raws = track.raws()
        roles = [role for _, role in raws]
        assert roles.count("drums") == 1 and roles.count("bass") == 1 and "other" in roles
        assert all(Path(p).is_file() and Path(p).parent.name == f"{track.name}_RAW" for p, _ in raws)
        n_raws += len(raws)
    assert n_raws == 47  # as the mirror's README counts them
    shadows = [(Path(p).name, role) for p, role in tracks["mdb/MusicDelta_Shadows"].raws()]
    assert shadows[:2] == [("MusicDelta_Shadows_RAW_01_01.wav", "bass"), ("MusicDelta_Shadows_RAW_02_01.wav", "drums")]
    assert [mdb.stem_role(i) for i in ("drum set", "Electric Bass", "double bass", "bass drum", "bassoon",
                                      "male singer", "distorted electric guitar")] == \
        ["drums", "bass", "bass", "other", "other", "other", "other"]


@pytest.mark.parametrize("name", ["MusicDelta_Punk", "MusicDelta_Shadows"])
def test_real_mix_is_the_sum_of_the_raws(full_raw, name):
    track = mdb.load_tracks(full_raw)[f"mdb/{name}"]
    song = mdb.render_multitrack(track.multitrack_dir)
    raws = [read_audio(p, mono=True)[0].astype(np.float64) for p, _ in track.raws()]
    total = np.sum(raws, axis=0)
    assert song.gain == pytest.approx(min(1.0, mdb.MIX_PEAK / np.abs(total).max()))
    assert song.sample_rate == 44100 and song.mix.dtype == np.float32 and song.mix.shape == total.shape
    assert np.abs(song.mix - total * song.gain).max() < 1e-6
    assert list(song.stems) == ["drums", "bass", "other"]
    assert np.abs(np.sum(list(song.stems.values()), axis=0) - song.mix).max() < 1e-6
    assert np.abs(song.mix).max() <= mdb.MIX_PEAK + 1e-6
    # one gain for all: the drums stem is the drum-only recording (the same take) times the gain
    drums, _ = read_audio(track.drum_path, mono=True)
    assert np.abs(song.stems["drums"] - drums * song.gain).max() < 1e-6
    assert np.array_equal(track.real_mix(), song.mix) and np.array_equal(track.stems()["bass"], song.stems["bass"])
    if name == "MusicDelta_Shadows":  # its raws sum well above full scale: scaled down to -1 dBFS
        assert song.gain < 0.5 and np.abs(song.mix).max() == pytest.approx(mdb.MIX_PEAK, abs=1e-6)


def test_build_writes_real_mixes_and_stems(full_raw, raw_dir, tmp_path):
    profile = get_profile("tiny").data  # 2 tracks, cropped to 12 s
    assert profile.mdb_real_mix is False
    default = mdb.build(full_raw, tmp_path / "out", profile)
    # by default the tables are those of the subset alone (the graph's figures do not move)
    subset = mdb.build(raw_dir, tmp_path / "subset", profile)
    assert default.tracks.drop(columns="drum_path").equals(subset.tracks.drop(columns="drum_path"))
    assert default.onsets.equals(subset.onsets) and default.beats.equals(subset.beats)
    assert default.tracks["mix_path"].isna().all()

    index = mdb.load_index(full_raw).set_index("name")
    for t in default.tracks.itertuples():
        name = t.track_id.split("/", 1)[1]
        folder = tmp_path / "out" / name
        mix, sr = read_audio(folder / "mix.wav", mono=True)
        assert sr == 44100 and len(mix) == round(t.duration_s * sr) == 12 * sr
        assert sf.info(str(folder / "mix.wav")).subtype == "FLOAT"
        song = mdb.render_multitrack(index.loc[name, "multitrack_dir"])
        assert np.array_equal(mix, song.mix[: len(mix)])  # float WAV: exact
        stems = mdb.stem_paths(folder / "mix.wav")
        assert list(stems) == ["drums", "bass", "other"] and stems == mdb.stem_paths(folder)
        total = np.sum([read_audio(p, mono=True)[0] for p in stems.values()], axis=0)
        assert np.abs(total - mix).max() < 1e-4
        assert np.abs(mix).max() <= mdb.MIX_PEAK + 1e-6

    real = dataclasses.replace(profile, mdb_real_mix=True)
    assert real.digest() != profile.digest()
    tables = mdb.build(full_raw, tmp_path / "out", real)
    assert [Path(p) for p in tables.tracks["mix_path"]] == [tmp_path / "out" / n / "mix.wav" for n in DRUM_ONLY[:2]]
    assert tables.tracks.drop(columns="mix_path").equals(default.tracks.drop(columns="mix_path"))
    # the written files are reused
    files = sorted((tmp_path / "out").rglob("*.wav"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert mdb.build(full_raw, tmp_path / "out", real).tracks.equals(tables.tracks)
    assert [f.stat().st_mtime_ns for f in files] == mtimes


def test_build_uncropped_real_mix(full_raw, tmp_path):
    profile = dataclasses.replace(get_profile("tiny").data, mdb_tracks=1, max_duration_s=None, mdb_real_mix=True)
    (t,) = mdb.build(full_raw, tmp_path / "out", profile).tracks.itertuples()
    assert Path(t.drum_path) == Path(mdb.load_index(full_raw)["drum_path"][0])  # the original, as before
    mix, sr = read_audio(t.mix_path, mono=True)
    drums, _ = read_audio(t.drum_path, mono=True)
    assert len(mix) == len(drums) == round(t.duration_s * sr)


def test_tracks_with_and_without_multitracks(tmp_path):
    """The official-layout fixture (tests/layouts/mdb.py): Punk has multitracks, Britpop none, and a
    METADATA-only song; both archives unpacked by fetch_all as the pipeline does."""
    import hashlib

    from tests.layouts import mdb as layout

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    remotes = []
    for remote in mdb.REMOTES:
        data = layout.archive_files()[remote.filename]
        (mirror / remote.filename).write_bytes(data)
        remotes.append(dataclasses.replace(remote, sha256=(hashlib.sha256(data).hexdigest(),)))
    raw, _ = fetch_all(remotes, tmp_path / "downloads", tmp_path / "raw", mirror=str(mirror), progress=False)
    index = mdb.load_index(raw)
    assert index["name"].tolist() == ["MusicDelta_Britpop", "MusicDelta_Punk"]
    assert index["multitrack_dir"][0] is None and Path(index["multitrack_dir"][1]).name == "MusicDelta_Punk"
    profile = dataclasses.replace(get_profile("tiny").data, max_duration_s=3.0, mdb_real_mix=True)
    tracks = mdb.build(raw, tmp_path / "out", profile).tracks.set_index("track_id")
    assert pd.isna(tracks.loc["mdb/MusicDelta_Britpop", "mix_path"])  # no multitracks: no mix, as before
    assert mdb.stem_paths(tmp_path / "out" / "MusicDelta_Britpop") == {}
    assert Path(tracks.loc["mdb/MusicDelta_Punk", "mix_path"]) == tmp_path / "out" / "MusicDelta_Punk" / "mix.wav"
    assert (tracks["duration_s"] == 3.0).all()


def test_real_song_folds(raw_dir, full_raw):
    names = [n for fold in mdb.REAL_SONG_FOLDS for n in fold]
    assert len(mdb.REAL_SONG_FOLDS) == 3 and all(len(f) == 3 for f in mdb.REAL_SONG_FOLDS)
    assert sorted(names) == sorted(set(names)) == DRUM_ONLY == mdb.load_index(raw_dir)["name"].tolist()
    for i, fold in enumerate(mdb.REAL_SONG_FOLDS):
        assert all(mdb.fold_of(n) == i for n in fold)
        train, test = mdb.folds_for(i)
        assert set(test) == set(fold) and not set(train) & set(test) and sorted(train + test) == DRUM_ONLY
    # balanced by the METADATA genre: two Rock songs and one other per fold
    index = mdb.load_index(full_raw).set_index("name")
    for fold in mdb.REAL_SONG_FOLDS:
        genres = [yaml.safe_load((Path(index.loc[n, "multitrack_dir"]) / f"{n}_METADATA.yaml").read_text())["genre"]
                  for n in fold]
        assert genres.count("Rock") == 2, (fold, genres)
    with pytest.raises(ValueError, match="MusicDelta_Disco"):
        mdb.fold_of("MusicDelta_Disco")
    with pytest.raises(ValueError, match="test fold 3"):
        mdb.folds_for(3)


# --------------------------------------------------------------------------- bad multitracks


def _fake_multitrack(root: Path, name: str, raws: dict[str, tuple[str, int]], sr: int = 44100,
                     level: float = 0.5) -> Path:
    """``<root>/<name>/`` with a METADATA naming ``raws`` (file -> (instrument, samples; 0: not written)),
    each raw constant at ``level``."""
    folder = root / name
    (folder / f"{name}_RAW").mkdir(parents=True)
    stems = {}
    for i, (filename, (instrument, n)) in enumerate(raws.items(), 1):
        raw = {"filename": filename, "instrument": instrument}
        stems[f"S{i:02d}"] = {"instrument": instrument, "raw": {"R01": raw}}
        if n:
            sf.write(str(folder / f"{name}_RAW" / filename), np.full(n, level, dtype=np.float32), sr)
    (folder / f"{name}_METADATA.yaml").write_text(yaml.safe_dump({"genre": "Rock", "stems": stems}))
    return folder


def test_bad_multitracks_raise_clear_errors(tmp_path):
    missing = _fake_multitrack(tmp_path, "Missing", {"d.wav": ("drum set", 100), "b.wav": ("electric bass", 0)})
    with pytest.raises(FileNotFoundError, match=r"b\.wav.*Missing_METADATA\.yaml"):
        mdb.render_multitrack(missing)
    uneven = _fake_multitrack(tmp_path, "Uneven", {"d.wav": ("drum set", 100), "g.wav": ("acoustic guitar", 90)})
    with pytest.raises(ValueError, match=r"Uneven: raws of different lengths.*d\.wav.*g\.wav"):
        mdb.render_multitrack(uneven)
    rate = _fake_multitrack(tmp_path, "Rate", {"d.wav": ("drum set", 100)}, sr=22050)
    with pytest.raises(ValueError, match="22050 Hz"):
        mdb.render_multitrack(rate)
    nodrums = _fake_multitrack(tmp_path, "NoDrums", {"g.wav": ("acoustic guitar", 100)})
    with pytest.raises(ValueError, match="no 'drum set' raw"):
        mdb.render_multitrack(nodrums)
    bad = _fake_multitrack(tmp_path, "Bad", {"d.wav": ("drum set", 100)})
    (bad / "Bad_METADATA.yaml").write_text("stems: [unclosed")
    with pytest.raises(ValueError, match="malformed METADATA"):
        mdb.render_multitrack(bad)
    escaping = _fake_multitrack(tmp_path, "Escaping", {"d.wav": ("drum set", 100)})
    doc = yaml.safe_load((escaping / "Escaping_METADATA.yaml").read_text())
    doc["stems"]["S01"]["raw"]["R01"]["filename"] = "../../d.wav"
    (escaping / "Escaping_METADATA.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ValueError, match="plain 'filename'"):
        mdb.render_multitrack(escaping)
    # two drum-set raws: both drums; the sum (1.0) is scaled to -1 dBFS
    two = mdb.render_multitrack(_fake_multitrack(tmp_path, "Two", {"a.wav": ("drum set", 100),
                                                                   "b.wav": ("drum set", 100)}))
    assert list(two.stems) == ["drums"] and two.gain == pytest.approx(0.891)
    assert np.allclose(two.mix, 0.891) and np.array_equal(two.stems["drums"], two.mix)
    # a quiet song keeps unity gain; no "other" raw: no "other" stem
    quiet = mdb.render_multitrack(_fake_multitrack(tmp_path, "Quiet", {"a.wav": ("drum set", 100),
                                                                       "b.wav": ("double bass", 100)}, level=0.25))
    assert quiet.gain == 1.0 and list(quiet.stems) == ["drums", "bass"] and np.allclose(quiet.mix, 0.5)


@pytest.mark.faults
def test_corrupt_multitracks_archive_is_named(shared_datasets, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / mdb.REMOTES[0].filename).symlink_to(shared_datasets / mdb.REMOTES[0].filename)
    data = bytearray((shared_datasets / mdb.REMOTES[1].filename).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (mirror / mdb.REMOTES[1].filename).write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="mdb-drums-multitracks.zip.*checksum mismatch"):
        fetch_all(mdb.REMOTES, tmp_path / "downloads", tmp_path / "raw", mirror=str(mirror), progress=False)
    assert not (tmp_path / "downloads" / mdb.REMOTES[1].filename).exists()
    assert [p.name for p in (tmp_path / "downloads").iterdir() if not p.name.endswith(".json")] == \
        [mdb.REMOTES[0].filename]  # no temporary copy left
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())  # nothing extracted


@pytest.mark.faults
def test_missing_multitracks_archive_is_named(shared_datasets, http_server, tmp_path):
    """The mirror lacks the multitracks and the official URL (here a local server) has nothing."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / mdb.REMOTES[0].filename).symlink_to(shared_datasets / mdb.REMOTES[0].filename)
    remotes = [mdb.REMOTES[0], dataclasses.replace(mdb.REMOTES[1], url=f"{http_server.base}/MDBDrums/master.zip")]
    with pytest.raises(DownloadError, match="mdb-drums-multitracks.zip from .*404"):
        fetch_all(remotes, tmp_path / "downloads", tmp_path / "raw", mirror=str(mirror), progress=False)
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())
