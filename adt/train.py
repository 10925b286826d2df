"""Training and inference of the frame-level transcriber.

Recipe (walking-skeleton version of the tatum paper's baseline): AdamW
(lr 1e-3, weight decay 1e-4, eps 1e-9 as in Sec. IV-D), a weighted BCE (below),
random 4-s segments read lazily from memory-mapped shards, gradient clipping at
norm 2 (thesis ch. 5), model selection on the validation micro F-measure (50 ms)
after peak picking. Inputs are standardized per bin with the training set's mean
and standard deviation (thesis Sec. 5.2). Seeded: the same data and config give
the same model.

Loss weighting (``TrainConfig.loss_weighting``):

* ``"beta"``: the tatum paper's Eq. 10, onset entries weighted by beta = 8
  (:func:`adt.models.weighted_bce`);
* ``"infrequency"``: the thesis's infrequency weights (Sec. 5.2): each frame's BCE,
  summed over classes, is weighted by max(1, sum_i y_ti w_i) with the per-class
  weights w_i of :func:`adt.features.infrequency_weights` from the training set
  (:func:`infrequency_bce`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from adt.evaluate import micro_f_measure, pick_peaks
from adt.features import ShardDataset, TrainingStats, segment_loader
from adt.models import FrameCRNN, weighted_bce
from adt.vocab import CLASSES_5

LOSS_WEIGHTINGS = ("beta", "infrequency")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of :func:`train_frame_model`."""

    epochs: int = 8
    steps_per_epoch: int = 60
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    beta: float = 8.0
    grad_clip: float = 2.0
    threshold: float = 0.2
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


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch; use 2 threads (the CI machine has 2 cores).

    Also flushes denormal floats to zero: on CPU, denormals in GRU/LSTM gradients
    slowed training down up to 100x.
    """
    torch.set_flush_denormal(True)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(2)


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
    statistics (:meth:`adt.features.TrainingStats.of_tracks`) and passes them to
    :func:`train_frame_model` instead.

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


def predict_activations(model: FrameCRNN, features: np.ndarray) -> np.ndarray:
    """Onset activation function of one track: (T, F) features -> (T, K) probabilities."""
    return model.activations(torch.from_numpy(np.array(features, dtype=np.float32))).numpy()  # copy: mmaps are read-only


def transcribe_features(model: FrameCRNN, features: np.ndarray, threshold: float = 0.2) -> dict[str, np.ndarray]:
    """Onset times (seconds) per drum class from feature frames (T, F), via peak picking."""
    return pick_peaks(predict_activations(model, features), threshold=threshold)


def evaluate(model: FrameCRNN, items: list[tuple[Path, dict[str, np.ndarray]]],
             classes: tuple[str, ...] = CLASSES_5, threshold: float = 0.2) -> dict:
    """Micro F-measure (50 ms) of ``model`` on tracks given as (features .npy, reference onsets)."""
    refs, ests = [], []
    for feat_path, ref in items:
        ests.append(transcribe_features(model, np.load(feat_path, mmap_mode="r"), threshold))
        refs.append(ref)
    return micro_f_measure(refs, ests, classes=classes)


def train_frame_model(train_dirs: list[Path], val_items: list[tuple[Path, dict[str, np.ndarray]]],
                      config: TrainConfig = TrainConfig(),
                      on_epoch: Callable[[int, dict], None] | None = None,
                      stats: TrainingStats | None = None) -> tuple[FrameCRNN, list[dict]]:
    """Train a :class:`FrameCRNN` on shard folders; select the epoch with the best validation F.

    Args:
        train_dirs: shard folders (see :func:`adt.features.write_shards`); the model's
            input width is their feature width (80 log mel, 84 log filtered).
        val_items: validation tracks as (features .npy, reference onsets per class).
        on_epoch: called with (epoch, metrics) after each epoch (for MLflow logging).
        stats: the training set's statistics (standardization, infrequency weights);
            default: :func:`shard_stats` of ``train_dirs``.

    Returns:
        The best model (eval mode; its ``feature_type`` attribute names its input
        features, see :func:`adt.features.model_features`) and the per-epoch history
        (loss, val_f, seconds).

    Raises:
        ValueError: no training segments, an unknown ``loss_weighting``, or statistics
            whose width differs from the shards'.
    """
    if config.loss_weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"unknown loss weighting {config.loss_weighting!r}; choose one of {LOSS_WEIGHTINGS}")
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
    model = FrameCRNN(n_features=data.n_features, n_classes=data.n_classes, channels=config.channels,
                      hidden=config.hidden, layers=config.layers, dropout=config.dropout)
    model.set_standardization(torch.from_numpy(stats.mean), torch.from_numpy(stats.std))
    model.feature_type = data.feature_type or stats.feature_type or "log_mel"
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, eps=1e-9)
    loader = segment_loader(data, config.batch_size, config.steps_per_epoch * config.batch_size, config.seed,
                            num_workers=config.num_workers)

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if config.loss_weighting == "infrequency":
            return infrequency_bce(logits, y, class_weights)
        return weighted_bce(logits, y, config.beta)

    best_f, best_state, history = -1.0, None, []
    for epoch in range(1, config.epochs + 1):
        start, losses = time.perf_counter(), []
        model.train()
        for x, y in loader:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            losses.append(loss.item())
        val = evaluate(model, val_items, threshold=config.threshold) if val_items else {"f": float("nan")}
        metrics = {"loss": float(np.mean(losses)), "val_f": float(val["f"]), "seconds": time.perf_counter() - start}
        history.append(metrics)
        if on_epoch:
            on_epoch(epoch, metrics)
        score = metrics["val_f"] if val_items else -metrics["loss"]
        if best_state is None or score > best_f:
            best_f, best_state = score, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return model, history
