"""Tatum-level data, training, Eq. 9 scoring, Table II and Fig. 3 (tatum paper Secs. III-B, III-D, IV-D)."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from adt.lm.bigram import SkipBigramLM
from adt.tatum.pianoroll import excerpt_start, plot_fig3
from adt.tatum.evaluate import (count_onsets, count_onsets_time, evaluate_methods, frame_baseline_score, table_ii, table_ii_markdown, tatum_prf)
from adt.tatum.regularization import MarginalizedGRULM
from adt.tatum.train import TatumTrainConfig, paper_config, train_tatum_model
from adt.tatum.tracks import collate, cut_segment, make_track
from adt.tatum.inference import predict_tatums
from adt.vocab import CLASSES_3
from tests.conftest import MDB_PREFIX


def _toy_track():
    x = np.tile(np.arange(100, dtype=np.float32)[:, None], (1, 4))  # x[t] = t
    tatums = np.arange(0.05, 1.3, 0.1)  # frames 5, 15, ..., 95, then 105.. beyond the 100 frames
    times = np.array([0.05, 0.26, 0.35, 0.55, 0.56])
    drums = np.array(["BD", "BD", "TT", "HH", "HH"])  # TT is not a 3-class drum; the HH pair conflicts
    return make_track("toy", x, tatums, times, drums, k=3)


def test_track_targets_spans_segments_and_masks():
    t = _toy_track()
    assert t.n_tatums == 10  # tatums at or after frame 100 dropped
    assert t.y.shape == (10, 3)
    assert np.argwhere(t.y).tolist() == [[0, 0], [2, 0], [5, 2]]  # BD@0.05, BD 0.26->0.25, HH 0.55/0.56->0.55
    assert t.owner[:5].tolist() == [-1] * 5 and t.owner[96:].tolist() == [-1] * 4
    assert t.owner[5:10].tolist() == [0] * 5 and t.owner[10:20].tolist() == [1] * 10

    head, tail = cut_segment(t, 0, 3), cut_segment(t, 8, 4)  # the tail is clipped to tatums 8, 9
    assert head.x[:, 0].tolist() == list(range(5, 30)) and head.owner.tolist() == [0] * 5 + [1] * 10 + [2] * 10
    assert tail.x[:, 0].tolist() == list(range(80, 96)) and tail.owner.tolist() == [0] * 10 + [1] * 6
    assert tail.y.shape == (2, 3)

    batch = collate([head, tail])
    assert batch["x"].shape == (2, 25, 4) and batch["y"].shape == (2, 3, 3) and batch["n_tatums"] == 3
    assert batch["mask"].tolist() == [[True, True, True], [True, True, False]]
    assert batch["owner"][1, 16:].tolist() == [-1] * 9 and float(batch["x"][1, 16:].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="toy"):
        cut_segment(t, 10, 4)
    with pytest.raises(ValueError, match="fewer than 2 tatums"):
        make_track("short", np.zeros((10, 4)), np.array([0.05, 0.2]), np.zeros(0), np.zeros(0, int))


def test_tatum_prf_counts_both_matches():
    est = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]])
    ref = np.array([[1, 0, 0, 0], [0, 1, 0, 1], [1, 1, 1, 0]])
    assert count_onsets(est, ref).tolist() == [[1, 2, 1], [1, 1, 2], [3, 4, 3]]
    res = tatum_prf([est, est], [ref, ref], CLASSES_3)  # micro: counts summed over the two tracks
    assert (res["n_c"], res["n_e"], res["n_g"]) == (10, 14, 12)
    assert res["p"] == pytest.approx(10 / 14) and res["r"] == pytest.approx(10 / 12)
    assert res["f"] == pytest.approx(2 * (10 / 14) * (10 / 12) / (10 / 14 + 10 / 12))
    assert res["p_BD"] == 0.5 and res["r_SD"] == 0.5 and res["f_HH"] == pytest.approx(6 / 7)

    # time match: estimated onsets at their tatum times against the annotated times, +-50 ms
    tatums = np.array([0.0, 0.25, 0.5, 0.75])
    times = np.array([0.04, 0.31, 0.49, 0.51])  # BD 40 ms off (hit), SD 60 ms off (miss), two HH on one tatum
    drums = np.array([0, 1, 3, 3])
    est = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
    assert count_onsets_time(est, tatums, times, drums).tolist() == [[1, 1, 1], [0, 1, 1], [1, 1, 2]]


def test_frame_baseline_peak_picks_and_quantizes():
    act = np.zeros((200, 5), dtype=np.float32)
    act[52, 0] = act[101, 1] = act[148, 3] = 0.9  # BD 0.52 s, SD 1.01 s, HH 1.48 s
    act[120, 2] = 0.9  # a tom: not in the 3-class score
    act[60, 0] = 0.15  # below delta = 0.2
    y = frame_baseline_score(act, np.arange(0.0, 2.0, 0.25), k=3)
    assert y.shape == (3, 8)
    assert np.argwhere(y).tolist() == [[0, 2], [1, 4], [2, 6]]


def test_evaluate_methods_and_table_ii_layout():
    t = _toy_track()
    perfect = lambda track: track.y.T.astype(np.uint8)  # noqa: E731
    silent = lambda track: np.zeros_like(track.y.T, dtype=np.uint8)  # noqa: E731
    summary, per_track = evaluate_methods({"tatum_crnn": perfect, "frame_crnn": silent},
                                          {"estimated": [t], "ground_truth": [t]})
    grid_all = summary[(summary["match"] == "grid") & (summary["class"] == "all")].set_index(["method", "tatums"])
    assert grid_all.loc[("tatum_crnn", "estimated"), "f"] == 1.0
    assert grid_all.loc[("frame_crnn", "ground_truth"), "f"] == 0.0
    time_all = summary[(summary["match"] == "time") & (summary["class"] == "all")].set_index(["method", "tatums"])
    assert time_all.loc[("tatum_crnn", "estimated"), "n_g"] == 4  # the conflicting HH is missed in time
    assert len(per_track) == 4
    table = table_ii(summary, labels={"tatum_crnn": "CRNN"})
    assert list(table.index) == ["CRNN [7] (frame level) + quantization", "CRNN"]  # paper's row order
    assert table.columns[:3].tolist() == [("Madmom", "all", "F"), ("Madmom", "all", "P"), ("Madmom", "all", "R")]
    assert table.shape == (2, 2 * 4 * 3) and table.loc["CRNN", ("Ground-truth", "all", "F")] == 100.0
    assert "Madmom F" in table_ii_markdown(table)


def _mdb_real_track(shared_datasets, mdb_track, seconds=12.0):
    """First seconds of MusicDelta_80sRock: log mel, annotated onsets, ground-truth tatums (4 per beat)."""
    from adt.audio import read_audio
    from adt.rhythm.tatums import tatums_from_beats
    from adt.features.spectrogram import log_mel

    name = mdb_track["name"]
    ann = mdb_track["annotation"].read_text().split()
    with zipfile.ZipFile(shared_datasets / "mdb-drums-subset.zip") as z:
        beats = z.read(f"{MDB_PREFIX}annotations/beats/{name}_MIX.beats").decode().split()
    audio, sr = read_audio(mdb_track["wav"], mono=True)
    x = log_mel(audio[: int(seconds * sr)], sr)
    label = {"KD": "BD", "SD": "SD", "HH": "HH", "TT": "TT", "CY": "CY"}
    pairs = [(float(t), label[c]) for t, c in zip(ann[::2], ann[1::2]) if c in label and float(t) < seconds]
    tatums = tatums_from_beats(np.array([float(b) for b in beats[::2]]), 4)
    return make_track(name, x, tatums, np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))


def test_bigram_regularized_training_lowers_the_loss_on_a_real_track(shared_datasets, mdb_track):
    torch.set_num_threads(1)
    track = _mdb_real_track(shared_datasets, mdb_track)
    assert track.y.sum() > 20  # a real rock groove: many BD/SD/HH onsets
    lm = SkipBigramLM().fit([track.y.T.astype(int)])
    config = paper_config("bigram", steps=24, eval_every=6, batch_size=4, segment_tatums=32, channels=8,
                          conv_layers=2, hidden=16, gru_layers=1, seed=0)
    assert (config.gamma, config.alpha) == (0.46, 0.068)
    model, history = train_tatum_model([track], [track], config, lm=lm)
    assert history[-1]["loss"] < history[0]["loss"]
    assert all(np.isfinite(h["lang"]) and h["lang"] > 0 for h in history)
    assert all(0.0 <= h["val_f"] <= 1.0 for h in history)
    phi = predict_tatums(model, track)
    assert phi.shape == (track.n_tatums, 3) and ((phi >= 0) & (phi <= 1)).all()


def test_weight_tuning_starts_from_the_paper_values_and_keeps_the_best(shared_datasets, mdb_track):
    from adt.tatum.train import WEIGHT_SPACE, tune_weights

    torch.set_num_threads(1)
    track = _mdb_real_track(shared_datasets, mdb_track)
    lm = SkipBigramLM().fit([track.y.T.astype(int)])
    config = paper_config("bigram", steps=8, eval_every=4, batch_size=4, segment_tatums=32, channels=8,
                          conv_layers=2, hidden=16, gru_layers=1, seed=0)
    model, history, tuned = tune_weights([track], [track], config, n_trials=2, lm=lm)
    first, second = tuned["trials"]
    assert (first["gamma"], first["alpha"]) == (0.46, 0.068)  # the paper's weights are tried first
    assert WEIGHT_SPACE["gamma"][0] <= second["gamma"] <= WEIGHT_SPACE["gamma"][1]
    assert WEIGHT_SPACE["alpha"][0] <= second["alpha"] <= WEIGHT_SPACE["alpha"][1]
    assert tuned["val_f"] == max(first["val_f"], second["val_f"]) == max(h["val_f"] for h in history)
    assert predict_tatums(model, track).shape == (track.n_tatums, 3)


def test_gru_lm_stays_frozen_during_training():
    from adt.lm.gru import GRUDrumLM

    torch.manual_seed(0)
    lm = MarginalizedGRULM(GRUDrumLM(k=5, hidden=8, layers=1))
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    rng = np.random.default_rng(0)
    track = make_track("noise", rng.normal(size=(400, 80)).astype(np.float32), np.arange(0.1, 3.9, 0.125),
                       rng.uniform(0, 3.8, 30), rng.choice(["BD", "SD", "HH"], 30))
    config = TatumTrainConfig(steps=3, eval_every=3, batch_size=2, segment_tatums=16, channels=4, conv_layers=2,
                              hidden=8, gru_layers=1, alpha=0.055, gamma=0.61)
    _, history = train_tatum_model([track], [], config, lm=lm)
    assert not lm.training and not any(p.requires_grad for p in lm.parameters())
    assert all(torch.equal(before[k], v) for k, v in lm.state_dict().items())
    assert np.isfinite(history[-1]["lang"])
    probs = lm.nll(torch.full((1, 3, 4), 0.5))  # the marginal over the 8 BD/SD/HH combinations is a distribution
    assert torch.isfinite(probs).all() and float(probs[0]) > 0


def test_fig3_png_written(tmp_path):
    rng = np.random.default_rng(0)
    gt = (rng.random((3, 128)) < 0.3).astype(int)
    unreg = gt.copy()
    unreg[:, 120:] = 1 - unreg[:, 120:]
    assert excerpt_start(unreg, gt) == 64  # the only 64-tatum window (hop 16) holding every difference
    gt, unreg, reg = gt[:, 64:], unreg[:, 64:], gt[:, 64:]
    path = plot_fig3(gt, unreg, reg, np.arange(64) * 0.125, tmp_path / "figs" / "fig3.png", title="toy",
                     f_measures={"unregularized": 0.7})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    img = matplotlib.image.imread(path)
    assert img.shape[0] > 200 and img.shape[1] > 500
    assert not list(tmp_path.joinpath("figs").glob(".tmp-*"))
    with pytest.raises(ValueError, match="tatum times"):
        plot_fig3(gt, unreg, reg, np.arange(10), tmp_path / "bad.png")
