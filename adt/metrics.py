"""Onset-level metrics shared by every stage that scores transcriptions.

Micro F-measure: matches within +-50 ms per class and track with
``mir_eval.util.match_events`` (the matching behind ``mir_eval.onset``), then
true positives, false positives and false negatives summed over classes and
tracks before computing P, R and F.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import mir_eval
import numpy as np

from adt.vocab import CLASSES_5

if TYPE_CHECKING:
    import pandas as pd

#: onset matching tolerance (seconds): +-50 ms, the field's usual window
WINDOW_S = 0.05


def match_counts(reference: np.ndarray, estimate: np.ndarray, window_s: float = WINDOW_S) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one class on one track."""
    reference = np.sort(np.asarray(reference, dtype=float))
    estimate = np.sort(np.asarray(estimate, dtype=float))
    if len(reference) == 0 or len(estimate) == 0:
        return 0, len(estimate), len(reference)
    tp = len(mir_eval.util.match_events(reference, estimate, window_s))
    return tp, len(estimate) - tp, len(reference) - tp


def micro_f_measure(references: Iterable[Mapping[str, np.ndarray]], estimates: Iterable[Mapping[str, np.ndarray]],
                    classes: tuple[str, ...] = CLASSES_5, window_s: float = WINDOW_S) -> dict:
    """Micro-averaged onset P/R/F over tracks and ``classes``.

    Args:
        references, estimates: per track, class name -> onset times (seconds).
        classes: the classes scored (e.g. ``adt.vocab.CLASSES_3``).

    Returns:
        dict with f, p, r, tp, fp, fn and per-class f (``f_BD``...); F is 0, never
        NaN, when nothing matches (tp = 0).
    """
    totals = {c: np.zeros(3, dtype=int) for c in classes}
    for ref, est in zip(references, estimates, strict=True):
        for c in classes:
            totals[c] += match_counts(ref.get(c, np.array([])), est.get(c, np.array([])), window_s)
    tp, fp, fn = (int(v) for v in sum(totals.values()))
    result = prf(tp, fp, fn)
    for c in classes:
        result[f"f_{c}"] = prf(*totals[c])["f"]
    return result


def prf(tp: int, fp: int, fn: int) -> dict:
    """Precision, recall and F-measure of onset counts: {f, p, r, tp, fp, fn}; 0, never NaN, when tp = 0."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"f": f, "p": p, "r": r, "tp": int(tp), "fp": int(fp), "fn": int(fn)}


def reference_onsets(onsets: "pd.DataFrame", classes: tuple[str, ...] = CLASSES_5) -> dict[str, dict[str, np.ndarray]]:
    """The ``onsets`` table as references: track_id -> class -> sorted onset times (seconds),
    every class present (maybe empty)."""
    return {tid: {c: group.loc[group.drum == c, "time_s"].sort_values().to_numpy() for c in classes}
            for tid, group in onsets.groupby("track_id")}
