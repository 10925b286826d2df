"""Language-model regularized training (tatum paper, Sec. III-D, Eqs. 4-8).

L_total = L_tran(phi | Y_hat) + alpha * L_lang(Y)   (Eq. 5)

with Y a relaxed binary score drawn from the transcriber's output by the
gumbel-sigmoid trick (Eqs. 6-8, temperature tau = 0.2) and L_lang the negative
log-likelihood of a pretrained, frozen drum-score LM (:class:`adt.lm.bigram.SkipBigramLM`
or :class:`adt.lm.gru.GRUDrumLM`, both with a differentiable ``nll``). The LM is
not used at prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from adt.lm import gru as gru_lm
from adt.lm.bigram import SkipBigramLM
from adt.vocab import CLASSES_5, INDEX_3_IN_5


def gumbel_sigmoid(logits: torch.Tensor, tau: float = 0.2, generator: torch.Generator | None = None,
                   phi_as_probability: bool = False) -> torch.Tensor:
    """A relaxed Bernoulli sample Y in (0, 1) per entry, differentiable in ``logits`` (Eqs. 6-8).

    Y = sigmoid((l + V1 - V2) / tau), V_i = -log(-log U_i), U_i ~ Uniform(0, 1).

    Eq. 8 as printed adds phi itself (a probability) as l. With l = phi in [0, 1]
    a sample exceeds 0.5 with probability sigmoid(phi), between 0.5 and 0.73,
    whatever the model predicts, so the relaxed score would not follow phi. The
    gumbel-sigmoid trick the paper cites (binary Concrete; Jang et al. 2017,
    Maddison et al. 2017) adds the log-odds: with l = logit(phi) a sample exceeds
    0.5 with probability phi exactly, and as tau -> 0 Y becomes a Bernoulli(phi)
    draw. We therefore use the logit (the transcriber's pre-sigmoid output);
    ``phi_as_probability=True`` reproduces the printed form.

    Args:
        logits: logit(phi), any shape.
        tau: temperature (> 0); 0.2 in the paper.

    Returns:
        Y, the shape of ``logits``, values in [eps, 1 - eps] (machine epsilon of the dtype).

    Raises:
        ValueError: tau <= 0.
    """
    if tau <= 0:
        raise ValueError(f"temperature tau must be > 0, got {tau}")
    tiny = torch.finfo(logits.dtype).tiny
    u = torch.rand((2, *logits.shape), generator=generator, dtype=logits.dtype, device=logits.device)
    v = -torch.log(-torch.log(u.clamp(tiny, 1.0 - 1e-7)))
    base = torch.sigmoid(logits) if phi_as_probability else logits
    eps = torch.finfo(logits.dtype).eps
    # sigmoid saturates to exactly 0 or 1 in floating point: keep Y strictly inside (0, 1)
    return torch.sigmoid((base + v[0] - v[1]) / tau).clamp(eps, 1.0 - eps)


def tatum_bce(logits: torch.Tensor, targets: torch.Tensor, gamma: float, mask: torch.Tensor | None = None
              ) -> torch.Tensor:
    """Eq. 4 per tatum: -sum_k (gamma * Y log phi + (1 - Y) log(1 - phi)), averaged over the (unmasked) tatums.

    Eq. 4 sums over drums k and tatums m, and Eq. 5 adds alpha times the score's negative
    log-likelihood, itself a sum over tatums. Both terms are divided here by the same
    number of tatums (summed over the K drums, not averaged), so the paper's alpha
    keeps its weight; averaging over the K x M entries would make alpha K times stronger.

    Args:
        logits, targets: (B, M, K); targets in {0, 1}.
        gamma: weight of onset tatums (paper: 0.46 with the bigram LM, 0.61 with the GRU LM).
        mask: (B, M) bool, True for real tatums (False: padding).

    Returns:
        The loss in nats per tatum (scalar).
    """
    per = nn.functional.binary_cross_entropy_with_logits(
        logits, targets, reduction="none", pos_weight=torch.tensor(gamma, dtype=logits.dtype, device=logits.device))
    per = per.sum(-1)  # (B, M): over the drums
    if mask is None:
        return per.mean()
    m = mask.to(per.dtype)
    return (per * m).sum() / m.sum().clamp_min(1.0)


def regularized_loss(logits: torch.Tensor, targets: torch.Tensor, lm, alpha: float, gamma: float,
                     tau: float = 0.2, mask: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """Eq. 5: L_tran + alpha * L_lang(Y), Y = gumbel_sigmoid(logits).

    Args:
        logits: transcriber output (B, M, K).
        targets: ground-truth tatum score (B, M, K).
        lm: a frozen LM with ``nll(Y)`` taking (B, K, M) scores in [0, 1] and returning
            the per-score negative log-likelihood (B,) (summed over tatums).
        alpha: LM weight (paper: 0.068 bigram, 0.055 GRU).
        mask: (B, M) bool of real tatums (right padding), passed to the LM.

    Returns:
        (total loss, {"tran": float, "lang": float}), L_tran and L_lang per tatum (nats).
    """
    l_tran = tatum_bce(logits, targets, gamma, mask)
    y = gumbel_sigmoid(logits, tau, generator).transpose(1, 2)  # (B, K, M), the LMs' layout
    if mask is None:
        l_lang = lm.nll(y).sum() / (y.shape[0] * y.shape[2])
    else:
        l_lang = lm.nll(y, mask=mask.to(y.dtype)).sum() / mask.sum().clamp_min(1)
    return l_tran + alpha * l_lang, {"tran": float(l_tran.detach()), "lang": float(l_lang.detach())}


class MarginalizedGRULM(nn.Module):
    """A 5-class :class:`adt.lm.gru.GRUDrumLM` scoring 3-class (BD SD HH) scores.

    p(Y3[:, m] = c | history) = sum of p(c5 | history) over the TT and CY bits of c5
    (exact marginal of the current tatum); the history is fed with TT = CY = 0
    (an approximation: the 3-class score holds no toms or cymbals). A 3-class GRU LM
    trained on 3-class scores is preferable when available.
    """

    def __init__(self, lm5: nn.Module, rows: Sequence[int] = INDEX_3_IN_5):
        super().__init__()
        if getattr(lm5, "k", None) != len(CLASSES_5):
            raise ValueError(f"MarginalizedGRULM needs a 5-class GRU LM, got K={getattr(lm5, 'k', None)}")
        self.lm = lm5
        self.rows = list(rows)
        self.k = len(self.rows)
        bits5 = lm5.bits.long()  # (32, 5)
        c3 = sum(bits5[:, r] << j for j, r in enumerate(self.rows))  # (32,) 3-class code of each 5-class code
        self.register_buffer("group", c3, persistent=False)
        bits3 = (torch.arange(2 ** self.k)[:, None] >> torch.arange(self.k)[None, :]) & 1
        self.register_buffer("bits3", bits3.float(), persistent=False)

    def nll(self, Y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """NLL in nats per score of (B, 3, M) relaxed scores (as :meth:`adt.lm.gru.GRUDrumLM.nll`); (B,)."""
        b, k, m = Y.shape
        if k != self.k:
            raise ValueError(f"Y has K={k} drums, expected {self.k}")
        y5 = Y.new_zeros(b, len(CLASSES_5), m)
        y5[:, self.rows] = Y
        logp5 = self.lm(y5)  # (B, M, 32)
        logp3 = torch.stack([torch.logsumexp(logp5[..., self.group == c], dim=-1) for c in range(2 ** k)], dim=-1)
        y = Y.to(logp3.dtype).transpose(1, 2)[:, :, None, :]  # (B, M, 1, K)
        q = torch.prod(self.bits3 * y + (1 - self.bits3) * (1 - y), dim=-1)  # (B, M, 2^K)
        per_tatum = -(q * logp3).sum(-1)
        if mask is not None:
            per_tatum = per_tatum * mask.to(per_tatum.dtype)
        return per_tatum.sum(1)


def freeze(lm):
    """Eval mode and no gradients for an LM's parameters (gradients still reach its input). Returns ``lm``."""
    if isinstance(lm, nn.Module):
        lm.eval()
        lm.requires_grad_(False)
    return lm


def load_lm(kind: str, path: str, k: int = 3):
    """A frozen drum-score LM for K-class scores.

    Args:
        kind: ``"bigram"`` (:class:`adt.lm.bigram.SkipBigramLM` JSON) or ``"gru"`` (:func:`adt.lm.gru.save` checkpoint).
        path: the saved model; for the GRU LM a 5-class model serves K = 3 through
            :class:`MarginalizedGRULM`.

    Raises:
        ValueError: unknown kind or an LM of the wrong K. FileNotFoundError: no such file.
    """
    if kind == "bigram":
        lm = SkipBigramLM.load(path)
        if lm.n_drums != k:
            raise ValueError(f"{path}: bigram LM of K={lm.n_drums} drums, need K={k}")
        return lm
    if kind == "gru":
        lm = gru_lm.load(path)
        if lm.k == k:
            return freeze(lm)
        if lm.k == len(CLASSES_5) and k == 3:
            return freeze(MarginalizedGRULM(lm))
        raise ValueError(f"{path}: GRU LM of K={lm.k} drums cannot score K={k} scores")
    raise ValueError(f"unknown LM kind {kind!r}; choose 'bigram' or 'gru'")
