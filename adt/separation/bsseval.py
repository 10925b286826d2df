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

Speed: museval solves the references' Gram system (``nsrc * nchan * 512`` square: 3,072 for three
stereo sources) anew for every estimate, an LU factorization each time, which dominates its cost.
The system depends on the references only, so :func:`prepare` factorizes it once per track and
:func:`evaluate` reuses it for every estimate and every separator scored on that track (the same
LAPACK LU and triangular solves as ``numpy.linalg.solve``: the figures equal museval's,
``tests/test_separation_multitask.py``); the rest (correlations, projections, per-window criteria)
is museval's own code.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import itertools
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


#: museval's distortion-filter length (taps), as its ``bss_eval`` default
FILTERS_LEN = 512


@dataclasses.dataclass
class Prepared:
    """One track's references ready for :func:`evaluate`: ``names`` (sources, in order), ``refs``
    ``(nsrc, nsampl, nchan)`` float64, ``spectra`` their real FFTs ``(nsrc, nchan, n_fft // 2 + 1)`` (``n_fft``:
    the power of two museval takes), ``solve_all`` and ``solve_own``: solvers of the Gram system of every
    reference and of each reference's own block (``D -> C``, museval's ``_compute_projection_filters``);
    ``nbytes``: about the memory it holds (a three-source stereo track: 130 MB, whatever its length)."""

    names: list
    refs: np.ndarray
    spectra: np.ndarray
    n_fft: int
    solve_all: object
    solve_own: list
    nbytes: int = 0


def _solver(gram: np.ndarray):
    """``D -> (gram + eps I)^-1 D`` by one LU factorization (LAPACK ``getrf``/``getrs``, as ``numpy.linalg.solve``);
    an exactly singular system falls back to least squares on ``gram``, as museval."""
    from scipy.linalg import lu_factor, lu_solve  # lazy: scipy.linalg 0.2 s at import pipelines

    lu = lu_factor(gram + np.finfo(float).eps * np.eye(gram.shape[0]), check_finite=False)
    if not np.all(np.diag(lu[0])):
        return lambda d: np.linalg.lstsq(gram, d, rcond=None)[0]
    return lambda d: lu_solve(lu, d, check_finite=False)


def _reference_array(references: dict[str, np.ndarray]) -> tuple[list, np.ndarray]:
    names = list(references)
    refs = [np.atleast_2d(np.asarray(references[s], dtype=np.float64)) for s in names]
    n = min(r.shape[-1] for r in refs)
    for s, r in zip(names, refs):
        if n == 0 or not np.any(r[..., :n]):
            raise ValueError(f"reference {s!r} is empty or silent: BSSEval needs every source to sound")
    return names, np.stack([r[..., :n].T for r in refs])  # (nsrc, nsampl, nchan)


def _lags(x: np.ndarray, taps: int) -> np.ndarray:
    """Circular cross-correlations (``irfft`` of a cross spectrum, last axis) at lags 0, -1, ..., -(taps - 1)."""
    return np.concatenate([x[..., :1], x[..., -1:-taps:-1]], axis=-1)


def prepare(references: dict[str, np.ndarray]) -> Prepared:
    """The references of one track (source -> ``(channels, samples)`` or ``(samples,)``; cut to the shortest)
    with their Gram systems factorized once (module docstring; the Gram matrix as museval's
    ``_compute_reference_correlations``, from real FFTs).

    Raises:
        ValueError: a reference is empty or silent throughout.
    """
    from scipy.linalg import toeplitz  # lazy: scipy.linalg 0.2 s at import pipelines

    m = bss_eval_module()
    names, ref = _reference_array(references)
    nsrc, nsampl, nchan = ref.shape
    taps = FILTERS_LEN
    n_fft = int(2 ** np.ceil(np.log2(nsampl + taps - 1.0)))
    spectra = np.fft.rfft(np.moveaxis(ref, 1, 2), n=n_fft, axis=-1)  # (nsrc, nchan, bins)
    gram = np.zeros((nsrc, nsrc, nchan, nchan, taps, taps))
    pairs = itertools.product(range(nsrc), range(nchan))
    for (i, c1), (j, c2) in itertools.combinations_with_replacement(pairs, 2):
        ssf = np.fft.irfft(spectra[j, c2] * np.conj(spectra[i, c1]), n=n_fft)
        block = toeplitz(_lags(ssf, taps), r=ssf[:taps])
        gram[j, i, c2, c1], gram[i, j, c1, c2] = block, block.T
    own = [_solver(m._reshape_G(gram[j, j][None, None])) for j in range(nsrc)]
    nbytes = ref.nbytes + spectra.nbytes + 8 * (nsrc * nchan * taps) ** 2 + 8 * nsrc * (nchan * taps) ** 2
    return Prepared(names, ref, spectra, n_fft, _solver(m._reshape_G(gram)), own, nbytes)


def _filters(prepared: Prepared, estimate: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """museval's ``_compute_projection_filters`` on prepared references: the least-squares filters projecting
    ``estimate`` ``(nsampl, nchan)`` on the delayed references, ``(nsrc, nchan, FILTERS_LEN, nchan)``, and on
    each reference alone, ``[(nchan, FILTERS_LEN, nchan)]`` (the cross-correlations computed once for both)."""
    nsrc, _, nchan = prepared.refs.shape
    taps = FILTERS_LEN
    sef = np.fft.rfft(estimate.T, n=prepared.n_fft, axis=-1)  # (nchan, bins)
    cross = np.fft.irfft(prepared.spectra[:, :, None] * np.conj(sef)[None, None], n=prepared.n_fft)
    d = np.moveaxis(_lags(cross, taps), 2, 3)  # (nsrc, nchan, taps, nchan): D of museval
    both = prepared.solve_all(d.reshape(nsrc * nchan * taps, nchan)).reshape(nsrc, nchan, taps, nchan)
    own = [prepared.solve_own[j](d[j].reshape(nchan * taps, nchan)).reshape(nchan, taps, nchan) for j in range(nsrc)]
    return both, own


def _project(ref_spectra: np.ndarray, filters_spectra: np.ndarray, length: int, n: int) -> np.ndarray:
    """museval's ``_project`` in the frequency domain: ``sum_{j, cj} filter[j, cj, :, c] * ref[j, :, cj]``
    (linear convolutions), ``(length, nchan)``; spectra of ``n`` points, ``ref_spectra`` ``(nsrc, nchan, bins)``,
    ``filters_spectra`` ``(nsrc, nchan, bins, nchan)``."""
    return np.fft.irfft(np.einsum("jab,jabc->cb", ref_spectra, filters_spectra), n=n)[:, :length].T


def _window_criteria(ref: np.ndarray, estimates: np.ndarray, filters: list, cache: dict) -> list[tuple[float, float]]:
    """museval's ``_bss_decomp_mtifilt`` and ``_bss_crit`` (images version) of every source on one window:
    ``[(sdr, sir)]`` dB. ``ref`` and ``estimates`` ``(nsrc, n, nchan)``, ``filters`` of :func:`_filters` per
    source; ``cache``: the filters' spectra per transform size (the same for every full window)."""
    import scipy.fft  # lazy: scipy.fft 0.1 s at import pipelines

    m = bss_eval_module()
    nsrc, n, nchan = ref.shape
    length = n + FILTERS_LEN - 1
    size = scipy.fft.next_fast_len(length, real=True)
    if size not in cache:
        cache[size] = [(np.fft.rfft(both, n=size, axis=2), np.fft.rfft(own[None], n=size, axis=2))
                       for both, own in filters]
    spectra = np.fft.rfft(np.moveaxis(ref, 1, 2), n=size, axis=-1)  # (nsrc, nchan, bins)
    out = []
    for j, (both, own) in enumerate(cache[size]):
        s_true = np.zeros((length, nchan))
        s_true[:n] = ref[j]
        e_spat = _project(spectra[j: j + 1], own, length, size) - s_true
        e_interf = _project(spectra, both, length, size) - s_true - e_spat
        e_artif = -s_true - e_spat - e_interf
        e_artif[:n] += estimates[j]
        sdr, _isr, sir, _sar = m._bss_crit(s_true, e_spat, e_interf, e_artif, False)
        out.append((sdr, sir))
    return out


def bss_eval_v4(prepared: Prepared, estimates: np.ndarray, window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """museval's ``bss_eval`` (v4: filters on the whole track, no permutation, the images version) on prepared
    references: ``(sdr, sir)``, each ``(nsrc, windows)`` in dB, NaN in windows where a reference or an
    estimate is silent. ``estimates``: ``(nsrc, nsampl, nchan)`` like ``prepared.refs``. Equal to museval's
    figures up to floating-point rounding (real FFTs, projections summed in the frequency domain)."""
    m = bss_eval_module()
    m.validate(prepared.refs, estimates)
    ref, nsrc = prepared.refs, estimates.shape[0]
    filters = [_filters(prepared, estimates[j]) for j in range(nsrc)]
    filters = [(both, own[j]) for j, (both, own) in enumerate(filters)]
    framer = m.Framing(window, hop, estimates.shape[1])
    sdr, sir, cache = np.full((nsrc, framer.nwin), np.nan), np.full((nsrc, framer.nwin), np.nan), {}
    for t, win in enumerate(framer):
        if not (m._any_source_silent(ref[:, win]) or m._any_source_silent(estimates[:, win])):
            sdr[:, t], sir[:, t] = np.array(_window_criteria(ref[:, win], estimates[:, win], filters, cache)).T
    return sdr, sir


def evaluate(references: dict[str, np.ndarray], estimates: dict[str, np.ndarray], sample_rate: int = 44100,
             window_s: float = 1.0, prepared: Prepared | None = None) -> dict[str, dict[str, float]]:
    """Median SDR and SIR (dB) per source over the 1-s windows of one track.

    Args:
        references, estimates: source -> audio ``(channels, samples)`` (or ``(samples,)``), the same
            sources in both; every reference should be a whole decomposition of the mixture (the
            interference of SIR is measured against the other references). Estimates are cut or
            zero-padded to the references' length.
        sample_rate: Hz; ``window_s``: window and hop in seconds.
        prepared: :func:`prepare` of ``references`` (scoring several estimates of one track: the Gram
            systems are factorized once); None: prepared here.

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
    prepared = prepare(references) if prepared is None else prepared
    if set(prepared.names) != set(references):
        raise ValueError(f"prepared references {prepared.names} are not {sorted(references)}")
    names, ref = prepared.names, prepared.refs
    n = ref.shape[1]
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
    sdr, sir = bss_eval_v4(prepared, est, win, win)
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
