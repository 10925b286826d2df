"""Training and inference of the frame-level transcribers (thesis ch. 5 recipe).

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
(thesis ch. 3). See :func:`build_model`.
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
import torch

from adt.config import LOSS_WEIGHTINGS
from adt.cpu import torch_threads, training_threads
from adt.frame.peaks import peak_picking_params, pick_peaks
from adt.features.shards import ShardDataset, segment_loader
from adt.features.stats import TrainingStats
from adt.frame.architectures import FrameCRNN
from adt.vocab import CLASSES_5

#: Architecture name of :class:`adt.frame.architectures.FrameCRNN` (the tatum paper's frame baseline).
FRAME_CRNN = "frame_crnn"
#: Optimizer hyperparameters inside a ``params`` dict (the rest are the architecture's).
OPTIMIZER_PARAMS = ("lr", "weight_decay")


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
    def for_profile(cls, profile, **overrides) -> TrainConfig:
        """The config of an :class:`adt.config.Profile`: its epochs, steps per epoch, batch size and seed.

        Patience scales down for short runs so the scheduler and early stopping can act
        at all: lr_patience = min(5, max(1, epochs // 4)) and early stopping after
        3 x lr_patience epochs (the thesis's 5 and 15 from 20 epochs on; tiny: 1/3,
        demo (5 epochs): 1/3, full (40 epochs): 5/15). ``epochs`` in ``overrides`` is the
        one the patience scales with; explicit patience overrides win.
        """
        epochs = int(overrides.get("epochs", profile.epochs))
        lr_patience = min(5, max(1, epochs // 4))
        values = dict(epochs=epochs, steps_per_epoch=profile.steps_per_epoch,
                      batch_size=profile.batch_size, seed=profile.seed, lr_patience=lr_patience,
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


def feature_stats(shard_dirs: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and standard deviation over all frames of the shards, shape (F,) (see :func:`shard_stats`)."""
    stats = shard_stats(shard_dirs)
    return torch.from_numpy(stats.mean), torch.from_numpy(stats.std)


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


def build_model(architecture: str, params: dict, n_features: int, n_classes: int) -> torch.nn.Module:
    """A fresh model: (B, T, F) features -> (B, T, K) onset logits.

    Args:
        architecture: ``"frame_crnn"`` (:class:`adt.frame.architectures.FrameCRNN`), a name in
            ``adt.frame.architectures.ARCHITECTURES`` (thesis ch. 3) or ``OTHER_ARCHITECTURES``
            (``"lottery_drum_cnn"``, the lottery paper's drum model; params: its constructor kwargs).
        params: the architecture's hyperparameters, keyed ``"<architecture>.<kwarg>"`` as
            ``adt.frame.architectures.suggest`` returns them (``frame_crnn`` also takes bare kwargs);
            ``lr`` and ``weight_decay`` are ignored.

    Raises:
        ValueError: an unknown architecture (from ``adt.frame.architectures.build``).
    """
    arch_params = {k: v for k, v in params.items() if k not in OPTIMIZER_PARAMS}
    if architecture == FRAME_CRNN:
        arch_params = {k.removeprefix(f"{FRAME_CRNN}."): v for k, v in arch_params.items()}
        arch_params["channels"] = tuple(arch_params["channels"])
        return FrameCRNN(n_features=n_features, n_classes=n_classes, **arch_params)
    from adt.frame import architectures

    if architecture in architectures.OTHER_ARCHITECTURES:
        kwargs = {k.removeprefix(f"{architecture}."): v for k, v in arch_params.items()}
        return architectures.OTHER_ARCHITECTURES[architecture](n_features=n_features, n_classes=n_classes, **kwargs)
    return architectures.build(architecture, arch_params, n_features, n_classes)


def predict_activations(model: torch.nn.Module, features: np.ndarray) -> np.ndarray:
    """Onset activation function of one track: (T, F) features -> (T, K) probabilities."""
    # np.array copies: mmaps are read-only
    return model.activations(torch.from_numpy(np.array(features, dtype=np.float32))).numpy()


def model_peak_picking(model: torch.nn.Module) -> str | dict:
    """The peak picking a model was selected with, or tuned for on validation (``model.peak_picking``:
    a :data:`adt.frame.peaks.PEAK_PICKING` name or keyword arguments; ``"paper"`` for older models)."""
    return getattr(model, "peak_picking", None) or "paper"


def transcribe_features(model: torch.nn.Module, features: np.ndarray,
                        peak_picking: str | dict | None = None) -> dict[str, np.ndarray]:
    """Onset times (seconds) per drum class from feature frames (T, F), via peak picking
    (default: the model's own, :func:`model_peak_picking`)."""
    params = peak_picking_params(peak_picking or model_peak_picking(model))
    return pick_peaks(predict_activations(model, features), **params)


def evaluate(model: torch.nn.Module, items: list[tuple[Path, dict[str, np.ndarray]]],
             classes: tuple[str, ...] = CLASSES_5, peak_picking: str | dict | None = None) -> dict:
    """Micro F-measure (50 ms) of ``model`` on tracks given as (features .npy, reference onsets);
    see :func:`adt.metrics.micro_f_measure` for the keys."""
    refs, ests = [], []
    for feat_path, ref in items:
        ests.append(transcribe_features(model, np.load(feat_path, mmap_mode="r"), peak_picking))
        refs.append(ref)
    from adt.metrics import micro_f_measure  # mir_eval: not imported by `adt transcribe`

    return micro_f_measure(refs, ests, classes=classes)


def train_model(train_dirs: list[Path], val_items: list[tuple[Path, dict[str, np.ndarray]]],
                config: TrainConfig = TrainConfig(), architecture: str = FRAME_CRNN, params: dict | None = None,
                on_epoch: Callable[[int, dict], None] | None = None, stats: TrainingStats | None = None,
                trial: Any = None, extra_metrics: Callable[[torch.nn.Module], dict] | None = None,
                checkpoint: str | Path | None = None, init: torch.nn.Module | None = None,
                after_step: Callable[[torch.nn.Module], None] | None = None,
                keep_state_at: int | None = None,
                train_shares: list[float] | None = None) -> tuple[torch.nn.Module, list[dict]]:
    """Train one transcriber with the thesis recipe (module docstring); keep the best validation epoch.

    Args:
        train_dirs: shard folders (see :func:`adt.features.shards.write_shards`); the model's
            input width is their feature width (80 log mel, 84 log filtered).
        val_items: validation tracks as (features .npy, reference onsets per class in
            seconds). Without them the epoch with the lowest training loss is kept.
        architecture, params: see :func:`build_model`; ``params["lr"]`` and
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
                            extra_metrics, checkpoint, init, after_step, keep_state_at, train_shares)


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
                 checkpoint=None, init=None, after_step=None, keep_state_at=None, train_shares=None):
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
    hparams = dict(params or {})
    if architecture == FRAME_CRNN:
        hparams = frame_crnn_params(config, hparams)
    hparams.setdefault("lr", config.lr)
    hparams.setdefault("weight_decay", config.weight_decay)
    if init is None:
        model = build_model(architecture, hparams, data.n_features, data.n_classes)
        model.set_standardization(torch.from_numpy(stats.mean), torch.from_numpy(stats.std))
    else:
        model = init
    rewind_state = None
    opt = torch.optim.AdamW(model.parameters(), lr=float(hparams["lr"]), weight_decay=float(hparams["weight_decay"]),
                            eps=1e-9)
    # threshold 0: any increase of the validation F counts, as for early stopping and selection
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=config.lr_factor,
                                                           patience=config.lr_patience, threshold=0.0)
    weights = data.segment_weights(train_shares) if train_shares is not None else None
    loader = segment_loader(data, config.batch_size, config.steps_per_epoch * config.batch_size, config.seed,
                            num_workers=config.num_workers, weights=weights)
    augment = config.gain_db > 0 or bool(config.spectral_augment)
    if augment:
        from adt.features.augment import augment_features
    aug_gen = torch.Generator().manual_seed(config.seed + 1)
    feature_type = data.feature_type or stats.feature_type or "log_mel"

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if config.loss_weighting == "infrequency":
            return infrequency_bce(logits, y, class_weights)
        return weighted_bce(logits, y, config.beta)

    best_score, best_epoch, best_state, history, since_best, first = -np.inf, 0, None, [], 0, 1
    from adt.cache import cache_key

    fingerprint = cache_key("epochs", architecture, hparams, dataclasses.asdict(config),
                            [str(d) for d in train_dirs], [str(p) for p, _ in val_items],
                            *([train_shares] if train_shares is not None else []))
    resumed = _resume(checkpoint, fingerprint)
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        opt.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        loader.sampler.generator.set_state(resumed["sampler_rng"])
        torch.set_rng_state(resumed["torch_rng"])
        if "augment_rng" in resumed:
            aug_gen.set_state(resumed["augment_rng"])
        best_score, best_epoch, best_state = resumed["best_score"], resumed["best_epoch"], resumed["best_state"]
        history, since_best, first = resumed["history"], resumed["since_best"], resumed["epoch"] + 1
    for epoch in range(first, config.epochs + 1):
        if history and config.early_stop_patience is not None and since_best >= config.early_stop_patience:
            break  # a checkpoint written at the epoch that stopped
        start, losses, norms = time.perf_counter(), [], []
        lr = opt.param_groups[0]["lr"]
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
        if epoch == keep_state_at:
            rewind_state = copy.deepcopy(model.state_dict())
        val_f = float(evaluate(model, val_items, peak_picking=config.peak_picking)["f"]) if val_items else float("nan")
        metrics = {"epoch": epoch, "loss": float(np.mean(losses)), "val_f": val_f, "lr": lr,
                   "grad_norm": float(np.mean(norms)), "grad_norm_max": float(np.max(norms)),
                   "seconds": time.perf_counter() - start}
        if extra_metrics is not None:
            model.eval()
            metrics.update(extra_metrics(model))
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
            from adt.atomic import atomic_path

            with atomic_path(checkpoint, suffix=".pt") as tmp:
                torch.save({"fingerprint": fingerprint, "epoch": epoch, "model": model.state_dict(),
                            "optimizer": opt.state_dict(), "scheduler": scheduler.state_dict(),
                            "sampler_rng": loader.sampler.generator.get_state(), "torch_rng": torch.get_rng_state(),
                            "augment_rng": aug_gen.get_state(),
                            "best_score": float(best_score), "best_epoch": best_epoch, "best_state": best_state,
                            "history": history, "since_best": since_best}, tmp)
        if trial is not None:
            import optuna

            trial.report(score, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} (validation F {score:.4f})")
        if config.early_stop_patience is not None and since_best >= config.early_stop_patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    if keep_state_at is not None:
        model.rewind_state = rewind_state
    model.feature_type = data.feature_type or stats.feature_type or "log_mel"
    model.architecture, model.hparams, model.peak_picking = architecture, hparams, config.peak_picking
    model.best_epoch, model.io_dims = best_epoch, (data.n_features, data.n_classes)
    model.best_val_f = float(best_score) if val_items else float("nan")
    model.transcriber_input = data.transcriber_input
    if val_items and config.tune_peak_picking:
        tuned = tune_peak_picking(model, val_items, config.peak_picking)
        model.peak_picking, model.tuned_val_f = tuned, tuned.pop("tuned_f")
    return model, history


def tune_peak_picking(model: torch.nn.Module, items: list[tuple[Path, dict[str, np.ndarray]]],
                      peak_picking: str | dict = "thesis") -> dict:
    """:func:`adt.frame.peaks.tune_min_peak` of ``model`` on tracks given as (features .npy,
    reference onsets): the peak-picking keyword arguments with per-class floors, and ``"tuned_f"``."""
    from adt.frame.peaks import tune_min_peak

    acts = [predict_activations(model, np.load(path, mmap_mode="r")) for path, _ in items]
    return tune_min_peak(acts, [ref for _, ref in items], peak_picking)


def train_frame_model(train_dirs: list[Path], val_items: list[tuple[Path, dict[str, np.ndarray]]],
                      config: TrainConfig = TrainConfig(),
                      on_epoch: Callable[[int, dict], None] | None = None,
                      stats: TrainingStats | None = None) -> tuple[FrameCRNN, list[dict]]:
    """:func:`train_model` of the :class:`FrameCRNN` with ``config``'s hyperparameters."""
    return train_model(train_dirs, val_items, config, FRAME_CRNN, None, on_epoch, stats)


def _plain(value):
    """A NumPy scalar as a Python one (checkpoints load with ``weights_only=True``)."""
    return value.item() if isinstance(value, np.generic) else value


def checkpoint_state(model: torch.nn.Module) -> dict:
    """A trained model as tensors and plain Python values (what :func:`save_model` writes): architecture,
    hyperparameters, config, weights (CPU), feature type, peak picking, scores, input, the input level
    inference normalizes to (``input_level_db``, dBFS, or None: :func:`adt.audio.normalize_level`), and for a trimmed
    network its units per layer (``model.trimmed``); rebuilt by :func:`model_from_state`."""
    dims = getattr(model, "io_dims", None) or (model.config["n_features"], model.config["n_classes"])
    state = {"architecture": getattr(model, "architecture", FRAME_CRNN), "hparams": getattr(model, "hparams", {}),
             "config": model.config, "n_features": int(dims[0]), "n_classes": int(dims[1]),
             "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "feature_type": getattr(model, "feature_type", "log_mel"), "peak_picking": model_peak_picking(model),
             "best_epoch": _plain(getattr(model, "best_epoch", None)),
             "best_val_f": _plain(getattr(model, "best_val_f", None)),
             "tuned_val_f": _plain(getattr(model, "tuned_val_f", None)),
             "transcriber_input": model_input(model),
             "input_level_db": _plain(getattr(model, "input_level_db", None))}
    if getattr(model, "trimmed", None):
        state["trimmed"] = dict(model.trimmed)
    return state


def save_model(model: torch.nn.Module, path: str | Path) -> Path:
    """Write a trained model's checkpoint (:func:`checkpoint_state`) atomically; read it with :func:`load_model`."""
    from adt.atomic import atomic_path

    state = checkpoint_state(model)
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    return Path(path)


def model_from_state(state: dict, what: str = "checkpoint") -> torch.nn.Module:
    """The model of a :func:`checkpoint_state` dict (or an older ``{"config", "state_dict"}`` FrameCRNN one),
    in eval mode on CPU: the architecture rebuilt from its config (trimmed widths applied), then the weights.

    Raises:
        ValueError: not a transcriber checkpoint (``what`` names it in the message).
    """
    if not isinstance(state, dict) or "state_dict" not in state or "config" not in state:
        raise ValueError(f"{what}: not a transcriber checkpoint (expected keys config, state_dict)")
    arch = state.get("architecture", FRAME_CRNN)
    if arch == FRAME_CRNN:
        model = FrameCRNN(**state["config"])
    else:
        model = build_model(arch, state["hparams"], state["n_features"], state["n_classes"])
    if state.get("trimmed"):  # a trimmed network (adt.trimming): the architecture with fewer units per layer
        from adt.frame.units import resize, split_recurrent

        resize(split_recurrent(model), state["trimmed"])
        model.trimmed = dict(state["trimmed"])
    model.load_state_dict(state["state_dict"])
    model.feature_type = state.get("feature_type", "log_mel")
    model.architecture, model.hparams = arch, state.get("hparams", {})
    model.io_dims = (state.get("n_features", state["config"].get("n_features")),
                     state.get("n_classes", state["config"].get("n_classes")))
    model.peak_picking = state.get("peak_picking", "paper")
    model.best_epoch, model.best_val_f = state.get("best_epoch"), state.get("best_val_f")
    model.tuned_val_f, model.transcriber_input = state.get("tuned_val_f"), state.get("transcriber_input", "separated")
    model.input_level_db = state.get("input_level_db")
    return model.eval()


def load_model(path: str | Path) -> torch.nn.Module:
    """A model written by :func:`save_model` (or an older ``{"config", "state_dict"}``
    FrameCRNN checkpoint), in eval mode on CPU (:func:`model_from_state`).

    Loaded with ``torch.load(weights_only=True)``: tensors and plain Python values only, so a
    checkpoint from elsewhere cannot run code.

    Raises:
        FileNotFoundError: no such file. ValueError: corrupt, not a transcriber checkpoint, or one
        holding objects other than tensors and plain values; a shipped file (``adt/pretrained/``) whose
        SHA-256 differs from the one kept in code (:class:`adt.pretrained.ShippedWeightsError`).
    """
    import pickle

    from adt.pretrained import verify

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model checkpoint")
    verify(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: not a plain transcriber checkpoint (it holds Python objects, which are "
                         f"not loaded: {str(exc).splitlines()[0]})") from exc
    except (RuntimeError, EOFError) as exc:  # truncated or not a torch file at all
        raise ValueError(f"{path}: corrupt or not a torch checkpoint ({str(exc).splitlines()[0]})") from exc
    return model_from_state(state, str(path))


def model_input(model: torch.nn.Module) -> str:
    """What ``model`` heard of mixtures in training (``adt.config.TRANSCRIBER_INPUTS``; older models:
    ``"separated"``): a ``"separated"`` model wants the drum stem of a mixture, the others any audio as is."""
    return getattr(model, "transcriber_input", None) or "separated"
