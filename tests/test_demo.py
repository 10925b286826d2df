"""The generated demo corpus (adt.data.datasets.demo)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from adt.config import PROFILES
from adt.data.datasets import BEAT_COLUMNS, ONSET_COLUMNS, SPLITS, TRACK_COLUMNS, demo
from adt.midi import load_midi, onsets_from_midi
from adt.data.render import KITS


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return demo.generate_corpus(tmp_path_factory.mktemp("demo") / "raw", n_tracks=10, duration_s=10.0, seed=7)


def _meta(raw) -> pd.DataFrame:
    return pd.read_csv(raw / "metadata.csv", dtype={"name": str})


def test_module_constants():
    assert demo.NAME == "demo" and demo.REMOTES == [] and demo.CITATION is None and "CC0" in demo.LICENSE
    assert {"rock", "funk", "shuffle", "disco", "halftime"} <= set(demo.STYLES)
    assert demo.STYLES["shuffle"].swing


def test_deterministic_for_seed(corpus, tmp_path):
    again = demo.generate_corpus(tmp_path / "again", n_tracks=10, duration_s=10.0, seed=7)
    other = demo.generate_corpus(tmp_path / "other", n_tracks=10, duration_s=10.0, seed=8)
    assert (again / "metadata.csv").read_bytes() == (corpus / "metadata.csv").read_bytes()
    names = sorted(p.name for p in (corpus / "midi").glob("*.mid"))
    assert len(names) == 10
    for name in names:
        assert (again / "midi" / name).read_bytes() == (corpus / "midi" / name).read_bytes()
    assert any((other / "midi" / n).read_bytes() != (corpus / "midi" / n).read_bytes() for n in names)
    assert not list(corpus.rglob(".tmp-*"))


def test_metadata_styles_kits_splits(corpus):
    meta = _meta(corpus)
    assert list(meta.columns) == demo.METADATA_COLUMNS
    assert set(meta["style"]) == set(demo.STYLES)
    assert set(meta["split"]) == set(SPLITS)
    assert set(meta["kit"]) <= set(KITS) and meta["kit"].nunique() >= 3
    for row in meta.itertuples():
        lo, hi = demo.STYLES[row.style].bpm
        assert lo <= row.bpm <= hi


@pytest.mark.parametrize("n", [3, 4, 7, 24, 96])
def test_every_split_non_empty(n):
    splits = demo._splits(n)
    assert len(splits) == n and set(splits) == set(SPLITS)
    if n >= 20:
        assert 0.6 <= splits.count("train") / n <= 0.8


def test_grooves_have_bd_sd_hh_and_tom_fills(corpus):
    for row in _meta(corpus).itertuples():
        pm = load_midi(corpus / "midi" / f"{row.name}.mid")
        on = onsets_from_midi(pm, row.name)
        assert {"BD", "SD", "HH", "TT", "CY"} <= set(on["drum"]), row.name
        assert pm.time_signature_changes[0].numerator == 4
        assert abs(pm.get_tempo_changes()[1][0] - row.bpm) < 0.01
        bar_s = 4 * 60.0 / row.bpm
        n_bars = int(round((pm.get_end_time() - 0.9 * 60.0 / row.bpm) / bar_s))
        toms = on.loc[on["drum"] == "TT", "time_s"].to_numpy()
        bar, pos = np.divmod(toms + 0.02, bar_s)  # allow for the timing jitter
        fill_bar = (bar % 4 == 3) | (bar == n_bars - 1)
        assert fill_bar.all() and (pos >= bar_s / 2 - 0.03).all(), row.name  # fills on beats 3-4


def test_shuffle_is_swung(corpus):
    row = _meta(corpus).query("style == 'shuffle'").iloc[0]
    pm = load_midi(corpus / "midi" / f"{row['name']}.mid")
    on = onsets_from_midi(pm, row["name"])
    beat_s = 60.0 / row["bpm"]
    hh = on.loc[on["drum"].isin(["HH", "CY"]), "time_s"].to_numpy()
    frac = ((hh + 0.02) % beat_s) / beat_s - 0.02 / beat_s  # position within the beat
    off = frac[frac > 0.15]
    assert len(off) > 5 and np.all(np.abs(off - 2 / 3) < 0.06)  # third triplet, not the straight "and"


def test_build_tables_and_audio(corpus, tmp_path):
    raw = tmp_path / "raw3"
    demo.generate_corpus(raw, n_tracks=3, duration_s=6.0, seed=1)
    profile = dataclasses.replace(PROFILES["tiny"].data, max_duration_s=5.0)
    out = tmp_path / "out"
    tables = demo.build(raw, out, profile)
    assert list(tables.tracks.columns) == TRACK_COLUMNS
    assert list(tables.onsets.columns) == ONSET_COLUMNS
    assert list(tables.beats.columns) == BEAT_COLUMNS
    tracks = tables.tracks
    assert len(tracks) == 3 and set(tracks["split"]) == set(SPLITS)
    assert (tracks["dataset"] == "demo").all() and tracks["track_id"].str.startswith("demo/").all()
    assert (tracks["sample_rate"] == 44100).all() and tracks["drummer"].isna().all()
    assert np.allclose(tracks["duration_s"], 5.0, atol=1e-4)
    for row in tracks.itertuples():
        for path in (row.mix_path, row.drum_path):
            info = sf.info(path)
            assert info.samplerate == 44100 and info.channels == 2
            assert abs(info.frames / 44100 - row.duration_s) < 1e-3
        mix, _ = sf.read(row.mix_path, dtype="float32")
        drums, _ = sf.read(row.drum_path, dtype="float32")
        assert 0.8 < np.abs(mix).max() <= 0.9 + 1e-3 and np.abs(drums).max() > 0.1
        assert np.abs(mix - drums).max() > 0.01  # accompaniment present
        on = tables.onsets[tables.onsets["track_id"] == row.track_id]
        assert {"BD", "SD", "HH"} <= set(on["drum"]) and (on["time_s"] < row.duration_s).all()
        be = tables.beats[tables.beats["track_id"] == row.track_id]
        assert len(be) > 4 and (be["time_s"] < row.duration_s + 1e-6).all() and be["position"].iloc[0] == 1
    # cached: a second build renders nothing
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    again = demo.build(raw, out, profile)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == mtimes
    pd.testing.assert_frame_equal(again.tracks, tables.tracks)


def test_build_on_recorded_kits_kit_disjoint_with_stems(tmp_path, shared_datasets, monkeypatch):
    """The demo corpus on recorded kits (Debian hydrogen-data: TR808 emulation for training,
    GMRockKit for validation and test), augmented: each split renders only its kits, the stems sum
    to the mix, and a changed recipe (augmentation off) renders again."""
    from adt.data.kits.packages import fetch_package

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    fetch_package("hydrogen-data", mirror=str(shared_datasets))
    raw = tmp_path / "raw"
    demo.generate_corpus(raw, n_tracks=3, duration_s=6.0, seed=1)
    kits = {"train": ("h2:TR808EmulationKit",), "validation": ("h2:GMRockKit",), "test": ("h2:GMRockKit",)}
    profile = dataclasses.replace(PROFILES["tiny"].data, max_duration_s=5.0, corpus_kits=kits, render_augment=True)
    out = tmp_path / "out"
    tracks = demo.build(raw, out, profile).tracks
    assert {(r.split, r.kit) for r in tracks.itertuples()} == {(s, k[0]) for s, k in kits.items()}
    for row in tracks.itertuples():
        folder = out / row.track_id.removeprefix("demo/")
        stems = {s: sf.read(folder / f"{s}.wav", dtype="float32")[0] for s in ("drums", "bass", "other", "mix")}
        assert np.abs(stems["drums"] + stems["bass"] + stems["other"] - stems["mix"]).max() < 2e-4  # 16-bit
        assert np.abs(stems["bass"]).max() > 0.01 and np.abs(stems["drums"]).max() > 0.1
    before = (out / tracks.track_id[0].removeprefix("demo/") / "drums.wav").read_bytes()
    demo.build(raw, out, dataclasses.replace(profile, render_augment=False))
    assert (out / tracks.track_id[0].removeprefix("demo/") / "drums.wav").read_bytes() != before
