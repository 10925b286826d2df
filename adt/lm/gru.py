"""GRU language model of tatum-level drum scores (tatum paper, Sec. III-C-2, Eq. 2): training, tuning, files.

The network, :class:`GRUDrumLM`, is in :mod:`adt.lm.gru_model` and importable from here (this
module's ``__all__``). :func:`train_gru_lm` trains one model, :func:`tune_gru_lm` chooses its
size with Optuna and k-fold CV (:func:`kfold_indices`), :func:`save` / :func:`load` write and
read checkpoints.

Training choices the paper leaves open (documented here): Adam, random crops of
``segment_tatums`` tatums (each crop is scored as a sequence of its own, starting
with the start flag, as the regularizer sees score segments), about one crop per
``segment_tatums`` tatums of each score per epoch, the model state with the best
validation perplexity (full validation scores) is kept.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from adt.atomic import atomic_path
from adt.cpu import flush_denormals, torch_threads
from adt.lm.gru_model import GRUDrumLM, check_scores, pad_scores
from adt.pretrained import verify

__all__ = ["GRUDrumLM", "train_gru_lm", "tune_gru_lm", "kfold_indices", "save", "load"]


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
        self.train_ys = check_scores(train, what="train")
        k = self.train_ys[0].shape[0]
        self.val_ys = check_scores(val, k, what="val")
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
                Y, mask = pad_scores(crops[s: s + self.batch_size])
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
            _report(trial, rec["val_perplexity"], epoch)
    return tr.best_model(), history


def _report(trial: Any, val_perplexity: float, epoch: int) -> None:
    """Report an epoch's validation perplexity to an optuna trial; optuna.TrialPruned if it should stop."""
    trial.report(val_perplexity, epoch)
    if trial.should_prune():
        raise optuna.TrialPruned(f"pruned at epoch {epoch} (val perplexity {val_perplexity:.4f})")


def kfold_indices(n: int, folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold split of ``range(n)`` (numpy; shuffled with ``seed``): list of (train, val) index arrays.

    Raises:
        ValueError: folds < 2 or folds > n.
    """
    if int(folds) < 2 or int(folds) > n:
        raise ValueError(f"need 2 <= folds <= number of scores ({n}), got {folds}")
    parts = np.array_split(np.random.default_rng(seed).permutation(n), int(folds))
    return [(np.sort(np.concatenate(parts[:i] + parts[i + 1:])), np.sort(parts[i])) for i in range(int(folds))]


def _cv_objective(trial: Any, ys: list[np.ndarray], splits: list[tuple[np.ndarray, np.ndarray]], folds: int,
                  epochs: int, seed: int, lr: float, batch_size: int, segment_tatums: int, num_threads: int | None,
                  layers_choices: Sequence[int], hidden_choices: Sequence[int],
                  on_trial: Callable[[Any, float | None, dict], None] | None) -> float:
    """:func:`tune_gru_lm`'s objective for one trial: the fold-mean best validation perplexity of its
    ``layers`` x ``hidden`` GRU LMs, one per fold of ``splits``, trained in lockstep (or the value of a
    finished identical trial)."""
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
    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    ys = check_scores(scores)
    splits = kfold_indices(len(ys), folds, seed)
    study = optuna.create_study(study_name=study_name, storage=storage, direction="minimize",
                                load_if_exists=storage is not None, pruner=optuna.pruners.MedianPruner())
    n_before = len(study.trials)
    study.sampler = optuna.samplers.TPESampler(seed=seed + n_before)

    objective = functools.partial(_cv_objective, ys=ys, splits=splits, folds=folds, epochs=epochs, seed=seed, lr=lr,
                                  batch_size=batch_size, segment_tatums=segment_tatums, num_threads=num_threads,
                                  layers_choices=layers_choices, hidden_choices=hidden_choices, on_trial=on_trial)
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
