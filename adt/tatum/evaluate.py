"""Tatum-level evaluation: P, R, F of Eq. 9 and the paper's Table II (tatum paper, Secs. IV-A, IV-D).

P = N_c / N_e, R = N_c / N_g, F = 2PR / (P + R), micro-averaged: the counts are
summed over tracks (and, for "all", over drums) before dividing. Estimated scores
are binarized at delta = 0.2 (Sec. IV-D).

How an estimated onset and a ground-truth onset match (``match``):

* ``"grid"`` (Table II): on the grid the estimate lives on. The reference is Y_hat
  of that grid, i.e. the annotated onsets snapped to the nearest tatum of that very
  grid (:func:`adt.lm.scores.drum_score`, Sec. IV-B), so with estimated (madmom) tatums
  the ground-truth onsets are snapped to the *estimated* grid. N_c = #{(k, m):
  Y[k, m] = Y_hat[k, m] = 1}, N_e = sum Y, N_g = sum Y_hat. Why: Sec. IV-D measures
  "the tatum-level transcription performance" by quantizing the frame-level onsets
  "referring to the estimated or ground-truth tatum times", and Sec. IV-B builds the
  reference score by the same quantization; both sides then share one grid and
  scoring is exact cell-by-cell. Onsets lost to conflict (two on one tatum) count
  once and far onsets count as detectable; Table I (conflict-or-far ratio) bounds
  that difference.
* ``"time"``: each estimated onset sits at its tatum's time and is matched to the
  annotated onset times within +-50 ms, one-to-one (``mir_eval.util.match_events``
  via :func:`adt.metrics.match_counts`, the frame-level measure of the project).
  Grids that drift from the music and undetectable onsets (Table I) cost recall
  here; annotated onsets outside the grid count as missed.

Frame baseline (Sec. IV-D): the frame-level CRNN's activation function is peak
picked (:func:`adt.frame.peaks.pick_peaks`, madmom, delta 0.2, w = 2) and each onset is
snapped to its nearest tatum (:func:`adt.lm.scores.drum_score` on the grid used).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from adt.frame.checkpoint import predict_activations
from adt.metrics import match_counts
from adt.frame.peaks import pick_peaks
from adt.lm.scores import drum_score
from adt.tatum.inference import predict_tatums
from adt.vocab import CLASS_INDEX, classes

if TYPE_CHECKING:
    from adt.tatum.tracks import TatumTrack

DELTA = 0.2
WINDOW_S = 0.05
MATCHES = ("grid", "time")
#: Row order and labels of Table II.
METHOD_LABELS: dict[str, str] = {
    "frame_crnn": "CRNN [7] (frame level) + quantization",
    "tatum_crnn": "CRNN (tatum level)",
    "tatum_bigram": "+ Bi-gram",
    "tatum_gru": "+ GRU",
}
TATUM_LABELS: dict[str, str] = {"estimated": "Madmom", "ground_truth": "Ground-truth"}


def binarize(phi: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Y = [phi >= delta] as uint8 (Sec. III-B; delta = 0.2, Sec. IV-D). Any shape."""
    return (np.asarray(phi) >= delta).astype(np.uint8)


def _check_pair(est: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    est, ref = np.asarray(est), np.asarray(ref)
    if est.ndim != 2 or est.shape != ref.shape:
        raise ValueError(f"estimated and reference scores must both be (K, M); got {est.shape} and {ref.shape}")
    return est != 0, ref != 0


def count_onsets(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per drum [N_c, N_e, N_g] of two binary scores on one grid (``match="grid"``).

    Args:
        est, ref: (K, M) binary scores (nonzero = onset).

    Returns:
        int64 (K, 3).

    Raises:
        ValueError: shapes differ or are not 2-D.
    """
    e, r = _check_pair(est, ref)
    return np.stack([(e & r).sum(1), e.sum(1), r.sum(1)], axis=1).astype(np.int64)


def count_onsets_time(est: np.ndarray, tatums_s: np.ndarray, onset_times: np.ndarray, onset_drums: np.ndarray,
                      window_s: float = WINDOW_S) -> np.ndarray:
    """Per drum [N_c, N_e, N_g] of a score against annotated onset times (``match="time"``).

    Args:
        est: (K, M) binary score, K = 3 (BD SD HH) or 5.
        tatums_s: (M,) tatum times in seconds (the estimate's onset times).
        onset_times: (N,) annotated onset times in seconds; onset_drums: (N,) indices into ``CLASSES_5``.
        window_s: tolerance (50 ms).

    Raises:
        ValueError: est not (K, M) with M = len(tatums_s), or K not 3 or 5.
    """
    est = np.asarray(est) != 0
    tatums = np.asarray(tatums_s, dtype=np.float64)
    if est.ndim != 2 or est.shape[1] != tatums.size:
        raise ValueError(f"score of shape {est.shape} does not fit {tatums.size} tatums")
    names = classes(est.shape[0])
    times, drums = np.asarray(onset_times, dtype=np.float64), np.asarray(onset_drums)
    out = np.zeros((len(names), 3), dtype=np.int64)
    for j, name in enumerate(names):
        tp, fp, fn = match_counts(times[drums == CLASS_INDEX[name]], tatums[est[j]], window_s)
        out[j] = (tp, tp + fp, tp + fn)
    return out


def prf(counts: np.ndarray, names: Sequence[str]) -> dict:
    """Eq. 9 from (K, 3) counts [N_c, N_e, N_g]: overall ``p r f n_c n_e n_g`` plus ``p_BD`` ... per drum.

    P (R) is 0 when N_e (N_g) is 0; F is 0 when P + R = 0 (never NaN).
    """
    def one(c) -> dict:
        n_c, n_e, n_g = (int(v) for v in c)
        p = n_c / n_e if n_e else 0.0
        r = n_c / n_g if n_g else 0.0
        return {"p": p, "r": r, "f": 2 * p * r / (p + r) if p + r else 0.0, "n_c": n_c, "n_e": n_e, "n_g": n_g}

    counts = np.asarray(counts)
    out = one(counts.sum(0))
    for j, name in enumerate(names):
        out.update({f"{key}_{name}": v for key, v in one(counts[j]).items()})
    return out


def tatum_prf(ests: Sequence[np.ndarray], refs: Sequence[np.ndarray], names: Sequence[str]) -> dict:
    """Micro P/R/F (``match="grid"``) over tracks of (K, M) binary scores; see :func:`prf`.

    Raises:
        ValueError: list lengths or a pair's shapes differ.
    """
    if len(ests) != len(refs):
        raise ValueError(f"{len(ests)} estimated vs {len(refs)} reference scores")
    total = np.zeros((len(names), 3), dtype=np.int64)
    for e, r in zip(ests, refs):
        total += count_onsets(e, r)
    return prf(total, names)


def quantize_onsets_to_score(onsets: Mapping[str, np.ndarray], tatums_s: np.ndarray, k: int = 3) -> np.ndarray:
    """Frame-level onsets (class name -> times in s) snapped to the nearest tatum: (K, M) uint8 (Sec. IV-D).

    Classes outside the K-class vocabulary are dropped; see :func:`adt.lm.scores.drum_score` for the grid margins.
    """
    names = [c for c in onsets if c in CLASS_INDEX]
    times = np.concatenate([np.asarray(onsets[c], dtype=np.float64) for c in names]) if names else np.zeros(0)
    drums = np.concatenate([np.full(len(onsets[c]), CLASS_INDEX[c]) for c in names]) if names else np.zeros(0, int)
    return drum_score(times, drums.astype(np.int64), tatums_s, k=k)


def frame_baseline_score(activations: np.ndarray, tatums_s: np.ndarray, k: int = 3,
                         threshold: float = DELTA) -> np.ndarray:
    """Frame baseline of Table II: peak picking (madmom, Sec. IV-D rules) then quantization, (K, M) uint8.

    Args:
        activations: (T, 5) or (T, 3) onset probabilities at 100 fps (classes of ``adt.vocab``).
        tatums_s: (M,) tatum times in seconds.
        threshold: peak-picking delta (0.2).
    """
    act = np.asarray(activations)
    onsets = pick_peaks(act, threshold=threshold, classes=classes(act.shape[1]))
    return quantize_onsets_to_score(onsets, tatums_s, k)


# ------------------------------------------------------------------------------------------------ methods


Predictor = Callable[["TatumTrack"], np.ndarray]


def tatum_model_predictor(model, delta: float = DELTA) -> Predictor:
    """Track -> (K, M) binary score from a :class:`adt.tatum.model.TatumCRNN` on the track's grid."""
    return lambda track: binarize(predict_tatums(model, track).T, delta)


def frame_model_predictor(model, k: int = 3, threshold: float = DELTA) -> Predictor:
    """Track -> (K, M) score from a frame-level model (:class:`adt.frame.architectures.FrameCRNN`), peak picked and quantized.

    Activations are computed once per track id and reused for every grid.
    """
    cache: dict[str, np.ndarray] = {}

    def predict(track) -> np.ndarray:
        if track.track_id not in cache:
            cache[track.track_id] = predict_activations(model, track.x)
        return frame_baseline_score(cache[track.track_id], track.tatums_s, k, threshold)

    return predict


def evaluate_methods(predictors: Mapping[str, Predictor], grids: Mapping[str, Sequence["TatumTrack"]],
                     k: int = 3, window_s: float = WINDOW_S) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every method on every tatum grid, both matches (see the module docstring).

    Args:
        predictors: method name (e.g. the keys of :data:`METHOD_LABELS`) -> track -> (K, M) binary score.
        grids: grid name (``"estimated"``, ``"ground_truth"``) -> tracks on that grid (targets Y_hat of that grid).

    Returns:
        ``(summary, per_track)``. summary: one row per (method, tatums, match, class) with class in
        ("all", BD, SD, HH) and columns ``p r f n_c n_e n_g tracks``; per_track: (method, tatums,
        track_id, f_grid, f_time).
    """
    names = classes(k)
    rows, per_track = [], []
    for grid, tracks in grids.items():
        for method, predict in predictors.items():
            totals = {m: np.zeros((k, 3), dtype=np.int64) for m in MATCHES}
            for t in tracks:
                est = predict(t)
                counts = {"grid": count_onsets(est, t.y.T),
                          "time": count_onsets_time(est, t.tatums_s, t.onset_times, t.onset_drums, window_s)}
                for m in MATCHES:
                    totals[m] += counts[m]
                per_track.append({"method": method, "tatums": grid, "track_id": t.track_id,
                                  **{f"f_{m}": prf(counts[m], names)["f"] for m in MATCHES}})
            for m in MATCHES:
                res = prf(totals[m], names)
                for cls in ("all", *names):
                    sfx = "" if cls == "all" else f"_{cls}"
                    rows.append({"method": method, "tatums": grid, "match": m, "class": cls, "tracks": len(tracks),
                                 **{key: res[key + sfx] for key in ("p", "r", "f", "n_c", "n_e", "n_g")}})
    return pd.DataFrame(rows), pd.DataFrame(per_track)


def table_ii(results: pd.DataFrame, match: str = "grid", labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The paper's Table II from :func:`evaluate_methods` summaries (values in %).

    Rows: methods in :data:`METHOD_LABELS` order (labels overridable, e.g. with alpha), others after.
    Columns: MultiIndex (tatums: Madmom / Ground-truth, class: all / BD / SD / HH, metric: F / P / R).

    Raises:
        ValueError: an unknown match or no rows for it.
    """
    if match not in MATCHES:
        raise ValueError(f"unknown match {match!r}; choose one of {MATCHES}")
    df = results[results["match"] == match]
    if df.empty:
        raise ValueError(f"no results for match {match!r}")
    labels = {**METHOD_LABELS, **(labels or {})}
    long = df.melt(id_vars=["method", "tatums", "class"], value_vars=["f", "p", "r"], var_name="metric")
    long["metric"] = long["metric"].str.upper()
    long["value"] = (100 * long["value"]).round(1)
    table = long.pivot_table(index="method", columns=["tatums", "class", "metric"], values="value", sort=False)
    order = [m for m in METHOD_LABELS if m in table.index] + [m for m in table.index if m not in METHOD_LABELS]
    grids = [g for g in TATUM_LABELS if g in df["tatums"].unique()] + \
            [g for g in df["tatums"].unique() if g not in TATUM_LABELS]
    cls_order = ["all"] + [c for c in df["class"].unique() if c != "all"]
    cols = [(g, c, m) for g in grids for c in cls_order for m in ("F", "P", "R") if (g, c, m) in table.columns]
    table = table.loc[order, cols]
    table.index = [labels.get(m, m) for m in order]
    table.columns = pd.MultiIndex.from_tuples([(TATUM_LABELS.get(g, g), c, m) for g, c, m in cols],
                                              names=["tatums", "class", "metric"])
    return table


def table_ii_compact(results: pd.DataFrame, match: str = "grid") -> pd.DataFrame:
    """Table II at a glance: tatum-level F in % of all drums (one decimal), one row per method (index: its
    label), one column per test split and tatum source (``"<test> Madmom F"``, ``"<test> Ground-truth F"``).
    ``results``: :func:`evaluate_methods` summaries with a ``test_set`` column (the study's
    ``results.parquet``); the full tables are :func:`table_ii`."""
    df = results[(results["match"] == match) & (results["class"] == "all")]
    table = df.pivot_table(index="method", columns=["test_set", "tatums"], values="f", sort=False) * 100
    order = [m for m in METHOD_LABELS if m in table.index] + [m for m in table.index if m not in METHOD_LABELS]
    table = table.loc[order]
    table.index = [METHOD_LABELS.get(m, m) for m in order]
    table.columns = [f"{test} {TATUM_LABELS.get(g, g)} F" for test, g in table.columns]
    return table.round(1)


def table_ii_markdown(table: pd.DataFrame, per_class: bool = True) -> str:
    """Markdown of :func:`table_ii`: the paper's layout (all drums) and, with ``per_class``, F/P/R per drum."""
    def flat(sub: pd.DataFrame, with_class: bool) -> str:
        out = sub.copy()
        out.columns = [f"{g} {c} {m}" if with_class else f"{g} {m}" for g, c, m in sub.columns]
        return out.to_markdown(floatfmt=".1f")

    text = flat(table.xs("all", axis=1, level="class", drop_level=False), False)
    if per_class:
        others = [c for c in table.columns.get_level_values("class").unique() if c != "all"]
        if others:
            text += "\n\n" + flat(table.loc[:, table.columns.get_level_values("class").isin(others)], True)
    return text


def regularization_findings(results: pd.DataFrame, match: str = "grid") -> tuple[bool, dict]:
    """The asset check on Table II (issue 28; the paper's finding: LM regularization raises F): fails when an
    LM-regularized tatum model (``tatum_bigram``, ``tatum_gru``) scores below the unregularized ``tatum_crnn``
    on every test set and tatum source (all drums, ``match``). A finding, not a crash: the check warns.

    Args:
        results: :func:`evaluate_methods` summaries with a ``test_set`` column (the study's ``results.parquet``).

    Returns:
        (passed, metadata: per regularized method, the sets where it beats / trails the unregularized model,
        and the mean F difference in points).
    """
    df = results[(results["match"] == match) & (results["class"] == "all")]
    f = df.pivot_table(index="method", columns=["test_set", "tatums"], values="f", sort=False)
    if "tatum_crnn" not in f.index:
        return True, {"note": "no unregularized tatum model in the results"}
    passed, meta = True, {}
    for method in ("tatum_bigram", "tatum_gru"):
        if method not in f.index:
            continue
        diff = (f.loc[method] - f.loc["tatum_crnn"]).dropna()
        worse_everywhere = bool(len(diff)) and bool((diff < 0).all())
        passed &= not worse_everywhere
        meta[method] = (f"{int((diff >= 0).sum())} of {len(diff)} sets at or above the unregularized model, "
                        f"mean {100 * float(diff.mean()):+.1f} F points")
    return passed, meta
