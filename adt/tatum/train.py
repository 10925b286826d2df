"""Training of the frame-to-tatum CRNN (tatum paper, Secs. III-B, III-D, IV-D).

Tracks on tatum grids and their segments are :mod:`adt.tatum.tracks`.

:func:`train_tatum_model` trains :class:`adt.tatum.model.TatumCRNN` with Eq. 4
(weight gamma on onset tatums) plus, when a pretrained drum-score LM is given,
alpha * L_lang of the gumbel-sigmoid sample (Eq. 5, :func:`adt.tatum.regularization.regularized_loss`);
the LM is frozen. Optimizer as in Sec. IV-D: AdamW, lr 1e-3, weight decay 1e-4,
betas (0.9, 0.999), eps 1e-9. The step with the best validation tatum-level
F-measure (delta = 0.2) is kept.

Choices the paper leaves open (documented here):

* gamma without LM: the paper tunes gamma only for the regularized models
  (0.46 bigram, 0.61 GRU); the unregularized model uses gamma = 1 (plain binary
  cross entropy), the neutral value: the low threshold delta = 0.2 already offsets
  the rarity of onset tatums.
* training and validation grids: ground-truth tatums (the targets then hold every
  annotated onset up to conflicts); estimated tatums are for testing.
* gradient clipping at norm 2 (as the frame-level model, thesis ch. 5).
* initialization: PyTorch's defaults (the paper's He / Uniform(0, 1) initialization
  is not reproduced; Uniform(0, 1) output weights start with saturated sigmoids).
"""

from __future__ import annotations

import copy
import dataclasses
import random
import time
from collections.abc import Callable, Sequence

import numpy as np
import optuna
import torch

from adt.tatum.regularization import regularized_loss, tatum_bce
from adt.tatum.inference import predict_tatums
from adt.tatum.model import TatumCRNN
from adt.tatum.regularization import freeze
from adt.tatum.tracks import TatumTrack, sample_batch
from adt.vocab import classes

#: Loss weights per regularizer (tatum paper Sec. IV-D; gamma without LM: see the module docstring).
PAPER_WEIGHTS: dict[str, dict[str, float]] = {
    "none": {"gamma": 1.0, "alpha": 0.0},
    "bigram": {"gamma": 0.46, "alpha": 0.068},
    "gru": {"gamma": 0.61, "alpha": 0.055},
}


@dataclasses.dataclass(frozen=True)
class TatumTrainConfig:
    """Hyperparameters of :func:`train_tatum_model` (defaults: tatum paper Sec. IV-D where it gives them)."""

    k: int = 3  # drums: 3 (BD SD HH, the paper) or 5
    steps: int = 400
    eval_every: int = 50
    batch_size: int = 8
    segment_tatums: int = 64  # 4 bars of 16th notes
    lr: float = 1e-3
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-9
    gamma: float = 1.0  # Eq. 4
    alpha: float = 0.0  # Eq. 5 (used only with an LM)
    tau: float = 0.2  # Eq. 8
    threshold: float = 0.2  # delta, binarization of phi
    grad_clip: float = 2.0
    channels: int = 32
    conv_layers: int = 4
    hidden: int = 98
    gru_layers: int = 3
    dropout: float = 0.3
    seed: int = 1234


def paper_config(regularizer: str, **overrides) -> TatumTrainConfig:
    """:class:`TatumTrainConfig` with gamma and alpha of :data:`PAPER_WEIGHTS` (``"none"``, ``"bigram"``, ``"gru"``).

    Raises:
        ValueError: an unknown regularizer.
    """
    if regularizer not in PAPER_WEIGHTS:
        raise ValueError(f"unknown regularizer {regularizer!r}; choose one of {sorted(PAPER_WEIGHTS)}")
    return TatumTrainConfig(**{**PAPER_WEIGHTS[regularizer], **overrides})


def _standardization(tracks: Sequence[TatumTrack]) -> tuple[np.ndarray, np.ndarray]:
    total = sq = 0.0
    n = 0
    for t in tracks:
        x = np.asarray(t.x, dtype=np.float64)
        total, sq, n = total + x.sum(0), sq + np.square(x).sum(0), n + len(x)
    mean = total / n
    return mean.astype(np.float32), np.sqrt(np.maximum(sq / n - mean ** 2, 0.0)).astype(np.float32)


def _new_model(config: TatumTrainConfig, n_features: int, stats: tuple[np.ndarray, np.ndarray]) -> TatumCRNN:
    """A fresh :class:`TatumCRNN` of ``config``'s sizes standardizing its input with ``stats`` (mean, std)."""
    model = TatumCRNN(n_features=n_features, n_classes=config.k, channels=config.channels,
                      conv_layers=config.conv_layers, hidden=config.hidden, gru_layers=config.gru_layers,
                      dropout=config.dropout)
    mean, std = stats
    model.set_standardization(torch.as_tensor(mean), torch.as_tensor(std))
    return model


def _validate(model: TatumCRNN, val_tracks: Sequence[TatumTrack], config: TatumTrainConfig, metrics: dict) -> float:
    """Add ``val_f``, ``val_p``, ``val_r`` (NaN without validation tracks) to ``metrics``; return the score the
    best step is chosen by: the validation F, or minus the training loss without validation tracks."""
    from adt.tatum.evaluate import binarize, tatum_prf  # lazy: mir_eval, scipy.signal 0.9 s at import pipelines

    if val_tracks:
        ests = [binarize(predict_tatums(model, t).T, config.threshold) for t in val_tracks]
        val = tatum_prf(ests, [t.y.T for t in val_tracks], classes(config.k))
        metrics.update(val_f=val["f"], val_p=val["p"], val_r=val["r"])
        return val["f"]
    metrics.update(val_f=float("nan"), val_p=float("nan"), val_r=float("nan"))
    return -metrics["loss"]


def train_tatum_model(train_tracks: Sequence[TatumTrack], val_tracks: Sequence[TatumTrack],
                      config: TatumTrainConfig = TatumTrainConfig(), lm=None,
                      stats: tuple[np.ndarray, np.ndarray] | None = None,
                      on_eval: Callable[[int, dict], None] | None = None) -> tuple[TatumCRNN, list[dict]]:
    """Train a :class:`TatumCRNN` (Eq. 4, or Eq. 5 with ``lm``); keep the step with the best validation F.

    Args:
        train_tracks, val_tracks: :class:`TatumTrack` with K = ``config.k`` target columns.
        lm: a pretrained drum-score LM with ``nll(Y (B, K, M), mask)`` (:func:`load_lm`); it is frozen
            here. None: no regularization (alpha unused).
        stats: per-bin (mean, std), shape (F,), for the input standardization; default: the training tracks'.
        on_eval: called with (step, metrics) at every evaluation (for MLflow logging).

    Returns:
        (best model in eval mode, history): one entry per evaluation with ``step``, ``loss``,
        ``tran`` and ``lang`` (means since the last evaluation; ``lang`` NaN without LM),
        ``val_f``, ``val_p``, ``val_r`` (tatum level, delta = ``config.threshold``) and ``seconds``.

    Raises:
        ValueError: no training tracks, targets whose K differs from ``config.k``, features of
            differing widths, or a non-finite loss (the message gives the step).
    """
    if not train_tracks:
        raise ValueError("no training tracks")
    widths = {t.x.shape[1] for t in [*train_tracks, *val_tracks]}
    ks = {t.y.shape[1] for t in [*train_tracks, *val_tracks]}
    if len(widths) != 1 or ks != {config.k}:
        raise ValueError(f"tracks have feature widths {sorted(widths)} and K {sorted(ks)}; "
                         f"need one width and K={config.k}")
    torch.set_flush_denormal(True)  # denormals slow GRU training on CPU up to 100x
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = _new_model(config, widths.pop(), stats if stats is not None else _standardization(train_tracks))
    lm = freeze(lm) if lm is not None else None
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                            betas=tuple(config.betas), eps=config.eps)
    best, best_state, history = None, None, []
    window: dict[str, list[float]] = {"loss": [], "tran": [], "lang": []}
    start = time.perf_counter()
    for step in range(1, config.steps + 1):
        model.train()
        batch = sample_batch(train_tracks, config.batch_size, config.segment_tatums, rng)
        logits = model(batch["x"], batch["owner"], batch["n_tatums"])
        if lm is None:
            loss = tatum_bce(logits, batch["y"], config.gamma, batch["mask"])
            parts = {"tran": float(loss.detach()), "lang": float("nan")}
        else:
            loss, parts = regularized_loss(logits, batch["y"], lm, config.alpha, config.gamma, config.tau,
                                           batch["mask"], gen)
        if not torch.isfinite(loss):
            raise ValueError(f"non-finite loss {float(loss)} at step {step} ({parts})")
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        window["loss"].append(float(loss.detach()))
        window["tran"].append(parts["tran"])
        window["lang"].append(parts["lang"])
        if step % config.eval_every and step != config.steps:
            continue
        metrics = {"step": step, **{k: float(np.mean(v)) for k, v in window.items()}}
        window = {k: [] for k in window}
        score = _validate(model, val_tracks, config, metrics)
        metrics["seconds"] = time.perf_counter() - start
        history.append(metrics)
        if on_eval:
            on_eval(step, metrics)
        if best is None or score > best:
            best, best_state = score, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.eval(), history


#: Optuna search space of the loss weights (log-uniform; the paper's tuned values lie inside).
WEIGHT_SPACE = {"gamma": (0.25, 4.0), "alpha": (1e-3, 0.3)}


def tune_weights(train_tracks: Sequence[TatumTrack], val_tracks: Sequence[TatumTrack], config: TatumTrainConfig,
                 n_trials: int, lm=None, stats: tuple[np.ndarray, np.ndarray] | None = None,
                 on_trial: Callable[[int, dict], None] | None = None,
                 ) -> tuple[TatumCRNN, list[dict], dict]:
    """Tune gamma (Eq. 4) and, with ``lm``, alpha (Eq. 5) on the validation tatum F-measure with
    Optuna (TPE, seeded), as the tatum paper does (Sec. IV-D); the other settings are ``config``'s.

    The first trial is ``config``'s own weights (the paper's), so the result is never worse on
    validation than the untuned model. Without ``lm`` only gamma is searched.

    Args:
        n_trials: trials (>= 1), each a full :func:`train_tatum_model` run.
        on_trial: called with (trial number, {"gamma", "alpha", "val_f"}) after each trial.

    Returns:
        (best model, its history, {"gamma", "alpha", "val_f", "trials": [per-trial dicts]}).

    Raises:
        ValueError: ``n_trials`` < 1, or what :func:`train_tatum_model` raises.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed))
    study.enqueue_trial({"gamma": config.gamma, **({"alpha": config.alpha} if lm is not None else {})})
    best: dict = {}
    trials: list[dict] = []

    def objective(trial: optuna.Trial) -> float:
        weights = {"gamma": trial.suggest_float("gamma", *WEIGHT_SPACE["gamma"], log=True),
                   "alpha": trial.suggest_float("alpha", *WEIGHT_SPACE["alpha"], log=True) if lm is not None else 0.0}
        model, history = train_tatum_model(train_tracks, val_tracks, dataclasses.replace(config, **weights), lm=lm,
                                           stats=stats)
        val_f = max(h["val_f"] for h in history)
        trials.append({"trial": trial.number, **weights, "val_f": val_f})
        if on_trial:
            on_trial(trial.number, trials[-1])
        if not best or val_f > best["val_f"]:
            best.update(model=model, history=history, val_f=val_f, **weights)
        return val_f

    study.optimize(objective, n_trials=n_trials)
    return best["model"], best["history"], {"gamma": best["gamma"], "alpha": best["alpha"], "val_f": best["val_f"],
                                            "trials": trials}
