"""Training of the frame-level transcribers (thesis ch. 5 recipe).

Recipe (Fosse 2025, Sec. 5.2-5.5; the tatum paper's Sec. IV-D where it is silent):

* AdamW (thesis Sec. 5.3) with the trial's learning rate and weight decay (eps 1e-9
  as in the tatum paper), BCE on logits with a loss weighting (below);
* random 4-s segments (400 frames) read lazily from memory-mapped shards;
* gradient clipping at norm 2 (Sec. 5.3);
* ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (mode max on the validation micro
  F-measure, factor 0.2 = "divided by 5", patience 5) and early stopping after 15
  epochs without improvement (Sec. 5.3). The thesis's text watches the validation
  loss; here both watch the metric the model is selected on (validation micro F);
* model selection: the epoch with the best validation micro F-measure (50 ms) after
  peak picking (Sec. 5.4/5.5; :data:`adt.frame.peaks.PEAK_PICKING`, default
  ``"thesis"``: madmom peak picking, m = a = w = 2, delta 0.1, peaks >= 0.5);
* inputs standardized per bin with the training set's mean and standard deviation
  (Sec. 5.2), stored inside the model;
* after training, the peak picking's per-class activation floor (the thesis's 0.5) tuned on
  the validation tracks (:func:`adt.frame.peaks.tune_min_peak`) and stored with the model
  (``TrainConfig.tune_peak_picking``; not in the thesis, which keeps 0.5);
* the model records what it heard of mixtures (``transcriber_input``: the shards'
  :attr:`adt.features.shards.ShardDataset.transcriber_input`), so that inference prepares the
  same input (:mod:`adt.transcribe.transcriber`).

Seeded: the same data, config and seed give the same history on CPU (the DataLoader
order, the initialisation and dropout all come from ``config.seed``).

Loss weighting (``TrainConfig.loss_weighting``):

* ``"beta"``: the tatum paper's Eq. 10, onset entries weighted by beta = 8
  (:func:`adt.frame.architectures.weighted_bce`);
* ``"infrequency"``: the thesis's infrequency weights (Sec. 5.2): each frame's BCE,
  summed over classes, is weighted by max(1, sum_i y_ti w_i) with the per-class
  weights w_i of :func:`adt.features.targets.infrequency_weights` from the training set
  (:func:`infrequency_bce`).

Architectures: ``"frame_crnn"`` is :class:`adt.frame.architectures.FrameCRNN` (the tatum paper's
frame-level baseline); every other name is built by ``adt.frame.architectures.build``
(thesis ch. 3). See :func:`adt.frame.checkpoint.build_model`.

The trained model is written and read by :mod:`adt.frame.checkpoint` (weights only), which is all that
inference imports: nothing of this module.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from adt.atomic import atomic_path
from adt.cache import cache_key
from adt.config import LOSS_WEIGHTINGS
from adt.cpu import torch_threads, training_threads
from adt.features.augment import augment_features
from adt.features.shards import ShardDataset, segment_loader
from adt.features.stats import TrainingStats
from adt.frame.architectures import FrameCRNN
from adt.frame.checkpoint import FRAME_CRNN, build_model, evaluate, predict_activations
from adt.frame.peaks import peak_picking_params, tune_min_peak

@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of :func:`train_model` (epochs count; ``*_patience`` in epochs)."""

    epochs: int = 8
    steps_per_epoch: int = 60
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    beta: float = 8.0
    grad_clip: float = 2.0
    #: ReduceLROnPlateau on the validation micro F: lr *= lr_factor after lr_patience bad epochs
    lr_factor: float = 0.2
    lr_patience: int = 5
    #: stop after this many epochs without improvement (None: never)
    early_stop_patience: int | None = 15
    #: name in adt.frame.peaks.PEAK_PICKING used for the validation F-measure (and kept with the model)
    peak_picking: str = "thesis"
    #: after training, tune per-class peak floors on the validation tracks (adt.frame.peaks.tune_min_peak)
    #: and keep them with the model; the epoch is still chosen with ``peak_picking`` as it is
    tune_peak_picking: bool = True
    # FrameCRNN defaults (architecture "frame_crnn"; overridden by ``params``)
    channels: tuple[int, int] = (16, 32)
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.3
    seed: int = 1234
    #: "beta" (tatum paper Eq. 10) or "infrequency" (thesis Sec. 5.2), see the module docstring
    loss_weighting: str = "beta"
    #: DataLoader worker processes (0: read in the training process; on 2 cores that is fast enough,
    #: see benchmarks/bench_features.py)
    num_workers: int = 0
    #: torch CPU threads while training (None: adt.cpu.training_threads(architecture): 1 for the
    #: recurrent FrameCRNN and RNN, 2 for the others; restored afterwards)
    num_threads: int | None = None
    #: random gain per training segment, +-dB (0: none; issue 26 asks for at least 20), and a random
    #: low-pass, high-pass and tilt ("" none, or a name in adt.features.augment.SHAPES: the cause of the
    #: missed real hi-hats)
    gain_db: float = 0.0
    spectral_augment: str = ""

    @classmethod
    def for_section(cls, frame, **overrides) -> TrainConfig:
        """The config of a profile's frame section (:class:`adt.config.FrameSettings`): its epochs, steps per
        epoch, batch size and seed.

        Patience scales down for short runs so the scheduler and early stopping can act
        at all: lr_patience = min(5, max(1, epochs // 4)) and early stopping after
        3 x lr_patience epochs (the thesis's 5 and 15 from 20 epochs on; tiny: 1/3,
        demo (5 epochs): 1/3, full (40 epochs): 5/15). ``epochs`` in ``overrides`` is the
        one the patience scales with; explicit patience overrides win.
        """
        epochs = int(overrides.get("epochs", frame.epochs))
        lr_patience = min(5, max(1, epochs // 4))
        values = dict(epochs=epochs, steps_per_epoch=frame.steps_per_epoch,
                      batch_size=frame.batch_size, seed=frame.seed, lr_patience=lr_patience,
                      early_stop_patience=3 * lr_patience)
        return cls(**{**values, **overrides})


def weighted_bce(logits: torch.Tensor, targets: torch.Tensor, beta: float = 8.0) -> torch.Tensor:
    """Frame-level weighted cross entropy, tatum paper Eq. 10 (beta = 8), averaged over entries.

    Onset frames are weighted by ``beta`` to offset how rare they are.
    """
    pos_weight = torch.full((logits.shape[-1],), beta, dtype=logits.dtype, device=logits.device)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Seed Python, NumPy and PyTorch; use ``threads`` CPU threads (None: unchanged).

    Also flushes denormal floats to zero: on CPU, denormals in GRU/LSTM gradients
    slowed training down up to 100x.
    """
    torch.set_flush_denormal(True)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(threads)


def infrequency_bce(logits: torch.Tensor, targets: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
    """BCE with the thesis's frame-wise infrequency weighting (Sec. 5.2).

    loss = mean over (batch, frame) of max(1, sum_i y_ti w_i) * sum_i BCE(logit_ti, y_ti),
    as in the thesis's training code (RunarFosse/automatic-drum-transcription).

    Args:
        logits, targets: (B, T, K); targets may hold widened 0.5 values.
        class_weights: (K,) infrequency weights w_i.
    """
    frame_weights = (targets * class_weights).sum(-1).clamp_min(1.0)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)
    return (bce * frame_weights).mean()


def shard_stats(shard_dirs: list[Path]) -> TrainingStats:
    """:class:`TrainingStats` over all frames of the shards (streamed one segment at a time).

    Counts overlapping and zero-padded segment frames; the pipeline uses the exact per-track
    statistics (:meth:`adt.features.stats.TrainingStats.of_tracks`) and passes them to
    :func:`train_model` instead.

    Raises:
        ValueError: no training segments.
    """
    out = None
    for d in shard_dirs:
        index = json.loads((Path(d) / "index.json").read_text())
        for shard in index["shards"]:
            x = np.load(Path(d) / f"{shard['name']}.x.npy", mmap_mode="r")
            y = np.load(Path(d) / f"{shard['name']}.y.npy", mmap_mode="r")
            for seg_x, seg_y in zip(x, y):
                one = TrainingStats.of_track(seg_x, seg_y, index.get("feature_type"))
                out = one if out is None else out + one
    if out is None:
        raise ValueError(f"no training segments in {[str(d) for d in shard_dirs]}")
    return out


def frame_crnn_params(config: TrainConfig, params: dict | None = None) -> dict:
    """FrameCRNN hyperparameters: ``config``'s, overridden by ``params`` (keys ``"<kwarg>"`` or
    ``"frame_crnn.<kwarg>"``; ``channels`` int c means (c, 2c)); ``lr`` and ``weight_decay`` pass through."""
    prefix = f"{FRAME_CRNN}."
    out = {"channels": list(config.channels), "hidden": config.hidden, "layers": config.layers,
           "dropout": config.dropout}
    out.update({k.removeprefix(prefix): v for k, v in (params or {}).items()})
    c = out["channels"]
    out["channels"] = [int(c), 2 * int(c)] if isinstance(c, int | np.integer) else [int(v) for v in c]
    return out


def train_model(train_dirs: list[Path], val_items: list[tuple[Path, dict[str, np.ndarray]]],
                config: TrainConfig = TrainConfig(), architecture: str = FRAME_CRNN, params: dict | None = None,
                on_epoch: Callable[[int, dict], None] | None = None, stats: TrainingStats | None = None,
                trial: Any = None, extra_metrics: Callable[[torch.nn.Module], dict] | None = None,
                checkpoint: str | Path | None = None, init: torch.nn.Module | None = None,
                after_step: Callable[[torch.nn.Module], None] | None = None,
                keep_state_at: int | None = None, train_shares: list[float] | None = None,
                inputs_key: str | None = None,
                on_checkpoint: Callable[[int], None] | None = None) -> tuple[torch.nn.Module, list[dict]]:
    """Train one transcriber with the thesis recipe (module docstring); keep the best validation epoch.

    Args:
        train_dirs: shard folders (see :func:`adt.features.shards.write_shards`); the model's
            input width is their feature width (80 log mel, 84 log filtered).
        val_items: validation tracks as (features .npy, reference onsets per class in
            seconds). Without them the epoch with the lowest training loss is kept.
        architecture, params: see :func:`adt.frame.checkpoint.build_model`; ``params["lr"]`` and
            ``params["weight_decay"]`` override ``config``'s.
        on_epoch: called with (epoch, metrics) after each epoch (for MLflow logging).
        stats: the training set's statistics (standardization, infrequency weights);
            default: :func:`shard_stats` of ``train_dirs``.
        trial: an Optuna trial: the validation micro F is reported after each epoch
            (``trial.report(val_f, epoch)``) and ``optuna.TrialPruned`` raised when
            ``trial.should_prune()``.
        extra_metrics: called with the model (eval mode) after each epoch's validation; the
            metrics it returns join the epoch's (e.g. a test-set F-measure curve; never used
            for selection).
        checkpoint: a per-epoch checkpoint file (written atomically after every epoch: weights,
            optimizer, scheduler, best epoch so far, history, random states). When it exists and was
            written for the same architecture, hyperparameters and config, training resumes after its
            epoch and ends as it would have without the interruption (same batches, same dropout);
            ``on_epoch`` and ``trial`` are then called for the new epochs only. Delete it when done.
            The fingerprint names the inputs by their paths, or by ``inputs_key`` when given (workers with
            their own data folders: the same inputs under other paths, :mod:`adt.frame.trial_store`).
        on_checkpoint: called with the epoch each time the per-epoch checkpoint was written (e.g. to keep a
            copy where another machine finds it).
        init: train this model (its weights and standardization as they are: a rewound or trimmed
            network, :mod:`adt.trimming`) instead of a fresh one of ``architecture`` and ``params``.
        after_step: called with the model after every optimizer step (e.g. to re-apply weight masks).
        keep_state_at: keep a copy of the weights after this epoch as the returned model's
            ``rewind_state`` (the lottery ticket's early weights).
        train_shares: the share of training segments drawn from each folder of ``train_dirs`` (same
            length, normalized; e.g. the share of real recordings, :mod:`adt.frame.real_songs`); None:
            every segment equally likely.

    Returns:
        The best model (eval mode, with attributes ``feature_type``, ``architecture``,
        ``hparams``, ``peak_picking``, ``best_epoch``, ``best_val_f``) and the per-epoch
        history: epoch, loss (training), val_f, lr (during the epoch), grad_norm and
        grad_norm_max (before clipping), seconds.

    Raises:
        ValueError: no training segments, an unknown ``loss_weighting`` or peak picking,
            statistics whose width differs from the shards', or ``init`` with ``checkpoint``.
        optuna.TrialPruned: ``trial`` was pruned.
    """
    if config.loss_weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"unknown loss weighting {config.loss_weighting!r}; choose one of {LOSS_WEIGHTINGS}")
    peak_picking_params(config.peak_picking)  # fail early on an unknown name
    if init is not None and checkpoint is not None:
        raise ValueError("a per-epoch checkpoint cannot resume a given init model (its fingerprint does not "
                         "know the model's widths): resume trimmed networks per round (adt.trimming.lottery)")
    threads = config.num_threads if config.num_threads is not None else training_threads(architecture)
    with torch_threads(threads):
        return _train_model(train_dirs, val_items, config, architecture, params, on_epoch, stats, trial,
                            extra_metrics, checkpoint, init, after_step, keep_state_at, train_shares,
                            inputs_key, on_checkpoint)


def _resume(checkpoint: Path | None, fingerprint: str) -> dict | None:
    """The state in a per-epoch checkpoint written for ``fingerprint``, or None (none, another run's, unreadable)."""
    if checkpoint is None or not Path(checkpoint).is_file():
        return None
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception:  # a torn or foreign file: start over (writes are atomic, so rare)
        return None
    return state if isinstance(state, dict) and state.get("fingerprint") == fingerprint else None


def _train_model(train_dirs, val_items, config, architecture, params, on_epoch, stats, trial, extra_metrics,
                 checkpoint=None, init=None, after_step=None, keep_state_at=None, train_shares=None,
                 inputs_key=None, on_checkpoint=None):
    """:func:`train_model`'s body, run under its thread count."""
    seed_everything(config.seed)
    data = ShardDataset(train_dirs)
    if len(data) == 0:
        raise ValueError(f"no training segments in {[str(d) for d in train_dirs]}")
    if stats is None:
        stats = shard_stats(train_dirs)
    if len(stats.total) != data.n_features or len(stats.onsets) != data.n_classes:
        raise ValueError(f"statistics of {len(stats.total)} bins x {len(stats.onsets)} classes do not fit "
                         f"shards of {data.n_features} x {data.n_classes} in {[str(d) for d in train_dirs]}")
    class_weights = torch.from_numpy(stats.infrequency_weights())
    hparams = _hparams(config, architecture, params)
    model = _initial_model(architecture, hparams, data, stats, init)
    rewind_state = None
    opt = torch.optim.AdamW(model.parameters(), lr=float(hparams["lr"]), weight_decay=float(hparams["weight_decay"]),
                            eps=1e-9)
    # threshold 0: any increase of the validation F counts, as for early stopping and selection
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=config.lr_factor,
                                                           patience=config.lr_patience, threshold=0.0)
    weights = data.segment_weights(train_shares) if train_shares is not None else None
    loader = segment_loader(data, config.batch_size, config.steps_per_epoch * config.batch_size, config.seed,
                            num_workers=config.num_workers, weights=weights)
    aug_gen = torch.Generator().manual_seed(config.seed + 1)
    feature_type = data.feature_type or stats.feature_type or "log_mel"

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if config.loss_weighting == "infrequency":
            return infrequency_bce(logits, y, class_weights)
        return weighted_bce(logits, y, config.beta)

    best_score, best_epoch, best_state, history, since_best, first = -np.inf, 0, None, [], 0, 1
    inputs = ([inputs_key] if inputs_key is not None else  # named alike on every machine, else by the paths
              [[str(d) for d in train_dirs], [str(p) for p, _ in val_items]])
    fingerprint = cache_key("epochs", architecture, hparams, dataclasses.asdict(config), *inputs,
                            *([train_shares] if train_shares is not None else []))
    resumed = _resume(checkpoint, fingerprint)
    if resumed is not None:
        best_score, best_epoch, best_state, history, since_best, first = _restore(resumed, model, opt, scheduler,
                                                                                  loader, aug_gen)
    for epoch in range(first, config.epochs + 1):
        if history and config.early_stop_patience is not None and since_best >= config.early_stop_patience:
            break  # a checkpoint written at the epoch that stopped
        start, lr = time.perf_counter(), opt.param_groups[0]["lr"]
        losses, norms = _train_epoch(model, opt, loss_fn, loader, config, feature_type, aug_gen, after_step)
        if epoch == keep_state_at:
            rewind_state = copy.deepcopy(model.state_dict())
        val_f, metrics = _epoch_metrics(model, epoch, losses, norms, lr, start, val_items, config, extra_metrics)
        history.append(metrics)
        if on_epoch:
            on_epoch(epoch, metrics)
        score = val_f if val_items else -metrics["loss"]
        if best_state is None or score > best_score:
            best_score, best_epoch, best_state, since_best = score, epoch, copy.deepcopy(model.state_dict()), 0
        else:
            since_best += 1
        scheduler.step(score)
        if checkpoint is not None:
            _save_epoch(checkpoint, model, opt, scheduler, loader, aug_gen, fingerprint=fingerprint, epoch=epoch,
                        best_score=best_score, best_epoch=best_epoch, best_state=best_state, history=history,
                        since_best=since_best)
            if on_checkpoint is not None:
                on_checkpoint(epoch)
        if trial is not None:
            trial.report(score, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} (validation F {score:.4f})")
        if config.early_stop_patience is not None and since_best >= config.early_stop_patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    if keep_state_at is not None:
        model.rewind_state = rewind_state
    _describe(model, data, stats, architecture, hparams, config, best_epoch, best_score, val_items)
    return model, history


def _hparams(config: TrainConfig, architecture: str, params: dict | None) -> dict:
    """The trial's hyperparameters with ``config``'s defaults (FrameCRNN: :func:`frame_crnn_params`; ``lr``,
    ``weight_decay``)."""
    hparams = dict(params or {})
    if architecture == FRAME_CRNN:
        hparams = frame_crnn_params(config, hparams)
    hparams.setdefault("lr", config.lr)
    hparams.setdefault("weight_decay", config.weight_decay)
    return hparams


def _initial_model(architecture: str, hparams: dict, data: ShardDataset, stats: TrainingStats,
                   init: torch.nn.Module | None) -> torch.nn.Module:
    """``init`` as it is, else a fresh model of ``architecture`` standardized with the training statistics."""
    if init is not None:
        return init
    model = build_model(architecture, hparams, data.n_features, data.n_classes)
    model.set_standardization(torch.from_numpy(stats.mean), torch.from_numpy(stats.std))
    return model


def _train_epoch(model, opt, loss_fn, loader, config: TrainConfig, feature_type: str, aug_gen: torch.Generator,
                 after_step) -> tuple[list[float], list[float]]:
    """One epoch of optimizer steps (gradients clipped at ``config.grad_clip``; segments augmented as the config
    says, with ``aug_gen``): each batch's loss and gradient norm before clipping."""
    losses, norms = [], []
    augment = config.gain_db > 0 or bool(config.spectral_augment)
    model.train()
    for x, y in loader:
        if augment:
            x = augment_features(x, feature_type, aug_gen, config.gain_db, config.spectral_augment or None)
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)))
        opt.step()
        if after_step is not None:
            after_step(model)
        losses.append(loss.item())
    return losses, norms


def _restore(resumed: dict, model, opt, scheduler, loader, aug_gen) -> tuple:
    """Load a per-epoch checkpoint's state (:func:`_save_epoch`) into the training objects; returns the loop's
    (best score, best epoch, best state, history, epochs since the best, first epoch to run)."""
    model.load_state_dict(resumed["model"])
    opt.load_state_dict(resumed["optimizer"])
    scheduler.load_state_dict(resumed["scheduler"])
    loader.sampler.generator.set_state(resumed["sampler_rng"])
    torch.set_rng_state(resumed["torch_rng"])
    if "augment_rng" in resumed:
        aug_gen.set_state(resumed["augment_rng"])
    return (resumed["best_score"], resumed["best_epoch"], resumed["best_state"], resumed["history"],
            resumed["since_best"], resumed["epoch"] + 1)


def _epoch_metrics(model, epoch: int, losses, norms, lr: float, start: float, val_items, config: TrainConfig,
                   extra_metrics) -> tuple[float, dict]:
    """The validation micro F (NaN without validation tracks) and an epoch's figures: training loss, that F,
    learning rate, gradient norms, seconds since ``start``, and ``extra_metrics``' (the model in eval mode)."""
    val_f = float(evaluate(model, val_items, peak_picking=config.peak_picking)["f"]) if val_items else float("nan")
    metrics = {"epoch": epoch, "loss": float(np.mean(losses)), "val_f": val_f, "lr": lr,
               "grad_norm": float(np.mean(norms)), "grad_norm_max": float(np.max(norms)),
               "seconds": time.perf_counter() - start}
    if extra_metrics is not None:
        model.eval()
        metrics.update(extra_metrics(model))
    return val_f, metrics


def _save_epoch(checkpoint, model, opt, scheduler, loader, aug_gen, **progress) -> None:
    """Write the per-epoch checkpoint atomically: weights, optimizer, scheduler, random states and the loop's
    ``progress`` (fingerprint, epoch, best score, epoch and state, history, epochs since the best)."""
    with atomic_path(checkpoint, suffix=".pt") as tmp:
        torch.save({"fingerprint": progress["fingerprint"], "epoch": progress["epoch"], "model": model.state_dict(),
                    "optimizer": opt.state_dict(), "scheduler": scheduler.state_dict(),
                    "sampler_rng": loader.sampler.generator.get_state(), "torch_rng": torch.get_rng_state(),
                    "augment_rng": aug_gen.get_state(),
                    "best_score": float(progress["best_score"]), "best_epoch": progress["best_epoch"],
                    "best_state": progress["best_state"], "history": progress["history"],
                    "since_best": progress["since_best"]}, tmp)


def _describe(model, data: ShardDataset, stats: TrainingStats, architecture: str, hparams: dict,
              config: TrainConfig, best_epoch: int, best_score: float, val_items) -> None:
    """Set what the trained model carries (what :mod:`adt.frame.checkpoint` saves): feature type, architecture,
    hyperparameters, peak picking (tuned on validation with ``config.tune_peak_picking``), best epoch and
    validation F, input widths, what it heard of mixtures."""
    model.feature_type = data.feature_type or stats.feature_type or "log_mel"
    model.architecture, model.hparams, model.peak_picking = architecture, hparams, config.peak_picking
    model.best_epoch, model.io_dims = best_epoch, (data.n_features, data.n_classes)
    model.best_val_f = float(best_score) if val_items else float("nan")
    model.transcriber_input = data.transcriber_input
    if val_items and config.tune_peak_picking:
        tuned = tune_peak_picking(model, val_items, config.peak_picking)
        model.peak_picking, model.tuned_val_f = tuned, tuned.pop("tuned_f")


def tune_peak_picking(model: torch.nn.Module, items: list[tuple[Path, dict[str, np.ndarray]]],
                      peak_picking: str | dict = "thesis") -> dict:
    """:func:`adt.frame.peaks.tune_min_peak` of ``model`` on tracks given as (features .npy,
    reference onsets): the peak-picking keyword arguments with per-class floors, and ``"tuned_f"``."""
    acts = [predict_activations(model, np.load(path, mmap_mode="r")) for path, _ in items]
    return tune_min_peak(acts, [ref for _, ref in items], peak_picking)


def train_frame_model(train_dirs: list[Path], val_items: list[tuple[Path, dict[str, np.ndarray]]],
                      config: TrainConfig = TrainConfig(),
                      on_epoch: Callable[[int, dict], None] | None = None,
                      stats: TrainingStats | None = None) -> tuple[FrameCRNN, list[dict]]:
    """:func:`train_model` of the :class:`FrameCRNN` with ``config``'s hyperparameters."""
    return train_model(train_dirs, val_items, config, FRAME_CRNN, None, on_epoch, stats)
