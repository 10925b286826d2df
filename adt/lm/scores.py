"""Tatum-level drum scores Y in {0,1}^(K x M) (tatum paper, Sec. III-A).

Y[k, m] = 1 when drum k has an onset at tatum m. Onset times are snapped to the
closest tatum (Sec. IV-B, as in :mod:`adt.rhythm.quantization`); several onsets of one drum
on one tatum give a single 1 (the "conflict" onsets of Table I are lost).
Rows follow ``adt.vocab``: K = 5 -> CLASSES_5 (BD, SD, TT, HH, CY); K = 3 -> the
paper's BD, SD, HH (rows INDEX_3_IN_5 of the 5-class score; TT and CY dropped).
"""

from __future__ import annotations

import numpy as np

from adt.rhythm.quantization import check_tatums, check_times, nearest_tatum
from adt.vocab import CLASS_INDEX, CLASSES_5, INDEX_3_IN_5, classes


def _drum_indices(drums: np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(drums).reshape(-1)
    if arr.size != n:
        raise ValueError(f"times_s and drums differ in length ({n} vs {arr.size})")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind in "US" or arr.dtype == object:
        try:
            return np.array([CLASS_INDEX[str(d)] for d in arr], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"unknown drum label {exc.args[0]!r}; expected one of {CLASSES_5}") from exc
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"drums must be int indices into CLASSES_5, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= len(CLASSES_5):
        raise ValueError(f"drum indices must lie in 0..{len(CLASSES_5) - 1} (CLASSES_5)")
    return arr.astype(np.int64)


def drum_score(
    times_s: np.ndarray,
    drums: np.ndarray,
    tatums_s: np.ndarray,
    k: int = 5,
) -> np.ndarray:
    """Binary tatum-level drum score from onset times (tatum paper, Sec. III-A / IV-B).

    Each onset goes to its nearest tatum (ties to the earlier tatum). Onsets more than
    half a tatum period outside the grid (before ``tatums[0] - (tatums[1] - tatums[0]) / 2``
    or after ``tatums[-1] + (tatums[-1] - tatums[-2]) / 2``) are dropped; all others
    are kept however far they are from their tatum.

    Args:
        times_s: onset times in seconds, shape (N,).
        drums: shape (N,), int indices into ``CLASSES_5`` (or the names "BD", ...).
        tatums_s: tatum times in seconds, shape (M,), strictly increasing, M >= 2.
        k: 5 (rows BD, SD, TT, HH, CY) or 3 (rows BD, SD, HH; TT/CY onsets dropped).

    Returns:
        uint8 array of shape (K, M): rows = drums, columns = tatums.

    Raises:
        ValueError: k not 3 or 5, fewer than 2 tatums, non-increasing tatums,
            length mismatch, unknown drum index/label, non-finite times.
    """
    classes(k)  # validates k
    tatums = check_tatums(tatums_s)
    if tatums.size < 2:
        raise ValueError("need at least 2 tatums to define the grid's half-period margins")
    times = check_times(times_s)
    idx5 = _drum_indices(drums, times.size)
    m = tatums.size
    lo = tatums[0] - 0.5 * (tatums[1] - tatums[0])
    hi = tatums[-1] + 0.5 * (tatums[-1] - tatums[-2])
    keep = (times >= lo) & (times <= hi)
    if k == 3:
        row_of = np.full(len(CLASSES_5), -1, dtype=np.int64)
        row_of[list(INDEX_3_IN_5)] = np.arange(3)
        rows = row_of[idx5]
        keep &= rows >= 0
    else:
        rows = idx5
    y = np.zeros((k, m), dtype=np.uint8)
    if keep.any():
        tat, _ = nearest_tatum(times[keep], tatums)
        y[rows[keep], tat] = 1
    return y


def score_onsets(y: np.ndarray, tatums_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`drum_score`: onset times and 5-class drum indices of a score.

    Args:
        y: score of shape (K, M) with K in {3, 5}; nonzero entries are onsets
            (binarize soft scores first).
        tatums_s: tatum times in seconds, shape (M,).

    Returns:
        ``(times_s, drums)``: float64 (N,) tatum times in seconds and int64 (N,) indices
        into ``CLASSES_5``, sorted by time then drum.

    Raises:
        ValueError: y not 2-D, K not 3 or 5, or M different from len(tatums_s).
    """
    y = np.asarray(y)
    tatums = np.asarray(tatums_s, dtype=np.float64).reshape(-1)
    if y.ndim != 2:
        raise ValueError(f"score must be 2-D (K, M), got shape {y.shape}")
    classes(y.shape[0])
    if y.shape[1] != tatums.size:
        raise ValueError(f"score has {y.shape[1]} tatums but tatums_s has {tatums.size}")
    row_to_5 = np.arange(5) if y.shape[0] == 5 else np.asarray(INDEX_3_IN_5)
    rows, cols = np.nonzero(y)
    order = np.lexsort((row_to_5[rows], cols))
    return tatums[cols[order]], row_to_5[rows[order]].astype(np.int64)
