"""Training-set statistics, summed over tracks.

Training-set statistics (thesis Sec. 5.2 "Preprocessing"): per-bin mean and
standard deviation for input standardization, and per-class *infrequency
weights* w_i = 1 / (-p_i ln p_i - (1 - p_i) ln(1 - p_i)) with p_i = n_i / T
(onset frames of class i over all frames), "the inverse estimated entropy of
their event activity distribution" (Cartwright and Bello, DAFx 2018), as used by
Zehren et al. (Signals 2023). :class:`TrainingStats` accumulates them per track
so the statistics of a union of training sets are exact sums.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from adt.atomic import save_array, write_json
from adt.features.targets import infrequency_weights
from adt.vocab import CLASSES_5


@dataclasses.dataclass
class TrainingStats:
    """Sufficient statistics of a training set, summed over its tracks.

    Attributes:
        frames: number of frames T.
        total: (F,) float64 sum of the features per bin.
        total_sq: (F,) float64 sum of their squares.
        onsets: (K,) int64 frames whose target is 1 (an onset; widened 0.5 frames not counted).
        feature_type: the features' type, when known.
    """

    frames: int
    total: np.ndarray
    total_sq: np.ndarray
    onsets: np.ndarray
    feature_type: str | None = None

    @classmethod
    def of_track(cls, features: np.ndarray, targets: np.ndarray, feature_type: str | None = None) -> TrainingStats:
        """Statistics of one track: features (T, F), targets (T, K).

        Raises:
            ValueError: the two have different frame counts.
        """
        if len(features) != len(targets):
            raise ValueError(f"features have {len(features)} frames but targets {len(targets)}")
        x = np.asarray(features, dtype=np.float64)
        return cls(frames=len(x), total=x.sum(0), total_sq=np.square(x).sum(0),
                   onsets=(np.asarray(targets) == 1.0).sum(0).astype(np.int64), feature_type=feature_type)

    @classmethod
    def of_tracks(cls, items: list[tuple[Path, Path]], feature_type: str | None = None) -> TrainingStats:
        """Statistics of tracks given as (features .npy, targets .npy), read memory-mapped one at a time.

        Raises:
            ValueError: no tracks, or a track's features and targets disagree in length
                (the message names the file).
        """
        out = None
        for x_path, y_path in items:
            try:
                one = cls.of_track(np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r"), feature_type)
            except ValueError as exc:
                raise ValueError(f"{x_path}: {exc}") from None
            out = one if out is None else out + one
        if out is None:
            raise ValueError("no training tracks to compute statistics from")
        return out

    def __add__(self, other: TrainingStats) -> TrainingStats:
        if self.total.shape != other.total.shape or self.onsets.shape != other.onsets.shape:
            raise ValueError(f"cannot add statistics of {self.total.shape[0]} and {other.total.shape[0]} bins "
                             f"({self.feature_type} vs {other.feature_type})")
        return TrainingStats(self.frames + other.frames, self.total + other.total, self.total_sq + other.total_sq,
                             self.onsets + other.onsets, self.feature_type or other.feature_type)

    @property
    def mean(self) -> np.ndarray:
        """(F,) float32 per-bin mean."""
        return (self.total / self.frames).astype(np.float32)

    @property
    def std(self) -> np.ndarray:
        """(F,) float32 per-bin standard deviation (population, ddof 0)."""
        mean = self.total / self.frames
        return np.sqrt(np.maximum(self.total_sq / self.frames - mean**2, 0.0)).astype(np.float32)

    def infrequency_weights(self) -> np.ndarray:
        """(K,) float32 :func:`infrequency_weights` of the onset counts."""
        return infrequency_weights(self.onsets, self.frames).astype(np.float32)

    def to_json(self) -> dict:
        """JSON-able form (sums as lists; mean, std and weights added for reading)."""
        return {"frames": int(self.frames), "total": self.total.tolist(), "total_sq": self.total_sq.tolist(),
                "onsets": self.onsets.tolist(), "feature_type": self.feature_type,
                "onsets_per_class": dict(zip(CLASSES_5, self.onsets.tolist())) if len(self.onsets) == 5 else None,
                "infrequency_weights": self.infrequency_weights().tolist(), "mean": self.mean.tolist(),
                "std": self.std.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> TrainingStats:
        return cls(int(d["frames"]), np.asarray(d["total"], np.float64), np.asarray(d["total_sq"], np.float64),
                   np.asarray(d["onsets"], np.int64), d.get("feature_type"))

    def save(self, folder: str | os.PathLike, **extra) -> Path:
        """Write ``mean.npy``, ``std.npy``, ``infrequency_weights.npy`` and ``stats.json``
        (plus ``extra`` fields) into ``folder``, atomically; returns the folder."""
        folder = Path(folder)
        save_array(folder / "mean.npy", self.mean)
        save_array(folder / "std.npy", self.std)
        save_array(folder / "infrequency_weights.npy", self.infrequency_weights())
        write_json(folder / "stats.json", {**self.to_json(), **extra})
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> TrainingStats:
        """Statistics saved by :meth:`save`.

        Raises:
            FileNotFoundError: ``folder`` holds no ``stats.json``.
        """
        path = Path(folder) / "stats.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no training statistics there")
        return cls.from_json(json.loads(path.read_text()))


