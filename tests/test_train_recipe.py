"""The thesis training recipe (ch. 5) on a real recording: clipping, LR plateau schedule,
early stopping, best-epoch selection, determinism, thesis peak picking, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from adt.config import PROFILES
from adt.frame.peaks import PEAK_PICKING, peak_picking_params, pick_peaks
from adt.features.stats import TrainingStats
from adt.frame.checkpoint import evaluate, load_model, predict_activations, save_model
from adt.frame.recipe import TrainConfig, train_model
from tests.conftest import MDB_CLASSES, mdb_excerpt

MAPPING = MDB_CLASSES
SECONDS = 12
SMALL = dict(channels=(8, 16), hidden=32, layers=1, num_threads=1, batch_size=4)


@pytest.fixture(scope="module")
def track(mdb_track, tmp_path_factory):
    """12 s of a real MDB Drums recording as 4-s segment shards, and the same excerpt as validation track."""
    out = tmp_path_factory.mktemp("recipe")
    item, ref = mdb_excerpt(mdb_track, out, SECONDS)
    return {"shards": [out / "shards"], "val": [(item[0], ref)], "stats": TrainingStats.of_tracks([item]),
            "x": item[0], "dir": out}


def test_thesis_defaults_and_profile_scaling():
    c = TrainConfig()
    assert (c.grad_clip, c.lr_factor, c.lr_patience, c.early_stop_patience) == (2.0, 0.2, 5, 15)
    assert c.peak_picking == "thesis"
    full, demo, tiny = (TrainConfig.for_section(PROFILES[n].frame) for n in ("full", "demo", "tiny"))
    assert (full.lr_patience, full.early_stop_patience, full.epochs) == (5, 15, 40)
    assert (demo.lr_patience, demo.early_stop_patience, demo.epochs) == (1, 3, PROFILES["demo"].frame.epochs)
    assert tiny.epochs == 2 and tiny.steps_per_epoch == PROFILES["tiny"].frame.steps_per_epoch
    longer = TrainConfig.for_section(PROFILES["demo"].frame, epochs=20)  # patience follows the epochs asked for
    assert (longer.lr_patience, longer.early_stop_patience, longer.epochs) == (5, 15, 20)


def test_thesis_peak_picking_centred_with_floor():
    act = np.zeros((300, 5), np.float32)
    for t in (50, 150):
        act[t - 1: t + 2, 0] = [0.5, 0.9, 0.5]
    act[250, 0] = 0.45  # a clear peak, but below the thesis's 0.5
    thesis = pick_peaks(act, **peak_picking_params("thesis"))
    paper = pick_peaks(act)
    np.testing.assert_allclose(thesis["BD"], [0.5, 1.5])  # centred window: the maximum frame itself
    np.testing.assert_allclose(paper["BD"], [0.49, 1.49, 2.5])  # look-back only: the rising frame
    assert PEAK_PICKING["thesis"]["min_peak"] == 0.5
    with pytest.raises(ValueError, match="unknown peak picking"):
        peak_picking_params("vogl")


def test_gradients_are_clipped_at_norm_two(track):
    """Pre-clip norms exceed 2 with the infrequency loss; every optimizer step sees norm <= 2."""
    seen = []

    def hook(opt, args, kwargs):
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        seen.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    handle = register_optimizer_step_pre_hook(hook)
    try:
        config = TrainConfig(epochs=1, steps_per_epoch=4, lr=3e-3, loss_weighting="infrequency", **SMALL)
        _, history = train_model(track["shards"], track["val"], config, stats=track["stats"])
    finally:
        handle.remove()
    assert len(seen) == 4
    assert history[0]["grad_norm_max"] > 2.0  # clipping was needed
    assert max(seen) <= 2.0 + 1e-4


def test_lr_divided_by_five_after_patience_then_early_stop(track):
    """A validation track without onsets keeps the micro F at 0: no epoch after the first improves."""
    empty = [(track["x"], {c: np.array([]) for c in MAPPING.values()})]
    config = TrainConfig(epochs=10, steps_per_epoch=1, lr=1e-3, lr_patience=2, early_stop_patience=4, **SMALL)
    model, history = train_model(track["shards"], empty, config, stats=track["stats"])
    assert [h["val_f"] for h in history] == [0.0] * len(history)
    # ReduceLROnPlateau(patience=2): bad epochs 2, 3, 4 -> lr * 0.2 from epoch 5 on
    lrs = [h["lr"] for h in history]
    assert lrs[:4] == [1e-3] * 4 and lrs[4] == pytest.approx(2e-4)
    # early stopping: 4 epochs without improvement after epoch 1 -> stopped after epoch 5 of 10
    assert len(history) == 5 and model.best_epoch == 1


def test_best_validation_epoch_is_kept(track):
    config = TrainConfig(epochs=5, steps_per_epoch=6, lr=3e-3, **SMALL)
    # extra metrics per epoch (benchmarks/bench_mdb_zero_shot.py scores a test set this way)
    model, history = train_model(track["shards"], track["val"], config, stats=track["stats"],
                                 extra_metrics=lambda m: {"again_f": evaluate(m, track["val"], peak_picking="thesis")["f"]})
    scores = [h["val_f"] for h in history]
    assert [h["again_f"] for h in history] == pytest.approx(scores, abs=1e-12)  # same model, same data
    assert max(scores) > 0.3  # it learns the (seen) excerpt
    assert model.best_epoch == int(np.argmax(scores)) + 1 and model.best_val_f == max(scores)
    # the returned weights are the best epoch's: re-evaluating gives its F, not the last epoch's
    assert evaluate(model, track["val"], peak_picking="thesis")["f"] == pytest.approx(max(scores), abs=1e-12)
    assert model.feature_type == "log_mel" and model.transcriber_input == "separated"
    # then the floors tuned on validation (the thesis's windows): at least the thesis's F, as reported
    assert model.peak_picking["threshold"] == 0.1 and model.tuned_val_f >= max(scores)
    assert evaluate(model, track["val"])["f"] == pytest.approx(model.tuned_val_f, abs=1e-12)


def test_same_seed_same_history(track):
    config = TrainConfig(epochs=2, steps_per_epoch=3, lr=3e-3, **SMALL)
    runs = [train_model(track["shards"], track["val"], config, stats=track["stats"]) for _ in range(2)]
    strip = [[{k: v for k, v in h.items() if k != "seconds"} for h in hist] for _, hist in runs]
    assert strip[0] == strip[1]
    for a, b in zip(runs[0][0].state_dict().values(), runs[1][0].state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    other, hist = train_model(track["shards"], track["val"], TrainConfig(**{**config.__dict__, "seed": 7}),
                              stats=track["stats"])
    assert hist[0]["loss"] != strip[0][0]["loss"]


def test_checkpoint_round_trip(track):
    config = TrainConfig(epochs=1, steps_per_epoch=1, **SMALL)
    params = {"frame_crnn.hidden": 16, "frame_crnn.channels": 8, "lr": 2e-3, "weight_decay": 1e-5}
    model, _ = train_model(track["shards"], track["val"], config, "frame_crnn", params, stats=track["stats"])
    assert model.config["hidden"] == 16 and model.config["channels"] == (8, 16)
    back = load_model(save_model(model, track["dir"] / "m.pt"))
    x = np.load(track["x"])[:300]
    np.testing.assert_array_equal(predict_activations(model, x), predict_activations(back, x))
    assert (back.architecture, back.peak_picking, back.best_epoch) == ("frame_crnn", model.peak_picking, 1)
    assert back.tuned_val_f == model.tuned_val_f and back.transcriber_input == "separated"
    assert math.isclose(back.hparams["lr"], 2e-3)
    with pytest.raises(FileNotFoundError):
        load_model(track["dir"] / "missing.pt")


def test_training_threads_per_architecture_and_restored(track):
    """FrameCRNN trains on one torch thread by default (adt.cpu: faster under passive OpenMP
    waiting); the caller's thread count is back afterwards."""
    from adt.cpu import training_threads

    assert training_threads("frame_crnn") == 1 and training_threads("cnn") == 2
    seen = []

    def hook(opt, args, kwargs):
        seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    handle = register_optimizer_step_pre_hook(hook)
    try:
        config = TrainConfig(epochs=1, steps_per_epoch=2, **{**SMALL, "num_threads": None})
        train_model(track["shards"], track["val"], config, stats=track["stats"])
    finally:
        handle.remove()
    assert seen == [1, 1]
    assert torch.get_num_threads() == before


@pytest.mark.faults
def test_an_interrupted_training_resumes_where_it_stopped(track):
    """A crash after epoch 1 (per-epoch checkpoint), then the same call: the same history and weights as
    one uninterrupted run (same batches, same dropout), and only the new epochs are reported."""
    config = TrainConfig(epochs=3, steps_per_epoch=3, lr=3e-3, **SMALL)
    whole, whole_history = train_model(track["shards"], track["val"], config, stats=track["stats"])
    ckpt = track["dir"] / "epochs.pt"

    def crash(epoch, metrics):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(track["shards"], track["val"], config, stats=track["stats"], on_epoch=crash, checkpoint=ckpt)
    seen = []
    model, history = train_model(track["shards"], track["val"], config, stats=track["stats"], checkpoint=ckpt,
                                 on_epoch=lambda e, m: seen.append(e))
    assert seen == [2, 3]
    strip = [[{k: v for k, v in h.items() if k != "seconds"} for h in hist] for hist in (history, whole_history)]
    assert strip[0] == strip[1]
    for a, b in zip(model.state_dict().values(), whole.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # a checkpoint of another config is not trusted: training starts over
    other = TrainConfig(**{**config.__dict__, "lr": 1e-3})
    seen.clear()
    train_model(track["shards"], track["val"], other, stats=track["stats"], checkpoint=ckpt,
                on_epoch=lambda e, m: seen.append(e))
    assert seen == [1, 2, 3]
