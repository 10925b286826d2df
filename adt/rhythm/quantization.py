"""Quantizing onset times to tatums; undetectable onsets of Table I (conflict, far).

Source: tatum paper (Ishizuka et al.), Sec. IV-B "Justification of tatum-level
transcription" and Table I. Each onset time is quantized to the closest tatum time.

* **conflict**: several onsets of the *same drum* fall on the same tatum; only one
  can be represented in the tatum-level score. Here the earliest of them keeps the
  tatum and every later one is flagged ``conflict`` (onsets of different drums on
  one tatum never conflict: they sit in different rows of the score).
* **far**: the onset is more than ``far_s`` (50 ms in the paper) from its closest
  tatum (``distance_s > far_s``; exactly 50 ms is not far).

The two groups overlap ("doubly categorized"): an onset can be both conflict and
far. ``union`` (conflict OR far) counts each such onset once, so
``union <= conflict + far``, as in the paper's "conflict ∪ far" column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from adt.vocab import CLASSES_5

#: Columns of the per-onset table returned by :func:`quantize_onsets`.
FLAG_COLUMNS = ("time_s", "drum", "tatum_index", "tatum_s", "offset_s", "distance_s", "conflict", "far")


def check_tatums(tatums_s: np.ndarray) -> np.ndarray:
    """Tatum times as float64 (M,), checked.

    Raises:
        ValueError: empty, non-finite or not strictly increasing.
    """
    tatums = np.asarray(tatums_s, dtype=np.float64).reshape(-1)
    if tatums.size == 0:
        raise ValueError("tatums_s is empty: need at least one tatum time")
    if not np.all(np.isfinite(tatums)):
        raise ValueError("tatum times must be finite")
    if tatums.size > 1 and np.any(np.diff(tatums) <= 0):
        raise ValueError("tatum times must be strictly increasing")
    return tatums


def check_times(times_s: np.ndarray) -> np.ndarray:
    """Onset times as float64 (N,), checked.

    Raises:
        ValueError: non-finite times.
    """
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(times)):
        raise ValueError("onset times must be finite")
    return times


def nearest_tatum(times_s: np.ndarray, tatums_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the closest tatum for each onset, and the signed offset.

    Ties (an onset exactly midway between two tatums) go to the earlier tatum.
    Onsets before the first / after the last tatum snap to that end tatum.

    Args:
        times_s: onset times in seconds, shape (N,).
        tatums_s: tatum times in seconds, shape (M,), strictly increasing.

    Returns:
        ``(tatum_index, offset_s)``: int64 (N,) indices into ``tatums_s`` and float64
        (N,) ``time - tatum_time`` in seconds.

    Raises:
        ValueError: empty or non-increasing tatums, non-finite times.
    """
    tatums = check_tatums(tatums_s)
    times = check_times(times_s)
    right = np.clip(np.searchsorted(tatums, times, side="left"), 0, tatums.size - 1)
    left = np.clip(right - 1, 0, tatums.size - 1)
    pick_left = np.abs(times - tatums[left]) <= np.abs(tatums[right] - times)
    idx = np.where(pick_left, left, right).astype(np.int64)
    return idx, times - tatums[idx]


def _drum_labels(drums: np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(drums).reshape(-1)
    if arr.size != n:
        raise ValueError(f"times_s and drums differ in length ({n} vs {arr.size})")
    if arr.size == 0:
        return arr.astype(object)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() >= len(CLASSES_5):
            raise ValueError(f"integer drum indices must lie in 0..{len(CLASSES_5) - 1} (CLASSES_5)")
        return np.asarray(CLASSES_5, dtype=object)[arr]
    if arr.dtype.kind in "US" or arr.dtype == object:
        return arr.astype(str).astype(object)
    raise ValueError(f"drums must be int class indices or str labels, got dtype {arr.dtype}")


def quantize_onsets(
    times_s: np.ndarray,
    drums: np.ndarray,
    tatums_s: np.ndarray,
    far_s: float = 0.05,
) -> pd.DataFrame:
    """Per-onset quantization flags of Table I (tatum paper, Sec. IV-B).

    Args:
        times_s: onset times in seconds, shape (N,), any order.
        drums: shape (N,), int indices into ``CLASSES_5`` (mapped to names) or str
            labels (kept as given, e.g. "BD"; any label is accepted).
        tatums_s: tatum times in seconds, shape (M,), strictly increasing
            (e.g. from :func:`adt.rhythm.tatums.tatums_from_beats`).
        far_s: "far" threshold in seconds (paper: 0.05).

    Returns:
        DataFrame with one row per onset, in input order (index 0..N-1), columns:
        ``time_s`` (float, s), ``drum`` (str), ``tatum_index`` (int, nearest tatum,
        ties to the earlier one), ``tatum_s`` (float, s), ``offset_s`` (time - tatum, s),
        ``distance_s`` (abs offset, s), ``conflict`` (bool: an earlier onset of the same
        drum already took this tatum; at equal times the earlier row keeps it),
        ``far`` (bool: ``distance_s > far_s``). conflict and far may both be True.

    Raises:
        ValueError: length mismatch, non-finite times, bad tatums, bad drum indices,
            negative far_s.
    """
    if far_s < 0:
        raise ValueError(f"far_s must be >= 0, got {far_s}")
    times = check_times(times_s)
    labels = _drum_labels(drums, times.size)
    tatums = check_tatums(tatums_s)
    idx, offset = nearest_tatum(times, tatums)
    df = pd.DataFrame(
        {
            "time_s": times,
            "drum": pd.Series(labels, dtype=object),
            "tatum_index": idx,
            "tatum_s": tatums[idx] if times.size else np.zeros(0),
            "offset_s": offset,
            "distance_s": np.abs(offset),
        }
    )
    # earliest onset per (drum, tatum) keeps it; stable sort keeps input order on ties
    order = np.lexsort((np.arange(times.size), times))
    dup = df.iloc[order].duplicated(subset=["drum", "tatum_index"], keep="first")
    df["conflict"] = dup.reindex(df.index).to_numpy(dtype=bool)
    df["far"] = df["distance_s"].to_numpy() > far_s
    return df[list(FLAG_COLUMNS)]


def summarize(flags: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Ratios of undetectable onsets (Table I) per group.

    Ratios are micro-averaged over the onsets of each group (the paper reports the
    ratio over all onsets of all songs: use ``by=[]`` on the concatenated per-song
    tables). ``union`` counts an onset that is both conflict and far once.

    Args:
        flags: rows from :func:`quantize_onsets` (possibly concatenated over songs, with
            extra key columns such as ``track`` or ``beats`` added by the caller).
        by: columns to group by; ``None`` or ``[]`` gives a single overall row.

    Returns:
        DataFrame with the ``by`` columns (if any) and ``n_onsets`` (int), ``conflict``,
        ``far``, ``union`` (float ratios in [0, 1]). An empty ``flags`` gives no rows
        when grouped and one row with n_onsets 0 and NaN ratios when not.

    Raises:
        KeyError: a ``by`` column or a flag column is missing.
    """
    by = list(by or [])
    missing = [c for c in [*by, "conflict", "far"] if c not in flags.columns]
    if missing:
        raise KeyError(f"summarize: missing columns {missing}")
    tmp = pd.DataFrame(
        {
            "conflict": flags["conflict"].astype(bool).to_numpy(),
            "far": flags["far"].astype(bool).to_numpy(),
        },
        index=flags.index,
    )
    tmp["union"] = tmp["conflict"] | tmp["far"]
    for c in by:
        tmp[c] = flags[c]
    cols = ["conflict", "far", "union"]
    if not by:
        n = len(tmp)
        row = {"n_onsets": n, **{c: (float(tmp[c].mean()) if n else float("nan")) for c in cols}}
        return pd.DataFrame([row], columns=["n_onsets", *cols])
    g = tmp.groupby(by, sort=True, dropna=False)
    out = g[cols].mean().astype(float)
    out.insert(0, "n_onsets", g.size().astype(int))
    return out.reset_index()


def quantization_stats(
    times_s: np.ndarray,
    drums: np.ndarray,
    tatums_s: np.ndarray,
    far_s: float = 0.05,
    by: list[str] | None = None,
) -> pd.DataFrame:
    """``summarize(quantize_onsets(times_s, drums, tatums_s, far_s), by)`` for one song.

    ``by`` may only name columns of :func:`quantize_onsets` (e.g. ``["drum"]``).
    """
    return summarize(quantize_onsets(times_s, drums, tatums_s, far_s=far_s), by=by)
