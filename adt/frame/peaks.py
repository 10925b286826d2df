"""Peak picking: onset times from an activation function (madmom).

Peak picking follows the tatum paper's baseline (Eq. 10 and the rules after
it, from Vogl et al. 2018): a frame is an onset of drum k when it is the maximum
of the previous w1 = 2 frames, exceeds the mean of the previous w3 = 2 frames by
delta = 0.2, and lies more than w5 = 2 frames after the previous onset.
madmom's ``OnsetPeakPickingProcessor`` implements exactly these rules (the paper
prints "max" for the second rule; madmom and Vogl use the moving average).

The thesis (Fosse 2025, Sec. 2.5 "Peak-picking" and Sec. 5.4) uses centred
windows, m = a = w = 2 and delta = 0.1 (Vogl et al.'s best values), and then
keeps a peak only when its activation is >= 0.5. :data:`PEAK_PICKING` names both
settings ("paper", "thesis"); :func:`peak_picking_params` returns the keyword
arguments of :func:`pick_peaks` for either. madmom takes the moving maximum over
the frames that passed the mean + delta test (the thesis's code over all frames);
the two differ only when a larger frame within +-2 frames fails that test.
"""

from __future__ import annotations

import numpy as np

from adt.features.spectrogram import FPS
from adt.vocab import CLASSES_5

#: Peak-picking settings by name (keyword arguments of :func:`pick_peaks`; windows in frames).
PEAK_PICKING: dict[str, dict] = {
    # tatum paper Sec. IV-D (Vogl et al. 2018): causal windows, delta 0.2
    "paper": {"threshold": 0.2, "pre_max": 2, "post_max": 0, "pre_avg": 2, "post_avg": 0, "combine": 2.5,
              "min_peak": 0.0},
    # thesis Sec. 2.5 / 5.4: centred windows m = a = w = 2, delta 0.1, peaks >= 0.5 count as onsets
    "thesis": {"threshold": 0.1, "pre_max": 2, "post_max": 2, "pre_avg": 2, "post_avg": 2, "combine": 2,
               "min_peak": 0.5},
}


def peak_picking_params(name: str | dict) -> dict:
    """Keyword arguments of :func:`pick_peaks` for a :data:`PEAK_PICKING` name (a dict passes through).

    Raises:
        ValueError: an unknown name.
    """
    if isinstance(name, dict):
        return dict(name)
    try:
        return dict(PEAK_PICKING[name])
    except KeyError:
        raise ValueError(f"unknown peak picking {name!r}; choose one of {sorted(PEAK_PICKING)}") from None


def pick_peaks(activations: np.ndarray, threshold: float = 0.2, fps: int = FPS,
               classes: tuple[str, ...] = CLASSES_5, pre_max: int = 2, post_max: int = 0, pre_avg: int = 2,
               post_avg: int = 0, combine: float = 2.5, min_peak: float = 0.0) -> dict[str, np.ndarray]:
    """Onset times per drum from an activation function (madmom ``OnsetPeakPickingProcessor``).

    The defaults are the tatum paper's rule (:data:`PEAK_PICKING` ``"paper"``); pass
    ``**peak_picking_params("thesis")`` for the thesis's.

    Args:
        activations: (T, K) onset probabilities at ``fps`` frames per second.
        threshold: delta above the moving average (paper: 0.2, thesis: 0.1).
        pre_max, post_max: frames before / after of the moving maximum.
        pre_avg, post_avg: frames before / after of the moving average.
        combine: an onset within ``combine`` frames after the previous one is dropped.
        min_peak: peaks whose activation is below this are dropped (thesis: 0.5); a mapping
            class name -> value gives each class its own (:func:`tune_min_peak`; missing: 0).

    Returns:
        class name -> onset times in seconds (sorted).
    """
    from madmom.features.onsets import OnsetPeakPickingProcessor  # lazy: madmom 0.3 s at import pipelines

    proc = OnsetPeakPickingProcessor(threshold=threshold, pre_max=pre_max / fps, post_max=post_max / fps,
                                     pre_avg=pre_avg / fps, post_avg=post_avg / fps, combine=combine / fps, fps=fps)
    act = np.asarray(activations, dtype=np.float32)
    out = {}
    for k, c in enumerate(classes):
        onsets = np.asarray(proc(np.ascontiguousarray(act[:, k])), dtype=float)
        floor = float(min_peak.get(c, 0.0)) if isinstance(min_peak, dict) else float(min_peak)
        if floor > 0 and len(onsets):
            onsets = onsets[peak_heights(act[:, k], onsets, fps) >= floor]
        out[c] = onsets
    return out


def peak_heights(activation: np.ndarray, onsets: np.ndarray, fps: int = FPS) -> np.ndarray:
    """The activation (T,) at each onset time (seconds): shape (N,)."""
    frames = np.clip(np.round(np.asarray(onsets) * fps).astype(int), 0, len(activation) - 1)
    return np.asarray(activation)[frames]


#: Candidate per-class peak floors of :func:`tune_min_peak`.
MIN_PEAK_GRID = tuple(round(v, 2) for v in np.arange(0.2, 0.951, 0.05))


def tune_min_peak(activations: list[np.ndarray], references: list[dict[str, np.ndarray]],
                  peak_picking: str | dict = "thesis", classes: tuple[str, ...] = CLASSES_5,
                  grid: tuple[float, ...] = MIN_PEAK_GRID, fps: int = FPS) -> dict:
    """Peak picking with a per-class activation floor tuned for the micro F-measure (50 ms).

    The madmom peaks of ``peak_picking`` (its windows and delta) are picked once per track; each
    class's floor (``min_peak``) is then chosen from ``grid`` to maximise the micro F-measure over
    all tracks and classes, class by class, twice round (coordinate ascent; micro F couples the
    classes through the totals). Tune on validation tracks, never on test ones: the thesis keeps
    0.5 for every class (Sec. 5.4); a model trained on rendered drums is often over-confident on
    real recordings' hi-hats and cymbals, and a tuned floor is where that shows.

    Args:
        activations: per track, the (T, K) activation function at ``fps``.
        references: per track, class name -> reference onset times in seconds.
        peak_picking: the rule whose windows and delta are kept (:data:`PEAK_PICKING` name or dict).

    Returns:
        the keyword arguments of :func:`pick_peaks` (``min_peak`` a class -> floor dict), plus
        ``"tuned_f"``: the micro F-measure the floors reach on these tracks (pop it before use).
    """
    from adt.metrics import match_counts  # lazy: mir_eval, scipy.signal 0.7 s at adt transcribe

    base = {**peak_picking_params(peak_picking), "min_peak": 0.0}
    base.pop("tuned_f", None)
    # counts[c][j] = (tp, fp, fn) summed over tracks with floor grid[j] for class c
    counts = {c: np.zeros((len(grid), 3), dtype=np.int64) for c in classes}
    for act, ref in zip(activations, references):
        peaks = pick_peaks(act, fps=fps, classes=classes, **base)
        for k, c in enumerate(classes):
            heights = peak_heights(act[:, k], peaks[c], fps)
            for j, floor in enumerate(grid):
                counts[c][j] += match_counts(np.asarray(ref.get(c, [])), peaks[c][heights >= floor])
    choice = {c: grid.index(min(grid, key=lambda g: abs(g - 0.5))) for c in classes}

    def micro_f(pick: dict) -> float:
        tp, fp, fn = sum(counts[c][pick[c]] for c in classes)
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0

    for _ in range(2):
        for c in classes:
            choice[c] = max(range(len(grid)), key=lambda j: (micro_f({**choice, c: j}), -abs(grid[j] - 0.5)))
    return {**base, "min_peak": {c: float(grid[choice[c]]) for c in classes}, "tuned_f": micro_f(choice)}
