"""Frame targets at 100 fps and infrequency weights.

Targets (thesis Sec. 5.1.2 "Annotations"): onset time t -> frame round(100 t);
optional *target widening* puts 0.5 on the frames next to each onset.
"""

from __future__ import annotations

import numpy as np

from adt.features.spectrogram import FPS
from adt.vocab import CLASS_INDEX, CLASSES_5


def widen_targets(targets: np.ndarray, value: float = 0.5) -> np.ndarray:
    """Target widening (thesis Sec. 5.1.2): frames next to an onset get ``value``.

    Args:
        targets: (T, K) with 1 at onset frames, else 0.

    Returns:
        float32 (T, K): onset frames stay 1; their neighbours t - 1 and t + 1
        that hold no onset become ``value``.
    """
    y = np.asarray(targets, dtype=np.float32)
    onset = y >= 1.0
    near = np.zeros_like(onset)
    near[1:] |= onset[:-1]
    near[:-1] |= onset[1:]
    out = y.copy()
    out[near & ~onset] = np.maximum(out[near & ~onset], value)
    return out


def frame_targets(times_s: np.ndarray, drums: np.ndarray, n_frames: int, widening: bool = False) -> np.ndarray:
    """Onset targets at 100 fps.

    Args:
        times_s: onset times in seconds.
        drums: 5-class names (``"BD"``...) or indices into :data:`adt.vocab.CLASSES_5`.
        n_frames: number of frames T.
        widening: also put 0.5 on the frames next to each onset (:func:`widen_targets`).

    Returns:
        float32 (T, 5): 1 at frame round(100 * t) of each onset (onsets outside
        the T frames dropped), 0.5 beside onsets when ``widening``, else 0.

    Raises:
        KeyError: an unknown class name.
    """
    y = np.zeros((n_frames, len(CLASSES_5)), dtype=np.float32)
    idx = np.array([CLASS_INDEX[d] if isinstance(d, str) else int(d) for d in drums], dtype=int)
    frames = np.round(np.asarray(times_s, dtype=float) * FPS).astype(int)
    ok = (frames >= 0) & (frames < n_frames)
    y[frames[ok], idx[ok]] = 1.0
    return widen_targets(y) if widening else y


def infrequency_weights(onset_frames: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-class infrequency weights (thesis Sec. 5.2): the inverse binary entropy of each
    class's onset probability, w_i = 1 / (-p_i ln p_i - (1 - p_i) ln(1 - p_i)), p_i = n_i / T.

    Unlike Cartwright and Bello, p_i is not divided by the number of classes (as in the
    thesis). A class that never (or always) has an onset has zero entropy; it gets weight 1,
    which has no effect since the weight only multiplies frames holding that class's onsets.

    Args:
        onset_frames: (K,) onset frames n_i per class in the training set.
        n_frames: total frames T of the training set.

    Returns:
        float64 (K,) weights (natural logarithm; rarer classes weigh more, w >= 1 / ln 2).

    Raises:
        ValueError: T < 1, or a count is negative or larger than T.
    """
    n = np.asarray(onset_frames, dtype=np.float64)
    if n_frames < 1 or (n < 0).any() or (n > n_frames).any():
        raise ValueError(f"onset counts {n.tolist()} do not fit {n_frames} frames")
    p = n / n_frames
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -p * np.log(p) - (1 - p) * np.log(1 - p)
    return np.where((p > 0) & (p < 1), 1.0 / entropy, 1.0)


