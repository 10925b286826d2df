"""Real songs in the loop (issue 26): feature-space augmentation, share sampling, the cross-validation
protocol, the real songs' training material read from the mirror, and the shipped model's input-level
robustness on a real song."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from adt.data.datasets.mdb_folds import validation_songs
from adt.evaluation.real_songs import degenerate, summarize
from adt.features.augment import augment_features, band_frequencies


def test_gain_alone_scales_the_magnitude_of_every_band_alike():
    g = torch.Generator().manual_seed(0)
    x = torch.log1p(torch.rand(3, 50, 80, generator=g) * 200)
    y = augment_features(x, "log_mel", torch.Generator().manual_seed(1), gain_db=20.0, shape=None)
    ratio = torch.expm1(y) / torch.expm1(x)
    per_segment = ratio.reshape(3, -1)
    assert torch.allclose(per_segment, per_segment[:, :1].expand_as(per_segment), rtol=1e-3)
    db = 20 * torch.log10(per_segment[:, 0])
    assert (db.abs() <= 20.0 + 1e-3).all() and db.std() > 0  # a different gain per segment
    same = augment_features(x, "log_mel", torch.Generator().manual_seed(1), gain_db=20.0, shape=None)
    assert torch.equal(y, same)  # seeded
    assert torch.allclose(augment_features(x, "log_mel", g, gain_db=0.0, shape=None), x, atol=1e-5)


def test_spectral_shape_cuts_highs_or_lows_on_some_segments():
    x = torch.log1p(torch.full((256, 4, 80), 100.0))
    y = augment_features(x, "log_mel", torch.Generator().manual_seed(2), gain_db=0.0, shape="mild")
    gain_db = 20 * torch.log10(torch.expm1(y[:, 0]) / 100.0)  # (256, 80)
    freqs = band_frequencies("log_mel")
    top, low = gain_db[:, freqs > 12000].mean(1), gain_db[:, freqs < 120].mean(1)
    assert (top < -6).float().mean() > 0.25  # low-passed hats on about half the segments
    assert (low < -3).float().mean() > 0.05  # high-passed kicks on some
    assert (top.abs() < 3).float().mean() > 0.2  # and untouched ones
    with pytest.raises(ValueError, match="bands"):
        augment_features(torch.zeros(1, 4, 84), "log_mel", torch.Generator())


def test_shares_set_how_often_each_folder_is_drawn(tmp_path):
    from adt.features.shards import ShardDataset, segment_loader, write_shards

    dirs = []
    for k, n_tracks in enumerate((6, 1)):
        items = []
        for j in range(n_tracks):
            x, y = tmp_path / f"{k}-{j}.x.npy", tmp_path / f"{k}-{j}.y.npy"
            np.save(x, np.full((400, 80), float(k), np.float32))
            np.save(y, np.zeros((400, 5), np.float32))
            items.append((x, y))
        write_shards(items, tmp_path / f"shards{k}")
        dirs.append(tmp_path / f"shards{k}")
    data = ShardDataset(dirs)
    weights = data.segment_weights([0.6, 0.4])
    loader = segment_loader(data, 50, 4000, seed=3, weights=weights)
    drawn = torch.cat([x[:, 0, 0] for x, _ in loader])
    assert abs(float((drawn == 1).float().mean()) - 0.4) < 0.03  # 1 track of 7, drawn 40% of the time
    with pytest.raises(ValueError, match="one share"):
        data.segment_weights([1.0])


def test_validation_songs_come_from_the_training_folds_and_differ_per_fold():
    from adt.data.datasets.mdb_folds import REAL_SONG_FOLDS, folds_for

    seen = set()
    for k in range(3):
        train, test = folds_for(k)
        val = validation_songs(k)
        assert len(val) == 2 and set(val) <= set(train) and not set(val) & set(test)
        seen |= set(val)
    assert len(seen) == 6 and seen < {n for f in REAL_SONG_FOLDS for n in f}


def test_summary_pools_songs_and_names_the_worst():
    counts = {"a": {"BD": [9, 1, 1], "SD": [5, 0, 5], "HH": [0, 0, 0]},
              "b": {"BD": [10, 0, 0], "SD": [10, 0, 0], "HH": [1, 0, 9]}}
    s = summarize(counts)
    assert s["tp"] == 35 and s["fn"] == 15 and s["fp"] == 1
    assert s["per_song"]["a"]["recall"]["HH"] is None  # a class the song does not have
    assert s["min_recall"] == ("b", "HH", 0.1)
    assert s["worst_song"][0] == "a" if s["per_song"]["a"]["f"] < s["per_song"]["b"]["f"] else "b"
    assert degenerate(s) == []  # b's HH recall 0.1 misses the goal; nothing is silenced


def test_a_silenced_class_or_no_onset_is_degenerate():
    silenced = summarize({"a": {"BD": [9, 1, 1], "SD": [0, 0, 12], "HH": [3, 0, 0]}})
    assert degenerate(silenced) == ["a: SD silenced (recall 0)"]
    nothing = summarize({"a": {"BD": [0, 0, 10], "SD": [0, 0, 5], "HH": [0, 0, 0]}})
    assert degenerate(nothing)[0].startswith("F 0") and len(degenerate(nothing)) == 3


@pytest.fixture(scope="module")
def songs(shared_datasets, tmp_path_factory):
    from adt.data.download import fetch_all
    from adt.data.datasets import mdb
    from adt.frame.real_songs import real_songs

    root = tmp_path_factory.mktemp("real")
    raw, _ = fetch_all(mdb.REMOTES, root / "downloads", root / "raw", mirror=str(shared_datasets), progress=False)
    return real_songs(raw, root / "audio")


def test_the_nine_songs_with_their_real_mixes_and_bands(songs):
    from adt.audio import read_audio

    assert [s.name.removeprefix("MusicDelta_") for s in songs] == [
        "80sRock", "Beatles", "Britpop", "Country1", "Grunge", "Punk", "Rockabilly", "Shadows", "SpeedMetal"]
    punk = next(s for s in songs if s.name == "MusicDelta_Punk")
    mix, sr = read_audio(punk.mix_path, mono=True)
    band, _ = read_audio(punk.band_path, mono=True)
    drums, _ = read_audio(punk.drum_path, mono=True)
    assert sr == 44100 and len(mix) == len(band) == len(drums) and np.abs(mix).max() <= 0.892
    # the mix is the band plus the drum raw (the drum-only recording) under the song's one gain
    gain = float(np.dot(mix - band, drums) / np.dot(drums, drums))
    assert 0 < gain <= 1 and np.abs(mix - band - gain * drums).max() < 1e-3
    assert {c: len(v) for c, v in punk.onsets.items() if c in ("BD", "SD", "HH")} == {"BD": 73, "SD": 42, "HH": 50}


def test_a_tiny_training_run_with_real_songs_in_its_corpus(songs, tmp_path):
    """Rendered drums under a real band, a real mix and a drum-only recording, drawn half the time."""
    from adt.features.shards import write_shards
    from adt.frame.real_songs import real_training_items, song_features, train_on_real_songs
    from adt.frame.recipe import TrainConfig

    by_name = {s.name: s for s in songs}
    train, val = by_name["MusicDelta_Punk"], by_name["MusicDelta_Rockabilly"]
    # a "rendered" corpus stand-in: another song's drum-only recording with its onsets
    other = by_name["MusicDelta_Grunge"]
    times = np.concatenate([other.onsets[c] for c in other.onsets])
    drums = np.concatenate([[c] * len(other.onsets[c]) for c in other.onsets])
    items = real_training_items([train], [(other.drum_path, times, drums)], tmp_path / "f", renders_per_band=1)
    assert len(items) == 3  # drum-only, real mix, one render under the real band
    render = song_features(other, tmp_path / "f")["drum"]
    write_shards([render], tmp_path / "renders", extra={"feature_type": "log_mel", "transcriber_input": "mix+drums"})
    v = song_features(val, tmp_path / "f")
    config = TrainConfig(epochs=2, steps_per_epoch=3, batch_size=4, channels=(8, 16), hidden=16, layers=1,
                         num_threads=1, gain_db=20.0, spectral_augment="strong")
    model, history = train_on_real_songs([tmp_path / "renders"], items, [(v["mix"][0], val.onsets)],
                                         tmp_path / "real_shards", config, real_share=0.5)
    assert len(history) == 2 and all(np.isfinite(h["loss"]) for h in history)
    assert json.loads((tmp_path / "real_shards" / "index.json").read_text())["transcriber_input"] == "mix+drums"
    assert model.transcriber_input == "mix+drums" and set(model.peak_picking["min_peak"]) == {"BD", "SD", "TT", "HH", "CY"}


def test_the_shipped_model_hears_a_real_song_at_any_level(songs):
    """Input gains 0.25 to 4 (-12 to +12 dB) on a real drum-only recording and its real mix: F within 0.02."""
    from adt.audio import read_audio
    from adt.evaluation.real_songs import song_counts
    from adt.transcribe.models import load_checkpoint
    from adt.transcribe.transcriber import pretrained_path

    model = load_checkpoint(pretrained_path())
    song = next(s for s in songs if s.name == "MusicDelta_SpeedMetal")
    for path in (song.drum_path, song.mix_path):
        audio, sr = read_audio(path, mono=True)
        f = {g: summarize({song.name: song_counts(model, audio, sr, song.onsets, gain=g)})["f"]
             for g in (0.25, 0.5, 1.0, 2.0, 4.0)}
        assert max(f.values()) - min(f.values()) <= 0.02, (path, f)
