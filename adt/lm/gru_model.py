"""GRU language model of tatum-level drum scores (tatum paper, Sec. III-C-2, Eq. 2): the network.

Eq. 2 factorises a score Y in {0,1}^(K x M) over tatums,

    p(Y) = prod_m p(Y[:, m] | Y[:, 1:m-1]),

and the GRU model represents each factor directly, *without* the bi-gram's
independence of the K drums (Eq. 3): the output at tatum m is a softmax over all
2^K drum combinations (K = 3 -> 8, K = 5 -> 32). Combination ``c`` sets drum k
when bit k of c is 1, i.e. ``c = sum_k Y[k, m] 2^k`` (row 0 = least significant).

Network: input at tatum m is ``[Y[:, m-1], 0]`` and at m = 1 ``[0, ..., 0, 1]``
(a start flag), K + 1 values; ``layers`` stacked GRUs of ``hidden`` units (the
paper's choice, via Optuna and 3-fold CV: 3 x 64, Sec. IV-A); a linear layer to
the 2^K logits; log-softmax.

Relaxed scores (Eq. 5): as a regularizer the LM scores the gumbel-sigmoid output
Y in [0, 1] (Eq. 8). :meth:`GRUDrumLM.nll` is then the expected NLL under
independent Bernoulli(Y[k, m]) draws of the current tatum,

    NLL = -sum_m sum_c q[m, c] log p(c | Y[:, 1:m-1]),
    q[m, c] = prod_k (Y[k, m] if bit_k(c) else 1 - Y[k, m]),

with the soft Y also fed as the GRU input (so gradients reach Y through both q
and the conditioning). It is exact for binary Y (q is then one-hot).

Perplexity (Sec. IV-C) is normalised per drum *and* tatum as in
:class:`adt.lm.bigram.SkipBigramLM`: ``exp(NLL / (K * M))``, so a uniform model (log 2^K
per tatum) scores exactly 2, the paper's chance rate (paper: bi-gram 1.51, GRU 1.44).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn


def check_scores(scores: Sequence[np.ndarray], k: int | None = None, what: str = "scores") -> list[np.ndarray]:
    """``scores`` as float32 (K, M) arrays; ValueError (naming ``what[i]``) unless each is 2-D, binary and
    non-empty, there is one, and all share one K (``k`` where given)."""
    out = []
    for i, y in enumerate(scores):
        y = np.asarray(y)
        if y.ndim != 2:
            raise ValueError(f"{what}[{i}]: expected shape (K, M), got {y.shape}")
        if not np.all((y == 0) | (y == 1)):
            raise ValueError(f"{what}[{i}]: values must be binary (0 or 1)")
        if y.shape[1] == 0:
            raise ValueError(f"{what}[{i}]: score has no tatums")
        out.append(y.astype(np.float32))
    if not out:
        raise ValueError(f"no {what} given")
    ks = {y.shape[0] for y in out} | ({k} if k is not None else set())
    if len(ks) != 1:
        raise ValueError(f"{what}: all scores must have the model's number of drums K, got {sorted(ks)}")
    return out


def pad_scores(batch: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (K, M_i) arrays to (B, K, max M) with a (B, max M) mask."""
    k = batch[0].shape[0]
    m = max(y.shape[1] for y in batch)
    Y = np.zeros((len(batch), k, m), dtype=np.float32)
    mask = np.zeros((len(batch), m), dtype=np.float32)
    for i, y in enumerate(batch):
        Y[i, :, : y.shape[1]] = y
        mask[i, : y.shape[1]] = 1.0
    return torch.from_numpy(Y), torch.from_numpy(mask)


class GRUDrumLM(nn.Module):
    """GRU drum-score LM over the 2^K drum combinations of a tatum (tatum paper, Eq. 2).

    Args:
        k: number of drums K (rows of the scores), 1..10.
        hidden: GRU hidden units per layer.
        layers: stacked GRU layers.
        dropout: dropout between GRU layers (only used when layers > 1).

    Raises:
        ValueError: k, hidden or layers out of range, dropout not in [0, 1).
    """

    def __init__(self, k: int = 5, hidden: int = 64, layers: int = 3, dropout: float = 0.0):
        super().__init__()
        if not 1 <= int(k) <= 10:
            raise ValueError(f"k must be in 1..10 (2^K outputs), got {k}")
        if int(hidden) < 1 or int(layers) < 1:
            raise ValueError(f"hidden and layers must be >= 1, got {hidden}, {layers}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.k, self.hidden, self.layers, self.dropout = int(k), int(hidden), int(layers), float(dropout)
        self.n_combinations = 2 ** self.k
        self.gru = nn.GRU(self.k + 1, self.hidden, num_layers=self.layers, batch_first=True,
                          dropout=self.dropout if self.layers > 1 else 0.0)
        self.out = nn.Linear(self.hidden, self.n_combinations)
        bits = (torch.arange(self.n_combinations)[:, None] >> torch.arange(self.k)[None, :]) & 1
        #: float (2^K, K): bits[c, k] = 1 when combination c has drum k.
        self.register_buffer("bits", bits.float(), persistent=False)

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments (for :func:`save`)."""
        return {"k": self.k, "hidden": self.hidden, "layers": self.layers, "dropout": self.dropout}

    def _check(self, Y: torch.Tensor) -> torch.Tensor:
        if Y.dim() != 3:
            raise ValueError(f"Y must have shape (B, K, M), got {tuple(Y.shape)}")
        if Y.shape[1] != self.k:
            raise ValueError(f"Y has K={Y.shape[1]} drums but the LM models K={self.k}")
        if Y.shape[2] == 0:
            raise ValueError("Y has no tatums (M = 0)")
        w = self.out.weight
        return Y.to(dtype=w.dtype, device=w.device)

    def forward(self, Y: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of every drum combination at every tatum given the previous tatums.

        Args:
            Y: (B, K, M) scores in [0, 1] (binary or relaxed); any float dtype.

        Returns:
            (B, M, 2^K) tensor: ``[b, m, c] = log p(Y[:, m] = c | Y[:, 1:m-1])`` in nats
            (the last axis log-sums to 0); index c encodes drum k in bit k.

        Raises:
            ValueError: Y not 3-D, K mismatch, or M = 0.
        """
        Y = self._check(Y)
        b, k, m = Y.shape
        start = torch.zeros(b, 1, k + 1, dtype=Y.dtype, device=Y.device)
        start[:, :, k] = 1.0  # start flag at m = 1
        prev = torch.cat([Y.transpose(1, 2)[:, :-1], Y.new_zeros(b, m - 1, 1)], dim=2)  # Y[:, m-1], flag 0
        h, _ = self.gru(torch.cat([start, prev], dim=1))  # input (B, M, K + 1)
        return torch.log_softmax(self.out(h), dim=-1)

    def combination_probs(self, Y: torch.Tensor) -> torch.Tensor:
        """q[b, m, c] = prod_k (Y[b,k,m] if bit_k(c) else 1 - Y[b,k,m]): (B, K, M) -> (B, M, 2^K).

        The distribution over combinations of independent Bernoulli(Y) draws; one-hot
        for binary Y. Sums to 1 over c. Y is cast to the model's dtype and device.

        Raises:
            ValueError: Y not 3-D, K mismatch, or M = 0.
        """
        Y = self._check(Y)
        y = Y.transpose(1, 2)[:, :, None, :]  # (B, M, 1, K)
        bits = self.bits.to(dtype=Y.dtype, device=Y.device)  # (2^K, K)
        q = None
        for k in range(Y.shape[1]):  # a running product keeps the peak memory at (B, M, 2^K)
            f = bits[:, k] * y[..., k] + (1 - bits[:, k]) * (1 - y[..., k])
            q = f if q is None else q * f
        return q

    def nll(self, Y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log-likelihood of (relaxed) scores (Eq. 2), in nats, per score.

        ``-sum_m mask[m] sum_c q[m, c] log p(c | Y[:, 1:m-1])`` with q from
        :meth:`combination_probs` (see the module docstring): exact for binary Y,
        differentiable in Y (through q and through the GRU input). Values outside
        [0, 1] are not checked.

        Args:
            Y: (B, K, M) float tensor in [0, 1] (e.g. gumbel-sigmoid samples, Eq. 8).
            mask: optional (B, M), 1 for real tatums, 0 for padding (right-padding:
                a real tatum's predecessors are real).

        Returns:
            (B,) tensor: NLL in nats per score (dtype and device of the model's parameters;
            Y is cast to them).

        Raises:
            ValueError: Y not 3-D, K mismatch, M = 0, mask shape not (B, M).
        """
        Y = self._check(Y)
        b, _, m = Y.shape
        if mask is not None and tuple(mask.shape) != (b, m):
            raise ValueError(f"mask must have shape (B, M) = {(b, m)}, got {tuple(mask.shape)}")
        logp = self.forward(Y)
        q = self.combination_probs(Y)
        per_tatum = -(q * logp).sum(dim=-1)  # (B, M)
        if mask is not None:
            per_tatum = per_tatum * mask.to(dtype=logp.dtype, device=logp.device)
        return per_tatum.sum(dim=1)

    @torch.no_grad()
    def total_nll(self, scores: Sequence[np.ndarray], batch_size: int = 32) -> tuple[float, int]:
        """Summed NLL (nats) of binary scores and their number of binary decisions (K * sum M).

        Whole scores are scored (each from its start flag); batches of similar length.
        Evaluates in eval mode and restores the previous mode.

        Raises:
            ValueError: empty list, non-binary values, wrong rank, K mismatch, M = 0.
        """
        ys = check_scores(scores, self.k)
        order = sorted(range(len(ys)), key=lambda i: ys[i].shape[1])
        was_training = self.training
        self.eval()
        total = 0.0
        try:
            for s in range(0, len(order), batch_size):
                Y, mask = pad_scores([ys[i] for i in order[s: s + batch_size]])
                dev = next(self.parameters()).device
                total += float(self.nll(Y.to(dev), mask.to(dev)).double().sum())
        finally:
            self.train(was_training)
        return total, sum(y.shape[0] * y.shape[1] for y in ys)

    def perplexity(self, scores: Sequence[np.ndarray] | np.ndarray) -> float:
        """Perplexity per drum and tatum: ``exp(sum NLL / (K * sum M))`` (Sec. IV-C).

        Same normalisation as :meth:`adt.lm.bigram.SkipBigramLM.perplexity`: chance level
        (uniform over the 2^K combinations) is exactly 2.

        Args:
            scores: list of binary (K, M_i) arrays, or one (K, M) array.

        Returns:
            perplexity >= 1 (float).

        Raises:
            ValueError: as :meth:`total_nll`.
        """
        if isinstance(scores, np.ndarray) and scores.ndim == 2:
            scores = [scores]
        total, n = self.total_nll(scores)
        return math.exp(total / n)
