"""Repetition-aware (skip-type) bi-gram language model of drum scores.

Source: tatum paper (Ishizuka et al.), Sec. III-C-1, Eq. 3:

    p(Y[:, m] | Y[:, 1:m-1]) = prod_k p(Y[k, m] | Y[k, m-16]) = prod_k pi[k, Y[k, m-16], Y[k, m]]

i.e. each drum k is independent and its onset at tatum m depends only on the same
tatum one 4/4 bar (16 tatums = 16 quarter beats) earlier. The paper writes a single
pi_{A,B}; with "independence of the K drums" we keep one 2 x 2 table per drum.

Choices the paper leaves open (documented here):

* smoothing: additive (Laplace) with ``alpha`` (default 1):
  ``pi[k, a, b] = (C[k, a, b] + alpha) / (C[k, a, 0] + C[k, a, 1] + 2 alpha)``;
* the first bar (m < skip, no predecessor): a per-drum unigram
  ``p1[k] = p(Y[k, m] = 1) = (U[k, 1] + alpha) / (U[k, 0] + U[k, 1] + 2 alpha)``, counted
  over the first-bar tatums of the training scores.

The negative log-likelihood is Eq. 2 with Eq. 3 plugged in (nats). For the
regularizer (Eq. 5) it is evaluated on soft scores Y in [0, 1] (the gumbel-sigmoid
output of Eq. 8) with the expectation form

    -[ yp y log pi11 + yp (1-y) log pi10 + (1-yp) y log pi01 + (1-yp)(1-y) log pi00 ]

(y = Y[k, m], yp = Y[k, m-16]), which is exact for binary Y and differentiable in Y.

Perplexity is ``exp(NLL / (K * M))``: per drum *and* tatum, i.e. per binary decision.
The paper's "chance rate of 2" (Sec. IV-C) only holds under this normalisation: a
uniform model gives NLL = K M log 2, so perplexity 2 (per tatum it would be 2^K).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from adt.atomic import write_json

#: Tatums per bar (4/4 with tatum = quarter beat): the skip of Eq. 3.
BAR_TATUMS = 16


def _as_scores(scores: Iterable[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    if isinstance(scores, np.ndarray) and scores.ndim == 2:
        scores = [scores]
    out = []
    for i, y in enumerate(scores):
        y = np.asarray(y)
        if y.ndim != 2:
            raise ValueError(f"score {i}: expected shape (K, M), got {y.shape}")
        if not np.all((y == 0) | (y == 1)):
            raise ValueError(f"score {i}: values must be binary (0 or 1)")
        out.append(y.astype(np.int64))
    if not out:
        raise ValueError("no scores given")
    k = {y.shape[0] for y in out}
    if len(k) != 1:
        raise ValueError(f"all scores must have the same number of drums K, got {sorted(k)}")
    return out


class SkipBigramLM:
    """Skip-type bi-gram drum-score LM (tatum paper, Eq. 3) with Laplace smoothing.

    Attributes (after :meth:`fit` or :meth:`from_dict`):
        transition_counts: int64 (K, 2, 2); ``[k, a, b]`` = number of tatums m >= skip
            with Y[k, m-skip] = a and Y[k, m] = b in the training scores.
        unigram_counts: int64 (K, 2); ``[k, b]`` = number of first-bar tatums (m < skip)
            with Y[k, m] = b.

    Args:
        skip: distance in tatums to the conditioning tatum (16 = one 4/4 bar).
        alpha: additive smoothing pseudo-count, > 0.

    Raises:
        ValueError: skip < 1 or alpha <= 0.
    """

    def __init__(self, skip: int = BAR_TATUMS, alpha: float = 1.0):
        if int(skip) < 1:
            raise ValueError(f"skip must be >= 1, got {skip}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0 (log 0 otherwise), got {alpha}")
        self.skip = int(skip)
        self.alpha = float(alpha)
        self.transition_counts: np.ndarray | None = None
        self.unigram_counts: np.ndarray | None = None

    # ------------------------------------------------------------------ fitting
    def fit(self, scores: Iterable[np.ndarray] | np.ndarray) -> "SkipBigramLM":
        """Count transitions in binary training scores (replaces earlier counts).

        Args:
            scores: list of binary arrays of shape (K, M_i) (or one (K, M) array);
                same K for all, any lengths M_i (scores shorter than ``skip`` only add
                first-bar counts).

        Returns:
            self.

        Raises:
            ValueError: empty list, non-binary values, wrong rank, differing K.
        """
        ys = _as_scores(scores)
        k = ys[0].shape[0]
        trans = np.zeros((k, 2, 2), dtype=np.int64)
        uni = np.zeros((k, 2), dtype=np.int64)
        for y in ys:
            t, u = self._counts(y)
            trans += t
            uni += u
        self.transition_counts = trans
        self.unigram_counts = uni
        return self

    def _counts(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = y.shape[0]
        s = self.skip
        first = y[:, :s]
        n1 = first.sum(axis=1)
        uni = np.stack([first.shape[1] - n1, n1], axis=1)
        trans = np.zeros((k, 2, 2), dtype=np.int64)
        if y.shape[1] > s:
            code = 2 * y[:, :-s] + y[:, s:]  # (K, M - s), values 0..3 = (a, b)
            for c in range(4):
                trans[:, c // 2, c % 2] = (code == c).sum(axis=1)
        return trans, uni

    def _require_fitted(self) -> None:
        if self.transition_counts is None or self.unigram_counts is None:
            raise RuntimeError("SkipBigramLM is not fitted: call fit() or load() first")

    @property
    def n_drums(self) -> int:
        """K, the number of drums (rows of the scores)."""
        self._require_fitted()
        return int(self.transition_counts.shape[0])

    @property
    def transition_probs(self) -> np.ndarray:
        """float64 (K, 2, 2): ``pi[k, a, b] = p(Y[k,m]=b | Y[k,m-skip]=a)``, rows sum to 1."""
        self._require_fitted()
        c = self.transition_counts.astype(np.float64) + self.alpha
        return c / c.sum(axis=2, keepdims=True)

    @property
    def first_bar_probs(self) -> np.ndarray:
        """float64 (K,): unigram ``p(Y[k,m]=1)`` used for the first bar (m < skip)."""
        self._require_fitted()
        c = self.unigram_counts.astype(np.float64) + self.alpha
        return c[:, 1] / c.sum(axis=1)

    # ---------------------------------------------------------------- scoring
    def nll(self, Y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log-likelihood (Eq. 2 with Eq. 3) of (soft) scores, in nats.

        Summed over drums and tatums; for Y in (0, 1) the expectation form of the
        module docstring is used (exact for binary Y, linear in each Y[k, m] so
        gradients flow to every entry). Values outside [0, 1] are not checked.

        Args:
            Y: float tensor of shape (B, K, M), values in [0, 1] (e.g. gumbel-sigmoid
                samples); any device / floating dtype.
            mask: optional (B, M) tensor, 1 for real tatums and 0 for padding; the term
                of tatum m is weighted by mask[:, m] (right-padding assumed, so a real
                tatum's predecessor is real).

        Returns:
            tensor of shape (B,): NLL per score in nats (same dtype/device as Y).

        Raises:
            RuntimeError: model not fitted.
            ValueError: Y not 3-D, K mismatch, or mask shape not (B, M).
        """
        self._require_fitted()
        if Y.dim() != 3:
            raise ValueError(f"Y must have shape (B, K, M), got {tuple(Y.shape)}")
        b, k, m = Y.shape
        if k != self.n_drums:
            raise ValueError(f"Y has K={k} drums but the LM was fitted with K={self.n_drums}")
        if mask is not None and tuple(mask.shape) != (b, m):
            raise ValueError(f"mask must have shape (B, M) = {(b, m)}, got {tuple(mask.shape)}")
        dtype = Y.dtype if Y.is_floating_point() else torch.float32
        Y = Y.to(dtype)
        log_pi = torch.as_tensor(np.log(self.transition_probs), dtype=dtype, device=Y.device)
        p1 = self.first_bar_probs
        log_p1 = torch.as_tensor(np.log(p1), dtype=dtype, device=Y.device)[None, :, None]
        log_p0 = torch.as_tensor(np.log1p(-p1), dtype=dtype, device=Y.device)[None, :, None]

        s = min(self.skip, m)
        y0 = Y[:, :, :s]
        terms0 = -(y0 * log_p1 + (1 - y0) * log_p0)  # (B, K, s)
        if mask is not None:
            mk = mask.to(dtype=dtype, device=Y.device)
            terms0 = terms0 * mk[:, None, :s]
        total = terms0.sum(dim=(1, 2))
        if m > self.skip:
            y = Y[:, :, self.skip:]
            yp = Y[:, :, : m - self.skip]
            lp = [[log_pi[:, a, bb][None, :, None] for bb in (0, 1)] for a in (0, 1)]
            terms = -(
                yp * y * lp[1][1]
                + yp * (1 - y) * lp[1][0]
                + (1 - yp) * y * lp[0][1]
                + (1 - yp) * (1 - y) * lp[0][0]
            )  # (B, K, M - skip)
            if mask is not None:
                terms = terms * mk[:, None, self.skip:]
            total = total + terms.sum(dim=(1, 2))
        return total

    def score_nll(self, y: np.ndarray) -> float:
        """NLL in nats of one binary score of shape (K, M) (numpy, from counts).

        Equal to ``nll(torch.tensor(y[None]))`` for binary y.

        Raises:
            RuntimeError: not fitted. ValueError: non-binary y, wrong shape or K.
        """
        self._require_fitted()
        (y,) = _as_scores([y])
        if y.shape[0] != self.n_drums:
            raise ValueError(f"score has K={y.shape[0]} drums but the LM was fitted with K={self.n_drums}")
        trans, uni = self._counts(y)
        p1 = self.first_bar_probs
        log_uni = np.stack([np.log1p(-p1), np.log(p1)], axis=1)
        return float(-(trans * np.log(self.transition_probs)).sum() - (uni * log_uni).sum())

    def perplexity(self, scores: Iterable[np.ndarray] | np.ndarray) -> float:
        """Perplexity per drum and tatum: ``exp(sum NLL / (K * sum M))`` (Sec. IV-C).

        Chance level (every probability 0.5) is exactly 2, the paper's "chance rate";
        the paper reports 1.51 for its bi-gram model on 65 RWC songs.

        Args:
            scores: list of binary arrays (K, M_i) or one (K, M) array.

        Returns:
            perplexity >= 1 (float).

        Raises:
            RuntimeError: not fitted. ValueError: as :meth:`fit`, K mismatch, or no tatums.
        """
        ys = _as_scores(scores)
        total = sum(self.score_nll(y) for y in ys)
        n = sum(y.shape[0] * y.shape[1] for y in ys)
        if n == 0:
            raise ValueError("scores hold no tatums")
        return math.exp(total / n)

    # ----------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: type, skip, alpha, counts (probabilities for reading only)."""
        self._require_fitted()
        return {
            "type": "SkipBigramLM",
            "version": 1,
            "skip": self.skip,
            "alpha": self.alpha,
            "n_drums": self.n_drums,
            "transition_counts": self.transition_counts.tolist(),
            "unigram_counts": self.unigram_counts.tolist(),
            "transition_probs": self.transition_probs.tolist(),
            "first_bar_probs": self.first_bar_probs.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SkipBigramLM":
        """Rebuild from :meth:`to_dict` output (probabilities are recomputed from counts).

        Raises:
            ValueError: wrong type tag or count shapes.
        """
        if d.get("type") != "SkipBigramLM":
            raise ValueError(f"not a SkipBigramLM dict (type={d.get('type')!r})")
        lm = cls(skip=int(d["skip"]), alpha=float(d["alpha"]))
        trans = np.asarray(d["transition_counts"], dtype=np.int64)
        uni = np.asarray(d["unigram_counts"], dtype=np.int64)
        if trans.ndim != 3 or trans.shape[1:] != (2, 2) or uni.shape != (trans.shape[0], 2):
            raise ValueError(f"bad count shapes {trans.shape}, {uni.shape}")
        lm.transition_counts, lm.unigram_counts = trans, uni
        return lm

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON, atomically; returns the path."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SkipBigramLM":
        """Read a model written by :meth:`save`.

        Raises:
            FileNotFoundError: no such file. ValueError: not a SkipBigramLM JSON.
        """
        return cls.from_dict(json.loads(Path(path).read_text()))

    def __repr__(self) -> str:
        k = "unfitted" if self.transition_counts is None else f"K={self.n_drums}"
        return f"SkipBigramLM(skip={self.skip}, alpha={self.alpha}, {k})"
