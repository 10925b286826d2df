"""Drum piano rolls on the tatum grid, as the tatum paper's Fig. 3.

Three stacked rolls of one excerpt (drums x tatums): the ground-truth score, the
score of the unregularized tatum CRNN and that of the LM-regularized one, with
beat (every 4 tatums) and bar (every 16) lines and, optionally, each song's F.
Drawn with matplotlib's Agg backend (no display).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from adt.atomic import atomic_path
from adt.vocab import classes


def excerpt_start(unregularized: np.ndarray, regularized: np.ndarray, length: int = 64, hop: int = 16) -> int:
    """First tatum of the ``length``-tatum window (starts every ``hop``) where the two (K, M) scores differ most."""
    diff = (np.asarray(unregularized) != 0) != (np.asarray(regularized) != 0)
    m = diff.shape[1]
    starts = list(range(0, max(1, m - length + 1), hop))
    return max(starts, key=lambda s: (int(diff[:, s:s + length].sum()), -s))


def plot_fig3(gt: np.ndarray, unregularized: np.ndarray, regularized: np.ndarray, tatum_times: np.ndarray,
              path: str | Path, title: str = "", f_measures: Mapping[str, float] | None = None,
              labels: Sequence[str] = ("ground truth", "unregularized", "regularized"),
              tatums_per_beat: int = 4, beats_per_bar: int = 4) -> Path:
    """Write the Fig. 3 piano rolls of one excerpt as PNG, atomically.

    Args:
        gt, unregularized, regularized: (K, M) binary scores (K = 3: BD SD HH, or 5), one excerpt.
        tatum_times: (M,) tatum times in seconds (x tick labels at bar lines).
        path: the PNG to write (parent folders are created).
        title: figure title (e.g. the track).
        f_measures: optional label -> F in [0, 1], shown in the panel titles (the paper shows each song's F).
        labels: the three panels' names.

    Returns:
        ``path``.

    Raises:
        ValueError: scores of differing shapes, K not 3 or 5, or M different from len(tatum_times).
    """
    # lazy: pyplot after matplotlib.use('Agg'); matplotlib 0.5 s at import pipelines
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = [np.asarray(s) for s in (gt, unregularized, regularized)]
    if len({s.shape for s in scores}) != 1 or scores[0].ndim != 2:
        raise ValueError(f"scores must share one (K, M) shape, got {[s.shape for s in scores]}")
    k, m = scores[0].shape
    names = classes(k)
    times = np.asarray(tatum_times, dtype=float).reshape(-1)
    if times.size != m:
        raise ValueError(f"{m} tatums in the scores but {times.size} tatum times")
    fig, axes = plt.subplots(3, 1, figsize=(max(6.0, 0.14 * m + 1.5), 1.0 + 0.45 * k * 3), sharex=True)
    bar = tatums_per_beat * beats_per_bar
    for ax, score, label in zip(axes, scores, labels):
        ax.imshow(score != 0, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
                  extent=(-0.5, m - 0.5, -0.5, k - 0.5))
        for t in range(0, m + 1, tatums_per_beat):
            ax.axvline(t - 0.5, color="tab:blue" if t % bar == 0 else "0.85", lw=1.0 if t % bar == 0 else 0.5)
        ax.set_yticks(range(k), names)
        f = (f_measures or {}).get(label)
        ax.set_title(label + (f"  (F = {100 * f:.1f}%)" if f is not None else ""), fontsize=9, loc="left")
    ticks = list(range(0, m, bar))
    axes[-1].set_xticks(ticks, [f"{times[t]:.1f}" for t in ticks])
    axes[-1].set_xlabel("time of the bar's first tatum (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
