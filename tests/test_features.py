"""Feature types, target widening, training-set statistics, infrequency weights, the shard loader."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from adt.audio import read_audio
from adt.features.spectrogram import FEATURE_TYPES, compute_features, features_file, log_filtered, n_bins
from adt.features.shards import ShardDataset, segment_loader, segment_starts, write_shards
from adt.features.stats import TrainingStats
from adt.features.targets import frame_targets, infrequency_weights, widen_targets
from adt.atomic import save_array
from adt.frame.recipe import TrainConfig, infrequency_bce, train_frame_model


def test_log_filtered_shape_and_rate_on_real_drums(mdb_track):
    """84 bins; frames = ceil(samples / 441) = ceil(100 * duration) (madmom frames centred on t * 441)."""
    audio, sr = read_audio(mdb_track["wav"], mono=True)
    assert sr == 44100
    x = log_filtered(audio[: 5 * sr], sr)
    assert x.shape == (500, 84) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0.0 and x.std() > 0.01  # log10(1 + |X|) >= 0
    x = log_filtered(audio[: 5 * sr + 100], sr)  # 5.0023 s -> ceil(500.23) frames
    assert x.shape == (501, 84)
    whole = features_file(mdb_track["wav"], "log_filtered")
    assert whole.shape == (math.ceil(len(audio) / 441), 84)
    np.testing.assert_allclose(whole[:400], x[:400], atol=1e-5)  # frames do not depend on what follows
    # the drum hits show up: frames at annotated onsets are louder than the median frame
    onsets = np.array([float(line.split()[0]) for line in mdb_track["annotation"].read_text().splitlines()])
    frames = np.round(onsets * 100).astype(int)
    energy = whole.sum(1)
    assert np.median(energy[frames[frames < len(whole)]]) > 2 * np.median(energy)


def test_feature_types_and_widths(mdb_track):
    audio, sr = read_audio(mdb_track["wav"], mono=True)
    audio = audio[: 2 * sr]
    assert FEATURE_TYPES == ("log_mel", "log_filtered")
    for ft in FEATURE_TYPES:
        assert compute_features(audio, sr, ft).shape[1] == n_bins(ft)
    assert (n_bins("log_mel"), n_bins("log_filtered")) == (80, 84)
    # any sample rate is resampled to 44.1 kHz first: same width, same frame rate
    half = compute_features(audio[::2].copy(), sr // 2, "log_filtered")
    assert half.shape == (200, 84)
    with pytest.raises(ValueError, match="unknown feature type 'cqt'"):
        compute_features(audio, sr, "cqt")


def test_target_widening_hand_built():
    # BD onsets at frames 0, 5, 6 (adjacent), SD at 10, HH at frame 11 (the last frame)
    y = frame_targets(np.array([0.0, 0.05, 0.061, 0.1, 0.11]), np.array(["BD", "BD", "BD", "SD", "HH"]), 12,
                      widening=True)
    bd = [1, .5, 0, 0, .5, 1, 1, .5, 0, 0, 0, 0]
    sd = [0, 0, 0, 0, 0, 0, 0, 0, 0, .5, 1, .5]
    hh = [0] * 10 + [.5, 1]
    np.testing.assert_array_equal(y[:, 0], bd)
    np.testing.assert_array_equal(y[:, 1], sd)
    np.testing.assert_array_equal(y[:, 3], hh)
    assert y[:, [2, 4]].sum() == 0
    plain = frame_targets(np.array([0.0, 0.05, 0.061, 0.1, 0.11]), np.array(["BD", "BD", "BD", "SD", "HH"]), 12)
    assert set(np.unique(plain)) == {0.0, 1.0} and plain.sum() == 5
    np.testing.assert_array_equal(widen_targets(plain), y)


def test_infrequency_weights_hand_built_counts():
    """w_i = 1 / (-p ln p - (1 - p) ln(1 - p)), p_i = n_i / T (thesis Sec. 5.2)."""
    counts, frames = np.array([100, 50, 0, 1000, 10]), 1000
    w = infrequency_weights(counts, frames)

    def expected(p):
        return 1.0 / (-p * math.log(p) - (1 - p) * math.log(1 - p))

    np.testing.assert_allclose(w[[0, 1, 4]], [expected(0.1), expected(0.05), expected(0.01)], rtol=1e-12)
    np.testing.assert_allclose(w[0], 3.0761, atol=1e-4)  # p = 0.1: H = 0.3251 nats
    assert w[2] == 1.0 and w[3] == 1.0  # never / always an onset: zero entropy -> neutral weight
    assert w[4] > w[1] > w[0]  # rarer classes weigh more
    with pytest.raises(ValueError, match="do not fit 1000 frames"):
        infrequency_weights(np.array([1001, 0, 0, 0, 0]), frames)


def test_standardization_stats_against_numpy(tmp_path):
    rng = np.random.default_rng(1)
    xs = [rng.normal(2.0, 0.5, size=(n, 84)).astype(np.float32) for n in (333, 517)]
    ys = [frame_targets(rng.uniform(0, len(x) / 100, 20), rng.integers(0, 5, 20), len(x), widening=True) for x in xs]
    items = [(save_array(tmp_path / f"{i}.x.npy", x), save_array(tmp_path / f"{i}.y.npy", y))
             for i, (x, y) in enumerate(zip(xs, ys))]
    stats = TrainingStats.of_tracks(items, feature_type="log_filtered")
    allx = np.concatenate(xs).astype(np.float64)
    np.testing.assert_allclose(stats.mean, allx.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.std, allx.std(0), rtol=1e-5)
    assert stats.frames == 850
    # onsets: frames with target 1 (the widened 0.5 neighbours do not count)
    np.testing.assert_array_equal(stats.onsets, sum((y == 1.0).sum(0) for y in ys))
    # statistics of a union are the sum of its parts
    a, b = (TrainingStats.of_tracks([item]) for item in items)
    np.testing.assert_allclose((a + b).std, stats.std, rtol=1e-6)
    folder = stats.save(tmp_path / "stats", train_sets=["x"])
    np.testing.assert_array_equal(np.load(folder / "mean.npy"), stats.mean)
    np.testing.assert_array_equal(np.load(folder / "infrequency_weights.npy"), stats.infrequency_weights())
    back = TrainingStats.load(folder)
    assert back.feature_type == "log_filtered" and back.frames == 850
    np.testing.assert_array_equal(back.std, stats.std)
    with pytest.raises(ValueError, match="1.x.npy"):
        TrainingStats.of_tracks([(items[1][0], items[0][1])])  # 517 feature frames, 333 target frames


def _shards(tmp_path, n_tracks=3, frames=1100, width=84, name="shards"):
    rng = np.random.default_rng(0)
    items = []
    for i in range(n_tracks):
        x = rng.normal(size=(frames, width)).astype(np.float32)
        y = (rng.random((frames, 5)) < 0.02).astype(np.float32)
        items.append((save_array(tmp_path / f"{name}{i}.x.npy", x), save_array(tmp_path / f"{name}{i}.y.npy", y)))
    write_shards(items, tmp_path / name, shard_segments=4, extra={"feature_type": "log_filtered"})
    return items


def test_segments_cover_the_track_end(tmp_path):
    assert segment_starts(1100) == [0, 200, 400, 600, 700]  # the last one ends at frame 1100
    assert segment_starts(1000) == [0, 200, 400, 600]
    assert segment_starts(150) == [0]
    items = _shards(tmp_path, n_tracks=1)
    data = ShardDataset([tmp_path / "shards"])
    assert len(data) == 5 and data.n_features == 84 and data.feature_type == "log_filtered"
    np.testing.assert_array_equal(data[4][0].numpy(), np.load(items[0][0])[700:1100])
    np.testing.assert_array_equal(data[-1][1].numpy(), np.load(items[0][1])[700:1100])
    with pytest.raises(IndexError):
        data[5]


def test_loader_with_two_workers_returns_the_same_segments(tmp_path):
    _shards(tmp_path)
    data = ShardDataset([tmp_path / "shards"])
    assert len(data) == 15 and len(data._files) == 4
    data[3]  # maps opened here must not travel to the workers
    assert data._open and not pickle.loads(pickle.dumps(data))._open
    batches = {}
    for workers in (0, 2):
        loader = segment_loader(data, batch_size=4, num_samples=24, seed=7, num_workers=workers)
        batches[workers] = [(x.clone(), y.clone()) for x, y in loader]
    assert len(batches[0]) == 6
    for (x0, y0), (x2, y2) in zip(batches[0], batches[2]):
        assert x0.shape == (4, 400, 84)
        torch.testing.assert_close(x0, x2, rtol=0, atol=0)
        torch.testing.assert_close(y0, y2, rtol=0, atol=0)


def test_mixed_feature_widths_are_refused(tmp_path):
    _shards(tmp_path, n_tracks=1, width=84, name="a")
    _shards(tmp_path, n_tracks=1, width=80, name="b")
    with pytest.raises(ValueError, match="shards differ"):
        ShardDataset([tmp_path / "a", tmp_path / "b"])


def test_infrequency_bce_weights_onset_frames():
    logits = torch.zeros(1, 3, 5)
    targets = torch.zeros(1, 3, 5)
    targets[0, 0, 0] = 1.0  # frame 0: a BD onset (w = 4)
    targets[0, 1, 0] = 0.5  # frame 1: widened BD (0.5 * 4 = 2)
    w = torch.tensor([4.0, 2.0, 2.0, 2.0, 2.0])
    per_frame = 5 * math.log(2.0)  # BCE of logit 0 is ln 2 whatever the target
    assert infrequency_bce(logits, targets, w).item() == pytest.approx(per_frame * (4 + 2 + 1) / 3)


def test_training_follows_the_feature_type(tmp_path, mdb_track):
    """A log-filtered training set gives an 84-bin model that knows its features; infrequency loss runs."""
    audio, sr = read_audio(mdb_track["wav"], mono=True)
    x = log_filtered(audio[: 9 * sr], sr)
    rows = [line.split() for line in mdb_track["annotation"].read_text().splitlines() if line.strip()]
    mapping = {"KD": "BD", "SD": "SD", "HH": "HH", "TT": "TT", "CY": "CY"}
    rows = [(float(t), mapping[c]) for t, c in rows if c in mapping]
    y = frame_targets(np.array([t for t, _ in rows]), np.array([c for _, c in rows]), len(x), widening=True)
    item = (save_array(tmp_path / "t.x.npy", x), save_array(tmp_path / "t.y.npy", y))
    write_shards([item], tmp_path / "shards", extra={"feature_type": "log_filtered"})
    stats = TrainingStats.of_tracks([item], feature_type="log_filtered")
    config = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=2, channels=(4, 8), hidden=8, layers=1,
                         loss_weighting="infrequency")
    model, history = train_frame_model([tmp_path / "shards"], [], config, stats=stats)
    assert model.config["n_features"] == 84 and model.feature_type == "log_filtered"
    torch.testing.assert_close(model.mean, torch.from_numpy(stats.mean))
    assert math.isfinite(history[0]["loss"])
    with pytest.raises(ValueError, match="unknown loss weighting"):
        train_frame_model([tmp_path / "shards"], [], TrainConfig(loss_weighting="focal"))


def test_model_learns_log_filtered_real_track_with_infrequency_loss(mdb_track):
    """20 steps on 4 s of a real recording (log filtered, widened targets) lower the thesis loss."""
    from adt.frame.architectures import FrameCRNN

    torch.manual_seed(0)
    torch.set_num_threads(2)
    audio, sr = read_audio(mdb_track["wav"], mono=True)
    x = log_filtered(audio[: 4 * sr], sr)
    rows = [line.split() for line in mdb_track["annotation"].read_text().splitlines() if line.strip()]
    mapping = {"KD": "BD", "SD": "SD", "HH": "HH", "TT": "TT", "CY": "CY"}
    rows = [(float(t), mapping[c]) for t, c in rows if c in mapping]
    y = frame_targets(np.array([t for t, _ in rows]), np.array([c for _, c in rows]), len(x), widening=True)
    stats = TrainingStats.of_track(x, y)
    weights = torch.from_numpy(stats.infrequency_weights())
    assert weights[0] > 1.0  # bass drum onsets in these 4 s
    model = FrameCRNN(n_features=84, channels=(8, 16), hidden=32)
    model.set_standardization(torch.from_numpy(stats.mean), torch.from_numpy(stats.std))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    xb, yb = torch.from_numpy(x)[None], torch.from_numpy(y)[None]
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = infrequency_bce(model(xb), yb, weights)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
