"""BSSEval v4 SDR and SIR as the interleaved multitask paper reports them (Sec. 4.1).

The metrics are museval's (:func:`museval.metrics.bss_eval`, MIT; Stöter, Liutkus & Ito, "The 2018
Signal Separation Evaluation Campaign", LVA/ICA 2018): image-based BSSEval, distortion filters of
512 taps estimated once on the whole track (``framewise_filters=False``), metrics on
non-overlapping 1-s windows. ``import museval`` also imports ``musdb`` and ``stempeg``, which
refuse to load without ``ffmpeg``; we need neither, so :func:`bss_eval_module` loads the
``museval/metrics.py`` file on its own (numpy and scipy only).

Near-silent segments (paper, after Wave-U-Net): a window where any reference or estimate is
all zeros is NaN in museval; the per-track figure is the median over the remaining windows,
and a test set's figure the median over tracks (SiSEC 2018; the paper averages the track
medians: :func:`summarize` gives both).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np


#: estimate power / reference power under which an estimate counts as silent (-60 dB)
SILENT_POWER_RATIO = 1e-6


@functools.cache
def bss_eval_module():
    """``museval.metrics`` loaded without ``museval/__init__.py`` (which needs ffmpeg through musdb).

    Raises:
        ImportError: museval is not installed.
    """
    spec = importlib.util.find_spec("museval")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("museval is not installed (pip install museval)")
    path = Path(list(spec.submodule_search_locations)[0]) / "metrics.py"
    module_spec = importlib.util.spec_from_file_location("adt_museval_metrics", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def evaluate(references: dict[str, np.ndarray], estimates: dict[str, np.ndarray], sample_rate: int = 44100,
             window_s: float = 1.0) -> dict[str, dict[str, float]]:
    """Median SDR and SIR (dB) per source over the 1-s windows of one track.

    Args:
        references, estimates: source -> audio ``(channels, samples)`` (or ``(samples,)``), the same
            sources in both; every reference should be a whole decomposition of the mixture (the
            interference of SIR is measured against the other references). Estimates are cut or
            zero-padded to the references' length.
        sample_rate: Hz; ``window_s``: window and hop in seconds.

    Returns:
        ``{source: {"sdr": dB, "sir": dB, "windows": windows with a value, "silent": the estimate is at least
        60 dB below its reference (:data:`SILENT_POWER_RATIO`: a degenerate estimate)}}`` (NaN when every window
        is near-silent).

    Raises:
        ValueError: sources differ, or a reference is empty or silent throughout. (A silent estimate is
            scored as faint noise: museval refuses silent estimates.)
    """
    if set(references) != set(estimates):
        raise ValueError(f"references {sorted(references)} and estimates {sorted(estimates)} differ")
    names = list(references)
    refs = [np.atleast_2d(np.asarray(references[s], dtype=np.float64)) for s in names]
    n = min(r.shape[-1] for r in refs)
    for s, r in zip(names, refs):
        if n == 0 or not np.any(r[..., :n]):
            raise ValueError(f"reference {s!r} is empty or silent: BSSEval needs every source to sound")
    ref = np.stack([r[..., :n].T for r in refs])  # (nsrc, nsampl, nchan)
    est = np.zeros_like(ref)
    for i, s in enumerate(names):
        e = np.atleast_2d(np.asarray(estimates[s], dtype=np.float64))[..., :n]
        est[i, : e.shape[-1]] = e.T
    # an estimate 60 dB or more below its reference is silent (degenerate: a decoder that outputs nothing)
    silent = [float(np.sum(est[i] ** 2)) < SILENT_POWER_RATIO * float(np.sum(ref[i] ** 2)) for i in range(len(names))]
    for i in range(len(names)):
        if not np.any(est[i]):  # museval refuses silent estimates: a silent one scores as faint noise
            est[i] = np.random.default_rng(i).standard_normal(est[i].shape) * 1e-9
    win = int(round(window_s * sample_rate))
    sdr, _isr, sir, _sar, _perm = bss_eval_module().bss_eval(ref, est, window=win, hop=win)
    out = {}
    for i, s in enumerate(names):
        valid = ~np.isnan(sdr[i])  # +inf: a perfect window
        out[s] = {"sdr": float(np.median(sdr[i][valid])) if valid.any() else float("nan"),
                  "sir": float(np.median(sir[i][valid])) if valid.any() else float("nan"),
                  "windows": int(valid.sum()), "silent": silent[i]}
    return out


def summarize(per_track: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Over tracks: ``{source: {"sdr", "sir" (median of the track medians), "sdr_mean", "sir_mean", "tracks",
    "silent" (share of tracks with a silent estimate)}}``."""
    out: dict[str, dict[str, float]] = {}
    for s in per_track[0] if per_track else []:
        sdr = np.array([t[s]["sdr"] for t in per_track], dtype=float)
        sir = np.array([t[s]["sir"] for t in per_track], dtype=float)
        out[s] = {"sdr": float(np.nanmedian(sdr)), "sir": float(np.nanmedian(sir)),
                  "sdr_mean": float(np.nanmean(sdr)), "sir_mean": float(np.nanmean(sir)),
                  "tracks": int((~np.isnan(sdr)).sum()),
                  "silent": float(np.mean([bool(t[s].get("silent", False)) for t in per_track]))}
    return out
