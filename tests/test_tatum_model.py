"""Frame-to-tatum CRNN pieces (tatum paper Eq. 1, Eqs. 4-8) on hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adt.lm.bigram import SkipBigramLM
from adt.tatum.regularization import gumbel_sigmoid, regularized_loss, tatum_bce
from adt.tatum.model import TatumCRNN, tatum_max_pool, tatum_spans


def test_tatum_spans_follow_eq1():
    # tatums at frames 2, 6, 10, 11; spans [b1, (b1+b2)/2), [(b1+b2)/2, (b2+b3)/2), ...
    owner = tatum_spans(np.array([2.0, 6.0, 10.0, 11.0]), 14)
    assert owner.tolist() == [-1, -1, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, -1, -1]
    with pytest.raises(ValueError, match="decrease"):
        tatum_spans(np.array([3.0, 1.0]), 5)


def test_tatum_max_pool_takes_the_span_maximum_and_passes_gradients():
    f = torch.tensor([[[1.0, -1.0], [5.0, 0.0], [2.0, 7.0], [0.0, 3.0], [9.0, 9.0]]], requires_grad=True)  # (1, 5, 2)
    owner = torch.tensor([[0, 0, 1, 1, -1]])
    g = tatum_max_pool(f, owner, n_tatums=3)
    assert g.tolist() == [[[5.0, 0.0], [2.0, 7.0], [0.0, 0.0]]]  # frame 4 outside; tatum 2 empty -> 0
    g.sum().backward()
    assert f.grad.tolist() == [[[0, 0], [1, 1], [1, 1], [0, 0], [0, 0]]]


def test_tatum_crnn_shapes():
    torch.manual_seed(0)
    model = TatumCRNN(n_features=80, n_classes=3)
    x = torch.randn(2, 120, 80)
    owner = torch.stack([tatum_spans(np.arange(5, 115, 12.5), 120), tatum_spans(np.arange(5, 60, 12.5), 120)])
    logits = model(x, owner, n_tatums=9)
    assert logits.shape == (2, 9, 3)


def test_gumbel_sigmoid_in_unit_interval_with_gradients_and_right_rate():
    gen = torch.Generator().manual_seed(0)
    phi = torch.tensor([0.05, 0.5, 0.9])
    logits = torch.logit(phi).repeat(20000, 1).requires_grad_(True)
    y = gumbel_sigmoid(logits, tau=0.2, generator=gen)
    assert bool(((y > 0) & (y < 1)).all())
    y.sum().backward()
    assert bool((logits.grad != 0).any())
    rate = (y > 0.5).float().mean(0)
    assert torch.allclose(rate, phi, atol=0.02)  # logit form: P(Y > 0.5) = phi
    printed = gumbel_sigmoid(torch.logit(phi).repeat(20000, 1), generator=gen, phi_as_probability=True)
    assert float((printed[:, 0] > 0.5).float().mean()) > 0.45  # printed form: >= 0.5 whatever phi


def test_tatum_bce_weights_onsets():
    logits = torch.zeros(1, 2, 1)
    targets = torch.tensor([[[1.0], [0.0]]])
    assert torch.isclose(tatum_bce(logits, targets, gamma=2.0), torch.tensor(1.5 * np.log(2), dtype=torch.float32))
    # per tatum: summed over the K drums (as Eq. 4 and the LM's nll), averaged over unmasked tatums
    three = tatum_bce(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3), gamma=1.0, mask=torch.tensor([[True, True, False]]))
    assert torch.isclose(three, torch.tensor(3 * np.log(2), dtype=torch.float32))


def _train(logits0, targets, lm, alpha, steps=80):
    logits = logits0.clone().requires_grad_(True)
    gen = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam([logits], lr=0.1)
    for _ in range(steps):
        loss, _ = regularized_loss(logits, targets, lm, alpha=alpha, gamma=1.0, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # L_lang of the binarized score (delta = 0.5 on phi), per tatum
    y = (torch.sigmoid(logits) > 0.5).float().transpose(1, 2)
    return float(lm.nll(y).sum()) / y.shape[-1]


def test_regularization_lowers_the_language_loss():
    # LM: a bar-periodic pattern (16 tatums) per drum; targets: that pattern with 10% of
    # the tatums flipped (an unnatural score); the toy transcriber is free logits
    pattern = np.zeros((3, 16), np.uint8)
    pattern[0, ::8] = pattern[1, 4::8] = pattern[2, ::2] = 1
    lm = SkipBigramLM().fit([np.tile(pattern, 8)])
    rng = np.random.default_rng(0)
    noisy = np.tile(pattern, 4) ^ (rng.random((3, 64)) < 0.1)
    targets = torch.from_numpy(noisy.T[None].astype(np.float32))  # (1, 64, 3)
    targets_nll = float(lm.nll(targets.transpose(1, 2)).sum()) / 64
    logits0 = torch.zeros(1, 64, 3)
    plain = _train(logits0, targets, lm, alpha=0.0)  # learns the noisy targets exactly
    regularized = _train(logits0, targets, lm, alpha=3.0)
    assert plain == pytest.approx(targets_nll)  # 2.00 nats per tatum
    assert regularized < 0.7 * plain  # 1.23: pulled towards the LM's regular pattern
