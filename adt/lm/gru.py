"""GRU language model of tatum-level drum scores (tatum paper, Sec. III-C-2, Eq. 2).

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

Training choices the paper leaves open (documented here): Adam, random crops of
``segment_tatums`` tatums (each crop is scored as a sequence of its own, starting
with the start flag, as the regularizer sees score segments), about one crop per
``segment_tatums`` tatums of each score per epoch, the model state with the best
validation perplexity (full validation scores) is kept.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from adt.atomic import atomic_path
from adt.cpu import flush_denormals, torch_threads

__all__ = ["GRUDrumLM", "train_gru_lm", "tune_gru_lm", "kfold_indices", "save", "load"]


def _check_scores(scores: Sequence[np.ndarray], k: int | None = None, what: str = "scores") -> list[np.ndarray]:
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


def _pad(batch: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
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
        ys = _check_scores(scores, self.k)
        order = sorted(range(len(ys)), key=lambda i: ys[i].shape[1])
        was_training = self.training
        self.eval()
        total = 0.0
        try:
            for s in range(0, len(order), batch_size):
                Y, mask = _pad([ys[i] for i in order[s: s + batch_size]])
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


# ----------------------------------------------------------------------------- training


def _crops(ys: list[np.ndarray], segment: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of random crops: ceil(M / segment) crops of <= segment tatums per score, shuffled."""
    out = []
    for y in ys:
        m = y.shape[1]
        if m <= segment:
            out.append(y)
            continue
        for start in rng.integers(0, m - segment + 1, size=math.ceil(m / segment)):
            out.append(y[:, start: start + segment])
    return [out[i] for i in rng.permutation(len(out))]


class _Trainer:
    """One model, its optimiser and best validation state; advanced one epoch at a time."""

    def __init__(self, train: Sequence[np.ndarray], val: Sequence[np.ndarray], hidden: int, layers: int,
                 lr: float, batch_size: int, segment_tatums: int, seed: int, dropout: float = 0.0,
                 init: GRUDrumLM | None = None):
        if int(segment_tatums) < 2:
            raise ValueError(f"segment_tatums must be >= 2, got {segment_tatums}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.train_ys = _check_scores(train, what="train")
        k = self.train_ys[0].shape[0]
        self.val_ys = _check_scores(val, k, what="val")
        self.batch_size, self.segment = int(batch_size), int(segment_tatums)
        self.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.model = GRUDrumLM(k=k, hidden=hidden, layers=layers, dropout=dropout)
        self.best_perplexity = math.inf
        if init is not None:  # fine-tuning: the starting weights compete in the validation selection
            if (init.k, init.hidden, init.layers) != (k, self.model.hidden, self.model.layers):
                raise ValueError(f"init is a K={init.k}, {init.layers} x {init.hidden} GRU LM; expected K={k}, "
                                 f"{self.model.layers} x {self.model.hidden}")
            self.model.load_state_dict(init.state_dict())
            with flush_denormals():
                self.best_perplexity = self.model.perplexity(self.val_ys)
        self.start_perplexity = self.best_perplexity
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.best_state = copy.deepcopy(self.model.state_dict())
        self.epoch = 0

    def step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        self.model.train()
        crops = _crops(self.train_ys, self.segment, self.rng)
        total, n = 0.0, 0
        with flush_denormals():
            for s in range(0, len(crops), self.batch_size):
                Y, mask = _pad(crops[s: s + self.batch_size])
                nll = self.model.nll(Y, mask).sum()
                decisions = float(mask.sum()) * self.model.k
                self.opt.zero_grad(set_to_none=True)
                (nll / decisions).backward()
                self.opt.step()
                total += float(nll.detach())
                n += int(decisions)
            val_ppl = self.model.perplexity(self.val_ys)
        self.epoch += 1
        if val_ppl < self.best_perplexity:
            self.best_perplexity = val_ppl
            self.best_state = copy.deepcopy(self.model.state_dict())
        return {"epoch": self.epoch, "train_nll": total / n, "val_perplexity": val_ppl,
                "seconds": time.perf_counter() - t0}

    def best_model(self) -> GRUDrumLM:
        self.model.load_state_dict(self.best_state)
        self.model.eval()
        return self.model


def train_gru_lm(
    train: Sequence[np.ndarray],
    val: Sequence[np.ndarray],
    hidden: int = 64,
    layers: int = 3,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 16,
    segment_tatums: int = 128,
    seed: int = 0,
    on_epoch: Callable[[int, dict], None] | None = None,
    trial: Any = None,
    dropout: float = 0.0,
    num_threads: int | None = 1,
    init: GRUDrumLM | None = None,
) -> tuple[GRUDrumLM, list[dict]]:
    """Train a :class:`GRUDrumLM` on binary scores (maximum likelihood, Eq. 2).

    Each epoch draws about one random crop of ``segment_tatums`` tatums per
    ``segment_tatums`` tatums of every training score (scores shorter than that are
    used whole), shuffles them into padded, masked batches, and takes one Adam step
    per batch on the NLL per binary decision (nats / (K * tatums)). After each epoch
    the perplexity of the whole validation scores is computed; the state with the
    lowest one is returned. Seeded (numpy crops, torch init): the same inputs give
    the same model. Denormals are flushed while training.

    Threads: by default training runs with ``torch.set_num_threads(1)`` (restored
    afterwards). These GRUs are too small for intra-op parallelism: on the 2-core CI
    machine one thread was as fast as two (3 x 64: 1.3 s vs 1.7 s per 18,700 tatums)
    and, when another process was busy on the cores, 10-70x faster (OpenMP threads
    spin at every time step's barrier). ``num_threads=None`` keeps the caller's setting.

    Fine-tuning (``init``): training starts from a copy of ``init``'s weights (``init`` itself is not
    changed), and those weights take part in the validation selection as epoch 0, so the returned model's
    validation perplexity is never above ``init``'s (it *is* ``init``'s weights when no epoch improved).

    Args:
        train, val: lists of binary (K, M_i) arrays (e.g. from
            :func:`adt.lm.corpus.groove_corpus`), same K.
        hidden, layers, dropout: model size (:class:`GRUDrumLM`).
        epochs: number of epochs, >= 1.
        lr: Adam learning rate.
        batch_size: crops per step.
        segment_tatums: crop length in tatums (128 = 8 bars of 4/4).
        seed: random seed.
        on_epoch: called after each epoch as ``on_epoch(epoch, {"train_nll": nats per
            binary decision, "val_perplexity": float, "seconds": float})`` (epoch from 1).
        trial: optional optuna trial: ``trial.report(val_perplexity, epoch)`` each epoch,
            and ``optuna.TrialPruned`` is raised when ``trial.should_prune()``.
        num_threads: torch intra-op threads while training (None: unchanged).
        init: starting weights (e.g. :func:`adt.lm.shipped.shipped_lm`), same K, ``hidden`` and
            ``layers``; None: a fresh seeded initialisation.

    Returns:
        ``(model, history)``: the best-validation model (eval mode, CPU) and one dict per
        epoch (``epoch``, ``train_nll``, ``val_perplexity``, ``seconds``); with ``init``, the
        first dict is epoch 0: ``init``'s ``val_perplexity`` (``train_nll`` None, no training).

    Raises:
        ValueError: empty/non-binary scores, K mismatch, epochs < 1, bad sizes, ``init`` of
            another K or size.
        optuna.TrialPruned: the trial was pruned.
    """
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    with torch_threads(num_threads):
        tr = _Trainer(train, val, hidden, layers, lr, batch_size, segment_tatums, seed, dropout, init)
    history = [] if init is None else [{"epoch": 0, "train_nll": None, "val_perplexity": tr.start_perplexity,
                                        "seconds": 0.0}]
    for epoch in range(1, int(epochs) + 1):
        with torch_threads(num_threads):
            rec = tr.step()
        history.append(rec)
        if on_epoch is not None:
            on_epoch(epoch, {key: rec[key] for key in ("train_nll", "val_perplexity", "seconds")})
        if trial is not None:
            import optuna

            trial.report(rec["val_perplexity"], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} (val perplexity {rec['val_perplexity']:.4f})")
    return tr.best_model(), history


def kfold_indices(n: int, folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold split of ``range(n)`` (numpy; shuffled with ``seed``): list of (train, val) index arrays.

    Raises:
        ValueError: folds < 2 or folds > n.
    """
    if int(folds) < 2 or int(folds) > n:
        raise ValueError(f"need 2 <= folds <= number of scores ({n}), got {folds}")
    parts = np.array_split(np.random.default_rng(seed).permutation(n), int(folds))
    return [(np.sort(np.concatenate(parts[:i] + parts[i + 1:])), np.sort(parts[i])) for i in range(int(folds))]


def tune_gru_lm(
    scores: Sequence[np.ndarray],
    n_trials: int,
    folds: int = 3,
    epochs: int = 5,
    storage: str | None = None,
    study_name: str = "gru_lm",
    seed: int = 0,
    layers_choices: Sequence[int] = (1, 2, 3),
    hidden_choices: Sequence[int] = (32, 64, 128),
    on_trial: Callable[[Any, float | None, dict], None] | None = None,
    lr: float = 1e-3,
    batch_size: int = 16,
    segment_tatums: int = 128,
    num_threads: int | None = 1,
) -> "optuna.Study":  # noqa: F821
    """Choose the GRU LM's layers and hidden size with Optuna and k-fold CV (tatum paper, Sec. IV-A).

    The paper picked 3 layers x 64 units "by Optuna via 3-fold cross validation".
    Sampler: TPE (seeded with ``seed`` + the number of trials already in the study,
    so a resumed study does not replay its first draws); pruner: MedianPruner.
    Objective (minimised): the mean over folds of each fold's best validation
    perplexity (:func:`train_gru_lm` semantics). The folds (:func:`kfold_indices`,
    split by score) are trained in lockstep, and after every epoch the fold-averaged
    best-so-far perplexity is reported at step = epoch, so pruning can stop a poor
    trial after its first epoch. With the default 3 x 3 grid TPE often proposes a
    combination again; a trial whose params and setup (folds, epochs, seed, lr,
    batch_size, segment_tatums, number of scores) match a completed trial returns
    that trial's value without training (user attr ``duplicate_of``).

    Args:
        scores: binary (K, M_i) arrays, at least ``folds`` of them.
        n_trials: trials to run in this call.
        folds: number of CV folds, >= 2.
        epochs: epochs per fold.
        storage: None: in-memory study; else an Optuna RDB URL (``sqlite:///path.db``),
            opened with ``load_if_exists=True`` so a second call continues the study.
        study_name: study name in the storage.
        seed: seeds the sampler, the folds and the models.
        layers_choices, hidden_choices: categorical search spaces
            (params ``"layers"``, ``"hidden"``).
        on_trial: called once per finished trial as ``on_trial(trial, value, params)``
            (``value`` = objective, None for a pruned trial; ``params`` = trial.params),
            e.g. to log a nested MLflow run. Also set on the trial: user attrs
            ``setup``, ``fold_perplexities`` and ``seconds`` (wall time, s).
        lr, batch_size, segment_tatums, num_threads: as :func:`train_gru_lm`.

    Returns:
        the optuna.Study (``study.best_params`` holds ``layers`` and ``hidden``).

    Raises:
        ValueError: fewer scores than folds, non-binary scores, n_trials < 1.
    """
    import optuna

    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    ys = _check_scores(scores)
    splits = kfold_indices(len(ys), folds, seed)
    study = optuna.create_study(study_name=study_name, storage=storage, direction="minimize",
                                load_if_exists=storage is not None, pruner=optuna.pruners.MedianPruner())
    n_before = len(study.trials)
    study.sampler = optuna.samplers.TPESampler(seed=seed + n_before)

    def objective(trial: optuna.Trial) -> float:
        layers = trial.suggest_categorical("layers", list(layers_choices))
        hidden = trial.suggest_categorical("hidden", list(hidden_choices))
        setup = {"folds": int(folds), "epochs": int(epochs), "seed": int(seed), "lr": float(lr),
                 "batch_size": int(batch_size), "segment_tatums": int(segment_tatums), "n_scores": len(ys)}
        trial.set_user_attr("setup", setup)
        # the search space is small and TPE repeats itself: reuse a finished identical trial
        for old in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if old.params == trial.params and old.user_attrs.get("setup") == setup:
                trial.set_user_attr("duplicate_of", old.number)
                trial.set_user_attr("fold_perplexities", old.user_attrs.get("fold_perplexities"))
                trial.set_user_attr("seconds", 0.0)
                if on_trial is not None:
                    on_trial(trial, float(old.value), dict(trial.params))
                return float(old.value)
        t0 = time.perf_counter()
        trainers = [_Trainer([ys[i] for i in tr], [ys[i] for i in va], hidden, layers, lr, batch_size,
                             segment_tatums, seed + f) for f, (tr, va) in enumerate(splits)]
        value = math.inf
        try:
            for epoch in range(1, int(epochs) + 1):
                with torch_threads(num_threads):
                    for t in trainers:
                        t.step()
                value = float(np.mean([t.best_perplexity for t in trainers]))
                trial.set_user_attr("fold_perplexities", [t.best_perplexity for t in trainers])
                trial.report(value, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch} (mean val perplexity {value:.4f})")
        except optuna.TrialPruned:
            trial.set_user_attr("seconds", time.perf_counter() - t0)
            if on_trial is not None:
                on_trial(trial, None, dict(trial.params))
            raise
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        if on_trial is not None:
            on_trial(trial, value, dict(trial.params))
        return value

    study.optimize(objective, n_trials=int(n_trials))
    return study


# ----------------------------------------------------------------------------- persistence


def save(model: GRUDrumLM, path: str | os.PathLike) -> Path:
    """Write ``{"config", "state_dict"}`` with torch.save, atomically; returns the path."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"type": "GRUDrumLM", "config": model.config, "state_dict": state}, tmp)
    return Path(path)


def load(path: str | os.PathLike) -> GRUDrumLM:
    """Read a model written by :func:`save` (eval mode, CPU).

    Raises:
        FileNotFoundError: no such file. ValueError: not a GRUDrumLM checkpoint, or a shipped file whose SHA-256
        is not the one kept in code (:class:`adt.pretrained.ShippedWeightsError`).
    """
    from adt.pretrained import verify

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such GRU LM checkpoint")
    verify(path)
    d = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(d, dict) or "config" not in d or "state_dict" not in d:
        raise ValueError(f"{path}: not a GRUDrumLM checkpoint (expected keys config, state_dict)")
    model = GRUDrumLM(**d["config"])
    model.load_state_dict(d["state_dict"])
    return model.eval()
