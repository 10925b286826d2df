"""GRU drum-score LM (tatum paper, Eq. 2; relaxed scores of Eq. 5) and its Optuna tuning."""

from __future__ import annotations

import io
import math
import zipfile

import numpy as np
import optuna
import pandas as pd
import pretty_midi
import pytest
import torch

from adt.lm.gru import GRUDrumLM, kfold_indices, load, save, train_gru_lm, tune_gru_lm
from adt.lm.bigram import SkipBigramLM
from adt.lm.corpus import ScoreError, score_from_midi

torch.set_num_threads(2)
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _fixed_model(logp: torch.Tensor) -> GRUDrumLM:
    """A K=2 model whose forward returns the given (M, 4) log-probabilities for every score."""
    model = GRUDrumLM(k=2, hidden=4, layers=1).double()
    model.forward = lambda Y: logp[None, : Y.shape[2]].expand(Y.shape[0], -1, -1)
    return model


def test_nll_equals_hand_value_with_known_log_probs():
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4],
                          [0.25, 0.25, 0.25, 0.25],
                          [0.7, 0.1, 0.1, 0.1]], dtype=torch.float64)
    model = _fixed_model(probs.log())
    # combination index c = Y[0] + 2 Y[1]: tatums -> 1, 2, 3
    Y = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]], dtype=torch.float64)
    hand = -(math.log(0.2) + math.log(0.25) + math.log(0.1))
    assert model.nll(Y).item() == pytest.approx(hand, rel=1e-12)
    # mask drops the last tatum
    assert model.nll(Y, torch.tensor([[1.0, 1.0, 0.0]])).item() == pytest.approx(
        -(math.log(0.2) + math.log(0.25)), rel=1e-12)
    # a relaxed tatum is the expectation over independent Bernoulli draws
    Ys = torch.tensor([[[0.3], [0.6]]], dtype=torch.float64)
    q = [0.7 * 0.4, 0.3 * 0.4, 0.7 * 0.6, 0.3 * 0.6]  # c = 0, 1, 2, 3
    expect = -sum(qc * math.log(pc) for qc, pc in zip(q, probs[0].tolist()))
    assert model.nll(Ys).item() == pytest.approx(expect, rel=1e-12)
    np.testing.assert_allclose(model.combination_probs(Ys)[0, 0].numpy(), q)


def test_forward_shapes_causality_and_uniform_chance():
    torch.manual_seed(0)
    for k in (3, 5):
        model = GRUDrumLM(k=k, hidden=8, layers=2)
        Y = (torch.rand(2, k, 20) > 0.5).float()
        logp = model(Y)
        assert logp.shape == (2, 20, 2 ** k)
        torch.testing.assert_close(logp.exp().sum(-1), torch.ones(2, 20))
        # the prediction at tatum m only depends on tatums < m
        Y2 = Y.clone()
        Y2[:, :, 10] = 1 - Y2[:, :, 10]
        torch.testing.assert_close(model(Y2)[:, :11], logp[:, :11])
        assert not torch.allclose(model(Y2)[:, 11:], logp[:, 11:])
    # a uniform model gives exactly the chance perplexity 2 (per drum and tatum)
    model = GRUDrumLM(k=5, hidden=8, layers=1)
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.zero_()
    ys = [np.random.default_rng(1).integers(0, 2, size=(5, m)) for m in (7, 40)]
    assert model.perplexity(ys) == pytest.approx(2.0, rel=1e-6)
    with pytest.raises(ValueError, match="K=3"):
        model.nll(torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="binary"):
        model.perplexity([np.full((5, 4), 0.5)])


def test_nll_is_differentiable_in_relaxed_scores_and_padding_is_exact():
    torch.manual_seed(0)
    model = GRUDrumLM(k=5, hidden=16, layers=2)
    Y = torch.rand(3, 5, 24, requires_grad=True)
    mask = torch.ones(3, 24)
    mask[1, 15:] = 0
    nll = model.nll(Y, mask)
    assert nll.shape == (3,)
    nll.sum().backward()
    g = Y.grad
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert g[:, :, 0].abs().sum() > 0  # the first tatum: through q and as input to later tatums
    assert g[1, :, 15:].abs().sum() == 0  # padding gets no gradient
    # a padded score's NLL equals the NLL of the unpadded score
    Yb = (torch.rand(2, 5, 24) > 0.6).float()
    mask = torch.ones(2, 24)
    mask[1, 10:] = 0
    both = model.nll(Yb, mask)
    torch.testing.assert_close(both[1], model.nll(Yb[1:2, :, :10])[0])


def test_save_load_roundtrip(tmp_path):
    model = GRUDrumLM(k=3, hidden=8, layers=2)
    path = save(model, tmp_path / "lm" / "gru.pt")
    back = load(path)
    assert back.config == model.config == {"k": 3, "hidden": 8, "layers": 2, "dropout": 0.0}
    Y = (torch.rand(1, 3, 12) > 0.5).float()
    torch.testing.assert_close(back.nll(Y), model.eval().nll(Y))
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.pt")


def test_kfold_indices_partition():
    folds = kfold_indices(10, 3, seed=0)
    assert len(folds) == 3
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals.tolist()) == list(range(10))
    for tr, va in folds:
        assert not set(tr) & set(va) and len(tr) + len(va) == 10
    with pytest.raises(ValueError):
        kfold_indices(2, 3)


# ------------------------------------------------------------------ real Groove MIDI scores


@pytest.fixture(scope="module")
def groove_scores(shared_datasets, tmp_path_factory) -> dict[str, list[np.ndarray]]:
    """3-class scores of real Groove beats: 24 train and 6 test performances (first in file order)."""
    out = tmp_path_factory.mktemp("groove_lm")
    scores: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    with zipfile.ZipFile(shared_datasets / "groove-v1.0.0-midionly.zip") as z:
        df = pd.read_csv(io.BytesIO(z.read("groove/info.csv")))
        df = df[(df["beat_type"] == "beat") & (df["time_signature"] == "4-4") & (df["duration"] < 120)]
        for split, n in (("train", 24), ("test", 6)):
            for name in df[df["split"] == split]["midi_filename"].head(n):
                path = out / name.replace("/", "__")
                path.write_bytes(z.read(f"groove/{name}"))
                try:
                    scores[split].append(score_from_midi(pretty_midi.PrettyMIDI(str(path)), k=3))
                except ScoreError:
                    pass
    assert len(scores["train"]) >= 20 and len(scores["test"]) >= 5
    return scores


def test_trained_gru_lm_prefers_real_scores_over_time_shuffled(groove_scores):
    train, test = groove_scores["train"], groove_scores["test"]
    seen = []
    model, history = train_gru_lm(train, test, hidden=32, layers=1, epochs=4, lr=3e-3, segment_tatums=64,
                                  seed=0, on_epoch=lambda e, r: seen.append((e, r)))
    assert torch.get_num_threads() == 2  # training ran with 1 thread and restored the setting
    assert [e for e, _ in seen] == [1, 2, 3, 4] and len(history) == 4
    assert set(seen[0][1]) == {"train_nll", "val_perplexity", "seconds"}
    ppl = model.perplexity(test)
    assert ppl == pytest.approx(min(h["val_perplexity"] for h in history))  # best state kept
    rng = np.random.default_rng(0)
    shuffled = [y[:, rng.permutation(y.shape[1])] for y in test]
    ppl_shuffled = model.perplexity(shuffled)
    assert ppl < 2.0 and ppl < ppl_shuffled
    # per-tatum NLL on a held-out score, relaxed API on the binary score, agrees with perplexity
    total = sum(model.nll(torch.tensor(y[None], dtype=torch.float32)).item() for y in test)
    assert math.exp(total / sum(y.size for y in test)) == pytest.approx(ppl, rel=1e-5)
    # the bi-gram on the same data, for orientation: both well below chance
    assert SkipBigramLM().fit(train).perplexity(test) < 2.0


def test_train_gru_lm_prunes_with_an_optuna_trial(groove_scores):
    class AlwaysPrune:
        reported: list = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return True

    trial = AlwaysPrune()
    with pytest.raises(optuna.TrialPruned):
        train_gru_lm(groove_scores["train"][:4], groove_scores["test"][:2], hidden=8, layers=1, epochs=3,
                     trial=trial)
    assert [s for s, _ in trial.reported] == [1]


def test_tune_gru_lm_sqlite_study_resumes(groove_scores, tmp_path):
    scores = [y[:, :200] for y in groove_scores["train"][:8]]
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    logged = []
    study = tune_gru_lm(scores, n_trials=2, folds=2, epochs=1, storage=storage, study_name="lm", seed=0,
                        layers_choices=(1, 2), hidden_choices=(8, 16),
                        on_trial=lambda t, v, p: logged.append((t.number, v, p)))
    assert len(study.trials) == 2
    assert set(study.best_params) == {"layers", "hidden"}
    assert 1.0 < study.best_value < 2.5
    assert [n for n, _, _ in logged] == [0, 1] and all(set(p) == {"layers", "hidden"} for _, _, p in logged)
    assert len(study.best_trial.user_attrs["fold_perplexities"]) == 2
    again = tune_gru_lm(scores, n_trials=2, folds=2, epochs=1, storage=storage, study_name="lm", seed=0,
                        layers_choices=(1, 2), hidden_choices=(8, 16))
    assert len(again.trials) == 4
    assert [t.number for t in again.trials] == [0, 1, 2, 3]
    # in-memory study
    # in-memory study; a repeated combination reuses the finished trial's value
    mem = tune_gru_lm(scores, n_trials=2, folds=2, epochs=1, layers_choices=(1,), hidden_choices=(8,))
    assert mem.best_params == {"layers": 1, "hidden": 8}
    assert mem.trials[1].user_attrs["duplicate_of"] == 0 and mem.trials[1].value == mem.trials[0].value
