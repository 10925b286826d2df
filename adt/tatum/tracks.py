"""Tatum-level training data (tatum paper Secs. III-B, IV-B).

A :class:`TatumTrack` is one track on one tatum grid: its features X (T frames x F
bins at 100 fps), the tatum times b_1..b_M (seconds), the frame -> tatum owner map
of Eq. 1 (:func:`adt.tatum.model.tatum_spans`) and the target score Y_hat (M x K)
from the annotated onsets, each snapped to its nearest tatum (:func:`adt.lm.scores.drum_score`,
Sec. IV-B). Training segments are windows of whole tatums (default 64 = 4 bars of
16th notes) with their frames, right-padded and masked in a batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from adt.features.spectrogram import FPS
from adt.lm.scores import drum_score
from adt.tatum.model import tatum_spans
from adt.vocab import CLASS_INDEX, CLASSES_5, classes


@dataclasses.dataclass
class TatumTrack:
    """One track on one tatum grid.

    Attributes:
        track_id: name (for messages).
        x: (T, F) features at 100 fps (may be memory-mapped).
        tatums_s: (M,) tatum times in seconds, strictly increasing, inside the T frames.
        owner: (T,) int64 tatum index of each frame (Eq. 1 spans), -1 outside every span.
        y: (M, K) float32 target score Y_hat (1 = onset of drum k snapped to tatum m).
        onset_times: (N,) annotated onset times in seconds (for time-tolerance scoring).
        onset_drums: (N,) int64 indices into ``CLASSES_5``.
    """

    track_id: str
    x: np.ndarray
    tatums_s: np.ndarray
    owner: np.ndarray
    y: np.ndarray
    onset_times: np.ndarray
    onset_drums: np.ndarray

    @property
    def n_tatums(self) -> int:
        return len(self.tatums_s)


def _drum_indices(drums, track_id: str) -> np.ndarray:
    arr = np.asarray(drums).reshape(-1)
    if arr.size and (arr.dtype.kind in "US" or arr.dtype == object):
        try:
            return np.array([CLASS_INDEX[str(d)] for d in arr], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"{track_id}: unknown drum label {exc.args[0]!r}; expected one of {CLASSES_5}") from None
    return arr.astype(np.int64)


def make_track(track_id: str, x: np.ndarray, tatums_s: np.ndarray, onset_times: np.ndarray, onset_drums,
               k: int = 3) -> TatumTrack:
    """Build a :class:`TatumTrack`; tatums at or after the last frame (T / 100 s) or before 0 are dropped.

    Args:
        x: (T, F) features at 100 fps.
        tatums_s: tatum times in seconds (M,), strictly increasing.
        onset_times: annotated onset times in seconds (N,).
        onset_drums: (N,) drum names ("BD", ...) or indices into ``CLASSES_5``.
        k: 3 (BD SD HH) or 5.

    Raises:
        ValueError: x not 2-D, bad tatums or onsets (from :func:`adt.lm.scores.drum_score`), or
            fewer than 2 tatums inside the features; the message names the track.
    """
    classes(k)
    x = np.asarray(x)  # a memory-mapped array stays mapped
    if x.ndim != 2:
        raise ValueError(f"{track_id}: features must be (T, F), got shape {x.shape}")
    tatums = np.asarray(tatums_s, dtype=np.float64).reshape(-1)
    inside = (tatums >= 0) & (tatums * FPS < x.shape[0])
    tatums = tatums[inside]
    if tatums.size < 2:
        raise ValueError(f"{track_id}: fewer than 2 tatums inside its {x.shape[0]} feature frames")
    drums = _drum_indices(onset_drums, track_id)
    times = np.asarray(onset_times, dtype=np.float64).reshape(-1)
    try:
        y = drum_score(times, drums, tatums, k=k)
    except ValueError as exc:
        raise ValueError(f"{track_id}: {exc}") from None
    owner = tatum_spans(np.round(tatums * FPS, 6), x.shape[0]).numpy()  # rounding: no float noise in ceil()
    return TatumTrack(track_id, x, tatums, owner, y.T.astype(np.float32), times, drums)


@dataclasses.dataclass
class Segment:
    """A window of whole tatums [start, start + L) of a track with the frames of their spans.

    Attributes: x (T_s, F) float32; owner (T_s,) local tatum index 0..L-1; y (L, K).
    """

    x: np.ndarray
    owner: np.ndarray
    y: np.ndarray


def cut_segment(track: TatumTrack, start: int, length: int) -> Segment:
    """Tatums ``start .. start + length - 1`` (clipped to the track) and the frames they own (Eq. 1 spans).

    Raises:
        ValueError: start outside the track, length < 1, or no frame in the window.
    """
    m = track.n_tatums
    if not 0 <= start < m or length < 1:
        raise ValueError(f"{track.track_id}: segment start {start} / length {length} outside its {m} tatums")
    stop = min(start + length, m)
    frames = np.nonzero((track.owner >= start) & (track.owner < stop))[0]
    if frames.size == 0:
        raise ValueError(f"{track.track_id}: tatums {start}..{stop - 1} own no frame")
    f0, f1 = int(frames[0]), int(frames[-1]) + 1  # spans are contiguous and ordered
    return Segment(np.asarray(track.x[f0:f1], dtype=np.float32), track.owner[f0:f1] - start,
                   np.asarray(track.y[start:stop], dtype=np.float32))


def segment_starts(n_tatums: int, length: int) -> list[int]:
    """First tatums of consecutive, non-overlapping windows covering a track (the last may be shorter)."""
    return list(range(0, n_tatums, length))


def collate(segments: Sequence[Segment]) -> dict[str, torch.Tensor | int]:
    """Right-pad segments into a batch.

    Returns:
        ``x`` (B, T, F) float32 (zeros as padding), ``owner`` (B, T) long (-1 as padding),
        ``y`` (B, M, K) float32, ``mask`` (B, M) bool (True for real tatums), ``n_tatums`` M.
    """
    b = len(segments)
    t = max(len(s.x) for s in segments)
    m = max(len(s.y) for s in segments)
    f, k = segments[0].x.shape[1], segments[0].y.shape[1]
    x = np.zeros((b, t, f), dtype=np.float32)
    owner = np.full((b, t), -1, dtype=np.int64)
    y = np.zeros((b, m, k), dtype=np.float32)
    mask = np.zeros((b, m), dtype=bool)
    for i, s in enumerate(segments):
        x[i, : len(s.x)] = s.x
        owner[i, : len(s.owner)] = s.owner
        y[i, : len(s.y)] = s.y
        mask[i, : len(s.y)] = True
    return {"x": torch.from_numpy(x), "owner": torch.from_numpy(owner), "y": torch.from_numpy(y),
            "mask": torch.from_numpy(mask), "n_tatums": m}


def sample_batch(tracks: Sequence[TatumTrack], batch_size: int, length: int, rng: np.random.Generator) -> dict:
    """A random batch: tracks drawn in proportion to their tatums, a uniform window start in each."""
    weights = np.array([t.n_tatums for t in tracks], dtype=np.float64)
    picks = rng.choice(len(tracks), size=batch_size, p=weights / weights.sum())
    segs = []
    for i in picks:
        track = tracks[int(i)]
        start = int(rng.integers(0, max(1, track.n_tatums - length + 1)))
        segs.append(cut_segment(track, start, length))
    return collate(segs)
