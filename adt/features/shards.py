"""Tensor shards of fixed-length segments and the training loader.

Shards hold fixed-length segments (4 s = 400 frames by default) as ``.npy``
files that training opens memory-mapped (``np.load(mmap_mode="r")``), so a
training set never has to fit in RAM; :class:`ShardDataset` opens them lazily in
each DataLoader worker.
"""

from __future__ import annotations

import bisect
import json
import os
import random
from pathlib import Path

import numpy as np
import torch

from adt.atomic import save_array, write_json
from adt.features.spectrogram import SEGMENT_FRAMES


def segment_starts(n_frames: int, segment_frames: int = SEGMENT_FRAMES, hop_frames: int | None = None) -> list[int]:
    """First frames of the segments cut from a track of ``n_frames``: every ``hop_frames``
    (default half a segment), plus one segment ending at the track's end when the hops
    leave a tail; a track shorter than a segment gives the single start 0."""
    hop_frames = hop_frames or segment_frames // 2
    starts = list(range(0, max(1, n_frames - segment_frames + 1), hop_frames))
    if n_frames > segment_frames and starts[-1] + segment_frames < n_frames:
        starts.append(n_frames - segment_frames)
    return starts


def write_shards(items: list[tuple[Path, Path]], out_dir: Path, segment_frames: int = SEGMENT_FRAMES,
                 hop_frames: int | None = None, shard_segments: int = 512, extra: dict | None = None) -> dict:
    """Cut per-track features and targets into fixed-length segments, written as shards.

    Args:
        items: (features .npy (T, F), targets .npy (T, K)) per track.
        out_dir: folder for ``shard-XXXX.x.npy`` (N, segment_frames, F),
            ``shard-XXXX.y.npy`` (N, segment_frames, K) and ``index.json``.
        segment_frames: segment length in frames (400 = 4 s at 100 fps).
        hop_frames: segment hop (default: half a segment); see :func:`segment_starts`.
            A track shorter than a segment is zero-padded to one segment.
        extra: more fields for the index (e.g. the feature type).

    Returns:
        The index: shard file names, segment counts, feature and class dimensions.

    Raises:
        ValueError: tracks of different feature or class widths, or a track whose
            features and targets differ in length (the message names the file).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    xs, ys, shards, total = [], [], [], 0

    def flush():
        nonlocal xs, ys
        if not xs:
            return
        name = f"shard-{len(shards):04d}"
        save_array(out_dir / f"{name}.x.npy", np.stack(xs).astype(np.float32))
        save_array(out_dir / f"{name}.y.npy", np.stack(ys).astype(np.float32))
        shards.append({"name": name, "segments": len(xs)})
        xs, ys = [], []

    n_features = n_classes = None
    for feat_path, targ_path in items:
        x, y = np.load(feat_path, mmap_mode="r"), np.load(targ_path, mmap_mode="r")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{feat_path}: {x.shape[0]} feature frames but {y.shape[0]} target frames")
        if n_features is not None and (x.shape[1], y.shape[1]) != (n_features, n_classes):
            raise ValueError(f"{feat_path}: {x.shape[1]} bins x {y.shape[1]} classes, "
                             f"other tracks have {n_features} x {n_classes}")
        n_features, n_classes = x.shape[1], y.shape[1]
        for s in segment_starts(x.shape[0], segment_frames, hop_frames):
            seg_x = np.zeros((segment_frames, x.shape[1]), np.float32)
            seg_y = np.zeros((segment_frames, y.shape[1]), np.float32)
            chunk = x[s:s + segment_frames]
            seg_x[: len(chunk)] = chunk
            seg_y[: len(chunk)] = y[s:s + segment_frames]
            xs.append(seg_x)
            ys.append(seg_y)
            total += 1
            if len(xs) == shard_segments:
                flush()
    flush()
    index = {**(extra or {}), "shards": shards, "segments": total, "segment_frames": segment_frames,
             "n_features": n_features, "n_classes": n_classes}
    write_json(out_dir / "index.json", index)
    return index


class ShardDataset(torch.utils.data.Dataset):
    """Segments of one or more shard folders, memory-mapped and read lazily.

    Item: (features (segment_frames, F) float32, targets (segment_frames, K) float32).
    Safe with ``DataLoader(num_workers > 0)``: the memory maps are opened on first
    use in each process and never pickled (see :meth:`__getstate__`).

    Raises:
        FileNotFoundError: a folder has no ``index.json``.
        ValueError: folders with different feature or class widths (e.g. log mel and
            log filtered shards mixed).
    """

    def __init__(self, shard_dirs: list[Path]):
        self.shard_dirs = [Path(d) for d in shard_dirs]
        self._files: list[Path] = []  # x file of each shard
        self._ends: list[int] = []  # cumulative segment count after each shard
        self._folder_of: list[int] = []  # index in shard_dirs of each shard
        self.n_features = self.n_classes = self.segment_frames = self.feature_type = None
        #: what the transcriber heard of mixtures (adt.config.TRANSCRIBER_INPUTS; older shards: "separated")
        self.transcriber_input = "separated"
        first = None
        for k, d in enumerate(self.shard_dirs):
            path = d / "index.json"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no shard index (write_shards writes it)")
            index = json.loads(path.read_text())
            if not index["segments"]:
                continue
            dims = (index["n_features"], index["n_classes"], index["segment_frames"])
            if first is None:
                first = (d, dims)
                self.n_features, self.n_classes, self.segment_frames = dims
                self.feature_type = index.get("feature_type")
                self.transcriber_input = index.get("transcriber_input", "separated")
            elif dims != first[1]:
                raise ValueError(f"shards differ: {first[0]} holds (bins, classes, frames) {first[1]}, {d} holds {dims}")
            for shard in index["shards"]:
                self._folder_of.append(k)
                self._files.append(d / f"{shard['name']}.x.npy")
                self._ends.append((self._ends[-1] if self._ends else 0) + shard["segments"])
        self._open: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def segment_weights(self, shares: list[float]) -> torch.Tensor:
        """Sampling weight of every segment so that folder k of ``shard_dirs`` gets ``shares[k]`` of the
        draws (normalized; a folder without segments gets none): (segments,) float64.

        Raises:
            ValueError: not one share per folder, a negative share, or no segment with a positive share.
        """
        if len(shares) != len(self.shard_dirs) or min(shares, default=0) < 0:
            raise ValueError(f"need one share >= 0 per shard folder ({len(self.shard_dirs)}), got {shares}")
        counts = np.zeros(len(self.shard_dirs))
        sizes = np.diff([0, *self._ends])
        for k, n in zip(self._folder_of, sizes):
            counts[k] += n
        per_folder = np.divide(shares, counts, out=np.zeros(len(counts)), where=counts > 0)
        weights = np.repeat(per_folder[self._folder_of], sizes) if len(sizes) else np.zeros(0)
        if not weights.sum() > 0:
            raise ValueError(f"no segments with a positive share in {[str(d) for d in self.shard_dirs]}")
        return torch.from_numpy(weights / weights.sum())

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_open"] = {}  # memory maps are per process: reopened after unpickling
        return state

    def _arrays(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._pid != os.getpid():  # a forked worker: do not share the parent's maps
            self._open, self._pid = {}, os.getpid()
        if k not in self._open:
            x_path = self._files[k]
            y_path = x_path.with_name(x_path.name.replace(".x.npy", ".y.npy"))
            self._open[k] = (np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r"))
        return self._open[k]

    def __getitem__(self, i: int):
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"segment {i} out of range ({n} segments)")
        k = bisect.bisect_right(self._ends, i)
        j = i - (self._ends[k - 1] if k else 0)
        x, y = self._arrays(k)
        return torch.from_numpy(np.array(x[j])), torch.from_numpy(np.array(y[j]))


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy and ``random`` in each worker from its torch seed
    (which the loader derives from its ``generator``), so workers are reproducible."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def segment_loader(data: ShardDataset, batch_size: int, num_samples: int, seed: int,
                   num_workers: int = 0, weights: torch.Tensor | None = None) -> torch.utils.data.DataLoader:
    """Random segments with replacement (``num_samples`` per pass), batched and seeded; uniform, or with
    per-segment ``weights`` (:meth:`ShardDataset.segment_weights`).

    The order depends only on ``seed``, not on ``num_workers``: the sampler runs in the
    main process; workers only read the segments it picks.
    """
    gen = torch.Generator().manual_seed(seed)
    if weights is None:
        sampler = torch.utils.data.RandomSampler(data, replacement=True, num_samples=num_samples, generator=gen)
    else:
        sampler = torch.utils.data.WeightedRandomSampler(weights, num_samples, replacement=True, generator=gen)
    return torch.utils.data.DataLoader(data, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                                       worker_init_fn=seed_worker if num_workers else None,
                                       generator=torch.Generator().manual_seed(seed),
                                       persistent_workers=num_workers > 0)
