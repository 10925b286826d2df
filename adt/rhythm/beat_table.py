"""The beats stage (asset ``beats``): madmom's beats of every track (:mod:`adt.rhythm.beats`), cached per audio
file by its content, and the ground-truth beats, in one table; the tracker scored per dataset with mir_eval."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from adt import tracking
from adt.atomic import atomic_path
from adt.audio import read_audio
from adt.cache import cache_key, intact, seal, stage_cache
from adt.config import Settings, data_dir
from adt.data.tables import TracksResult
from adt.parallel import jobs, run_jobs
from adt.results import PathEntry, RunLink, Skipped, StageResult, Table
from adt.rhythm.beats import (BEAT_FPS, CONTEXT_FRAMES, JOIN_TOLERANCE_S, ORT_THREADS, WINDOW_FRAMES, bar_positions,
                              beat_scores, track_beats, track_downbeats)
from adt.separation.stems import DrumStemsResult

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
    # lazy: madmom 0.3 s, onnxruntime 23 ms at import pipelines
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


@dataclass(frozen=True)
class BeatsResult(StageResult):
    """Beats of every track (asset ``beats``): ``path`` beats.parquet (:data:`BEAT_TABLE_COLUMNS`; source
    "madmom" or "ground_truth"; position: beat in bar, 1-based, 0 unknown); ``scores`` the tracker's beat
    F-measure etc. per dataset (records); ``input`` "mix" or "separated"; ``skipped`` the tracks without
    beats and why; ``run_id`` the MLflow run of the scores (None without reference beats)."""

    path: str
    skipped: list
    scores: list
    input: str
    run_id: str | None = None

    def metadata(self) -> dict:
        scores = pd.DataFrame(self.scores).round(4)
        return {"beat_scores": Table(scores) if not scores.empty else "no reference beats",
                "mlflow_run": RunLink(self.run_id), "skipped": Skipped(self.skipped), "input": self.input,
                "path": PathEntry(self.path)}


def _cache_files(tracks: pd.DataFrame, stems: dict, beat_input: str) -> dict[str, tuple[str, Path] | str]:
    """track id -> (the audio file its beats are tracked on, that file's cache file), or why it has none."""
    settings = tracker_settings()
    cached: dict[str, tuple[str, Path] | str] = {}
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
    return cached


def _track_missing(cached: dict[str, tuple[str, Path] | str], n_tracks: int,
                   log: Callable[[str], None]) -> dict[str, str | None]:
    """Track the beats of every audio file of ``cached`` not in its cache (each file once, in worker processes):
    cache file -> None or the error that stopped it."""
    todo: dict[str, tuple[str, str]] = {}  # cache file -> (audio file, a track id), each file tracked once
    for track_id, entry in cached.items():
        if not isinstance(entry, str) and not intact(entry[1]):  # missing, or not what was written (warned)
            todo.setdefault(str(entry[1]), (entry[0], track_id))
    if not todo:
        return {}
    processes = max(1, min(jobs(1), len(todo)))
    threads = max(1, ORT_THREADS // processes)
    log(f"beat tracking {len(todo)} audio files of {n_tracks} tracks (the others cached) in {processes} "
        f"process(es), {threads} onnxruntime thread(s) each")
    calls = [dict(audio_path=audio, cache_file=f, num_threads=threads) for f, (audio, _) in todo.items()]
    out = run_jobs(track_file_beats, calls, names=[tid for _, tid in todo.values()], log=log, every=10)
    errors = dict(zip(todo, out))
    for cache_file, error in errors.items():
        if error is None:
            seal(cache_file)
    return errors


def run(settings: Settings, tracks: TracksResult, drum_stems: DrumStemsResult,
        log: Callable[[str], None] = print) -> BeatsResult:
    """Stage ``beats``: :func:`beat_table` on the settings' ``beat_input``."""
    return beat_table(tracks, drum_stems, settings.beat_input, log)


def beat_table(tracks: TracksResult, drum_stems: DrumStemsResult, beat_input: str = "mix",
               log: Callable[[str], None] = print) -> BeatsResult:
    """Beats of every track (madmom, cached per audio file) and the ground-truth beats, in one table.

    Mixtures are tracked on the mix or on their separated drum stem (``beat_input``),
    drum-only recordings on themselves; the tracker is scored against ground truth per
    dataset with mir_eval (logged once to MLflow ``adt/beats``). Each file's beats are cached by its
    content (:func:`beat_cache_file`); the files not cached are tracked in worker processes
    (:func:`adt.parallel.run_jobs`, ``ADT_JOBS``: the cores by default), each running onnxruntime on
    ``ORT_THREADS // processes`` threads (one each on 2 cores; with one process, here, on
    :data:`ORT_THREADS`).

    Args:
        tracks: the ``tracks`` stage's result (its ground-truth beats table ``gt_beats``).
        drum_stems: the ``drum_stems`` stage's result (read with ``beat_input`` "separated").
        beat_input: "mix" or "separated".

    Raises:
        ValueError: an unknown ``beat_input``; ``ADT_JOBS`` not a positive integer.
    """
    if beat_input not in ("mix", "separated"):
        raise ValueError(f"beat_input must be 'mix' or 'separated', got {beat_input!r}")
    started = time.time()  # the MLflow run of the scores spans the tracking
    dataset_keys, stems = tracks.dataset_keys, drum_stems.stems
    gt_beats = pd.read_parquet(tracks.gt_beats)
    tracks = pd.read_parquet(tracks.path)
    cached = _cache_files(tracks, stems, beat_input)
    errors = _track_missing(cached, len(tracks), log)
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
                        drum_stems.key if beat_input == "separated" else None)
    with atomic_path(cache.dir / "beats.parquet") as tmp:
        out.to_parquet(tmp, index=False)
    by_dataset = (pd.DataFrame(scores).groupby("dataset").mean(numeric_only=True).round(4) if scores
                  else pd.DataFrame())

    def log_scores() -> None:
        import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

        for ds, row in by_dataset.iterrows():
            mlflow.log_metrics({f"{ds}.{k}": float(v) for k, v in row.items()})
        mlflow.log_table(by_dataset.reset_index(), "beat_scores.json")

    run_id = tracking.log_once("beats", "madmom-beats", cache.key, log_scores,
                               params={"fps": BEAT_FPS, "input": beat_input,
                                       "method": "RNNBeatProcessor+DBN, DBNDownBeatTracking"},
                               started=started) if not by_dataset.empty else None
    return BeatsResult(key=cache.key, run_id=run_id, path=str(cache.dir / "beats.parquet"), skipped=skipped,
                       scores=by_dataset.reset_index().to_dict("records"), input=beat_input)
