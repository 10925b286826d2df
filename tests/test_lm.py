"""Skip-type bi-gram drum-score LM (tatum paper, Eq. 3) and its perplexity (Sec. IV-C)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from adt.lm.bigram import SkipBigramLM

torch.set_num_threads(2)

# Tiny corpus, K = 2 drums, skip = 2 so the counts can be done by hand.
Y1 = np.array([[1, 0, 1, 0, 1, 1],
               [0, 0, 0, 0, 0, 0]])
Y2 = np.array([[1, 1, 1],
               [0, 1, 1]])
# drum 0: first bar 1,0 | 1,1 -> U = [1, 3]; pairs (m-2, m): 11,00,11,01 | 11 -> C00=1 C01=1 C10=0 C11=3
# drum 1: first bar 0,0 | 0,1 -> U = [3, 1]; pairs 00,00,00,00 | 01       -> C00=4 C01=1 C10=0 C11=0


@pytest.fixture()
def tiny() -> SkipBigramLM:
    return SkipBigramLM(skip=2, alpha=1.0).fit([Y1, Y2])


def test_counts_and_smoothed_probabilities(tiny):
    np.testing.assert_array_equal(tiny.transition_counts, [[[1, 1], [0, 3]], [[4, 1], [0, 0]]])
    np.testing.assert_array_equal(tiny.unigram_counts, [[1, 3], [3, 1]])
    pi = tiny.transition_probs
    np.testing.assert_allclose(pi[0], [[2 / 4, 2 / 4], [1 / 5, 4 / 5]])
    np.testing.assert_allclose(pi[1], [[5 / 7, 2 / 7], [1 / 2, 1 / 2]])
    np.testing.assert_allclose(pi.sum(axis=2), 1.0)
    np.testing.assert_allclose(tiny.first_bar_probs, [4 / 6, 2 / 6])  # (U1 + 1) / (U0 + U1 + 2)
    assert tiny.n_drums == 2


def test_nll_binary_equals_hand_value(tiny):
    hand = -(
        math.log(2 / 3) + math.log(1 / 3)  # drum 0, first bar: 1, 0
        + 2 * math.log(4 / 5) + math.log(2 / 4) + math.log(2 / 4)  # 11, 11, 00, 01
        + 2 * math.log(2 / 3)  # drum 1, first bar: 0, 0 (p(0) = 1 - 1/3)
        + 4 * math.log(5 / 7)  # 00 x 4
    )
    got = tiny.nll(torch.tensor(Y1[None], dtype=torch.float64))
    assert got.shape == (1,)
    assert got.item() == pytest.approx(hand, rel=1e-12)
    assert tiny.score_nll(Y1) == pytest.approx(hand, rel=1e-12)
    # batch of two: per-score values; a score shorter than skip uses only the unigram
    both = tiny.nll(torch.tensor(np.stack([Y1, Y1]), dtype=torch.float32))
    np.testing.assert_allclose(both.numpy(), [hand, hand], rtol=1e-5)
    short = tiny.nll(torch.tensor([[[1.0], [0.0]]]))
    assert short.item() == pytest.approx(-math.log(2 / 3) - math.log(2 / 3), rel=1e-6)


def test_nll_soft_is_expectation_and_mask(tiny):
    # a soft Y is the bilinear interpolation of the binary values
    y = torch.tensor(np.stack([Y1, Y1]), dtype=torch.float64)
    y[1, 0, 3] = 0.25  # between 0 (Y1) and 1
    y_one = y[:1].clone()
    y_one[0, 0, 3] = 1.0
    out = tiny.nll(torch.cat([y, y_one]))
    assert out[1].item() == pytest.approx(0.75 * out[0].item() + 0.25 * out[2].item(), rel=1e-12)
    # padding mask: masked tail == truncated score
    mask = torch.ones(1, 6)
    mask[0, 4:] = 0
    masked = tiny.nll(torch.tensor(Y1[None], dtype=torch.float64), mask=mask)
    assert masked.item() == pytest.approx(tiny.score_nll(Y1[:, :4]), rel=1e-12)


def test_gradient_flows_to_soft_scores():
    rng = np.random.default_rng(0)
    lm = SkipBigramLM().fit([(rng.random((5, 64)) < 0.3).astype(np.uint8) for _ in range(4)])
    y = torch.rand(3, 5, 40, requires_grad=True)
    out = lm.nll(y)
    assert out.shape == (3,) and torch.isfinite(out).all()
    out.sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()
    assert (y.grad != 0).any()
    assert y.grad[:, :, :16].abs().sum() > 0 and y.grad[:, :, 16:].abs().sum() > 0


def test_perplexity_repetitive_corpus_below_chance():
    rng = np.random.default_rng(1)

    def song(n_bars=8):
        bar = (rng.random((5, 16)) < 0.3).astype(np.uint8)
        return np.tile(bar, (1, n_bars))

    lm = SkipBigramLM().fit([song() for _ in range(20)])
    ppl_train = lm.perplexity([song() for _ in range(20)])
    assert ppl_train < 1.5  # measured ~1.12: only the first bar is uncertain
    assert lm.transition_probs[:, 1, 1].min() > 0.9 and lm.transition_probs[:, 0, 0].min() > 0.9


def test_perplexity_random_scores_near_chance():
    rng = np.random.default_rng(2)
    train = [(rng.random((5, 256)) < 0.5).astype(np.uint8) for _ in range(20)]
    test = [(rng.random((5, 256)) < 0.5).astype(np.uint8) for _ in range(10)]
    ppl = SkipBigramLM().fit(train).perplexity(test)
    assert 1.95 < ppl < 2.05  # measured ~2.00; uniform model = exactly 2 per drum and tatum
    # sparse random scores: no structure, perplexity = exp(binary entropy) (< 2)
    p = 0.2
    sparse = [(rng.random((5, 256)) < p).astype(np.uint8) for _ in range(20)]
    ppl_sparse = SkipBigramLM().fit(sparse[:10]).perplexity(sparse[10:])
    h = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert ppl_sparse == pytest.approx(math.exp(h), abs=0.05)


def test_perplexity_matches_torch_nll(tiny):
    total = tiny.nll(torch.tensor(Y1[None], dtype=torch.float64)).item() + tiny.score_nll(Y2)
    assert tiny.perplexity([Y1, Y2]) == pytest.approx(math.exp(total / (2 * 6 + 2 * 3)), rel=1e-12)


def test_save_load_roundtrip(tiny, tmp_path):
    path = tiny.save(tmp_path / "lm" / "bigram.json")
    d = json.loads(path.read_text())
    assert d["type"] == "SkipBigramLM" and d["skip"] == 2
    lm2 = SkipBigramLM.load(path)
    np.testing.assert_array_equal(lm2.transition_counts, tiny.transition_counts)
    np.testing.assert_allclose(lm2.transition_probs, tiny.transition_probs)
    assert lm2.perplexity([Y1, Y2]) == pytest.approx(tiny.perplexity([Y1, Y2]))
    assert SkipBigramLM.from_dict(tiny.to_dict()).alpha == 1.0
    assert not list(tmp_path.glob("lm/.tmp-*"))


def test_errors():
    lm = SkipBigramLM()
    with pytest.raises(RuntimeError):
        lm.nll(torch.zeros(1, 5, 20))
    with pytest.raises(ValueError):
        lm.fit([])
    with pytest.raises(ValueError):
        lm.fit([np.full((5, 20), 0.5)])
    with pytest.raises(ValueError):
        lm.fit([np.zeros((5, 20)), np.zeros((3, 20))])
    lm.fit([np.zeros((5, 20), np.uint8)])
    with pytest.raises(ValueError):
        lm.nll(torch.zeros(1, 3, 20))
    with pytest.raises(ValueError):
        lm.nll(torch.zeros(5, 20))
    with pytest.raises(ValueError):
        SkipBigramLM(alpha=0)
    with pytest.raises(ValueError):
        SkipBigramLM.from_dict({"type": "GRU"})
