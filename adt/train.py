"""Training and inference of the frame-level transcriber.

Recipe (walking-skeleton version of the tatum paper's baseline): AdamW
(lr 1e-3, weight decay 1e-4, eps 1e-9 as in Sec. IV-D), weighted BCE (Eq. 10,
beta = 8), random 4-s segments read lazily from memory-mapped shards, gradient
clipping at norm 2 (thesis ch. 5), model selection on the validation micro
F-measure (50 ms) after peak picking. Seeded: the same data and config give
the same model.
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
from adt.features import ShardDataset
from adt.models import FrameCRNN, weighted_bce
from adt.vocab import CLASSES_5


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


def feature_stats(shard_dirs: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and standard deviation over all frames of the shards (streamed), shape (F,)."""
    total, sq, n = None, None, 0
    for d in shard_dirs:
        index = json.loads((Path(d) / "index.json").read_text())
        for shard in index["shards"]:
            x = np.load(Path(d) / f"{shard['name']}.x.npy", mmap_mode="r")
            for seg in x:
                seg = np.asarray(seg, dtype=np.float64)
                total = seg.sum(0) if total is None else total + seg.sum(0)
                sq = (seg**2).sum(0) if sq is None else sq + (seg**2).sum(0)
                n += seg.shape[0]
    if not n:
        raise ValueError(f"no training segments in {[str(d) for d in shard_dirs]}")
    mean = total / n
    std = np.sqrt(np.maximum(sq / n - mean**2, 1e-10))
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)


def predict_activations(model: FrameCRNN, features: np.ndarray) -> np.ndarray:
    """Onset activation function of one track: (T, F) log mel -> (T, K) probabilities."""
    return model.activations(torch.from_numpy(np.asarray(features, dtype=np.float32))).numpy()


def transcribe_features(model: FrameCRNN, features: np.ndarray, threshold: float = 0.2) -> dict[str, np.ndarray]:
    """Onset times (seconds) per drum class from log mel frames, via peak picking."""
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
                      on_epoch: Callable[[int, dict], None] | None = None) -> tuple[FrameCRNN, list[dict]]:
    """Train a :class:`FrameCRNN` on shard folders; select the epoch with the best validation F.

    Args:
        train_dirs: shard folders (see :func:`adt.features.write_shards`).
        val_items: validation tracks as (features .npy, reference onsets per class).
        on_epoch: called with (epoch, metrics) after each epoch (for MLflow logging).

    Returns:
        The best model (eval mode) and the per-epoch history (loss, val_f, seconds).

    Raises:
        ValueError: no training segments.
    """
    seed_everything(config.seed)
    data = ShardDataset(train_dirs)
    if len(data) == 0:
        raise ValueError(f"no training segments in {[str(d) for d in train_dirs]}")
    model = FrameCRNN(n_features=data[0][0].shape[1], n_classes=data[0][1].shape[1], channels=config.channels,
                      hidden=config.hidden, layers=config.layers, dropout=config.dropout)
    model.set_standardization(*feature_stats(train_dirs))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, eps=1e-9)
    gen = torch.Generator().manual_seed(config.seed)
    sampler = torch.utils.data.RandomSampler(data, replacement=True,
                                             num_samples=config.steps_per_epoch * config.batch_size, generator=gen)
    loader = torch.utils.data.DataLoader(data, batch_size=config.batch_size, sampler=sampler, num_workers=0)
    best_f, best_state, history = -1.0, None, []
    for epoch in range(1, config.epochs + 1):
        start, losses = time.perf_counter(), []
        model.train()
        for x, y in loader:
            opt.zero_grad()
            loss = weighted_bce(model(x), y, config.beta)
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
