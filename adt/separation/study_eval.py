"""The separation study's evaluation: its evaluation sets and the scoring of a separator on them.

:func:`evaluation_sets` builds the sets (rendered validation and test tracks, MDB drums under a held-out
band, the fold's real songs; :mod:`adt.separation.study`), :func:`evaluate_separator` and
:func:`evaluate_variants` score a separator with BSSEval (:mod:`adt.separation.bsseval`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from adt.audio import read_audio, write_audio
from adt.memory import PeakMemory
from adt.separation import bsseval, real_songs
from adt.separation.study_settings import StudySettings
from adt.separation.unet import SOURCES


def rendered_tracks(tracks: pd.DataFrame, split: str) -> list[dict]:
    """Rendered tracks of ``split`` with every stem (``mix``, ``drums``, ``bass``, ``other`` wav paths;
    bass and other lie beside the mixture, :mod:`adt.data.datasets.demo` / ``groove``), by track id."""
    rows = tracks[(tracks.split == split) & tracks.mix_path.notna() & tracks.drum_path.notna()]
    out = []
    for row in rows.sort_values("track_id").itertuples():
        folder = Path(row.mix_path).parent
        stems = {"bass": folder / "bass.wav", "other": folder / "other.wav"}
        if all(p.is_file() for p in stems.values()):
            out.append({"track_id": row.track_id, "mix": row.mix_path, "drums": row.drum_path,
                        **{k: str(v) for k, v in stems.items()}})
    return out


def spread(items: list, n: int) -> list:
    """``n`` items evenly spaced over ``items`` (all when there are fewer)."""
    if len(items) <= n:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, n).round()]


def _cropped(path: str, seconds: float) -> tuple[np.ndarray, int]:
    audio, sr = read_audio(path)
    audio = audio if audio.ndim == 2 else audio[None]
    audio = np.repeat(audio, 2, axis=0) if audio.shape[0] == 1 else audio[:2]
    return np.ascontiguousarray(audio[:, : int(seconds * sr)]), sr


def render_set(items: list[dict], seconds: float) -> list[dict]:
    """Evaluation tracks: ``{"track_id", "mix": (2, n), "refs": {source: (2, n)}, "sr"}`` (first ``seconds``)."""
    out = []
    for it in items:
        mix, sr = _cropped(it["mix"], seconds)
        out.append({"track_id": it["track_id"], "mix": mix, "sr": sr,
                    "refs": {s: _cropped(it[s], seconds)[0] for s in SOURCES}})
    return out


def mdb_set(tracks: pd.DataFrame, beats: pd.DataFrame, folder: Path, seconds: float,
            n: int | None = None) -> list[dict]:
    """MDB drum-only recordings (``n`` spread over them; None: all) with a held-out band (seed ``1000 + k``
    as the transcription benchmarks), cached as ``<folder>/<k>/{mix,drums,band}.wav``: refs ``drums`` (the
    real recording) and ``band``."""
    from adt.data.accompaniment import band_parts  # lazy: scipy.signal, scipy.linalg 0.8 s at import pipelines

    mdb = tracks[(tracks.dataset == "mdb") & tracks.drum_path.notna()].sort_values("track_id")
    rows = list(enumerate(mdb.itertuples()))
    out = []
    for k, row in (rows if n is None else spread(rows, n)):
        paths = {p: folder / f"{k:03d}" / f"{p}.wav" for p in ("mix", "drums", "band")}
        if not all(p.is_file() for p in paths.values()):
            audio, sr = _cropped(row.drum_path, seconds)
            b = beats[beats.track_id == row.track_id].sort_values("time_s")
            downbeats = b.loc[b.position == 1, "time_s"].to_list()
            drums, band = band_parts(audio, sr, b.time_s.to_list(), downbeats, seed=1000 + k)
            write_audio(paths["drums"], drums, sr)
            write_audio(paths["band"], band, sr)
            write_audio(paths["mix"], drums + band, sr)
        parts = {p: read_audio(v)[0] for p, v in paths.items()}
        out.append({"track_id": row.track_id, "mix": parts["mix"], "sr": 44100,
                    "refs": {"drums": parts["drums"], "band": parts["band"]}})
    return out


def evaluation_sets(tracks: pd.DataFrame, beats: pd.DataFrame, settings: "StudySettings", folder: Path,
                    names=("val", "test", "mdb"), val_items: list[dict] | None = None,
                    real: dict[str, list[dict]] | None = None) -> dict[str, list[dict]]:
    """The study's evaluation sets (:mod:`adt.separation.study`) that have tracks: ``val`` (``val_items``, default the
    validation renders) and ``test`` renders (:func:`render_set`), ``mdb`` (:func:`mdb_set`, cached under
    ``<folder>/mdb``), ``real_val`` and ``real`` (``real``'s ``val`` and ``test`` songs, whole)."""
    val_items = rendered_tracks(tracks, "validation") if val_items is None else val_items
    build = {"val": lambda: render_set(spread(val_items, settings.val_tracks), settings.eval_s),
             "test": lambda: render_set(spread(rendered_tracks(tracks, "test"), settings.eval_tracks), settings.eval_s),
             "mdb": lambda: [] if settings.mdb_tracks == 0 else mdb_set(tracks, beats, Path(folder) / "mdb",
                                                                      settings.eval_s, settings.mdb_tracks),
             "real_val": lambda: real_songs.evaluation_set((real or {}).get("val", []), settings.real_eval_s),
             "real": lambda: real_songs.evaluation_set((real or {}).get("test", []), settings.real_eval_s)}
    sets = {name: build[name]() for name in names}
    return {k: v for k, v in sets.items() if v}


def evaluate_separator(separate: Callable[[np.ndarray], dict], sets: dict[str, list[dict]]) -> dict:
    """Metrics of ``separate`` (mixture (2, n) -> {source: (2, n)} for drums, bass, other) on ``sets``: the one
    variant of :func:`evaluate_variants`."""
    return evaluate_variants(lambda mix: {"": separate(mix)}, sets)[""]


def evaluate_variants(separate: Callable[[np.ndarray], dict[str, dict]], sets: dict[str, list[dict]]) -> dict:
    """Metrics of the variants one separation pass gives (``separate``: mixture (2, n) -> {variant: {source:
    (2, n)}} for drums, bass, other; e.g. a shared encoder's decoders with and without ratio masks) on ``sets``,
    each track's references prepared for BSSEval once (:func:`adt.separation.bsseval.prepare`).

    Returns:
        ``{variant: {"sdr.<source>.<set>": dB (mean of the per-song medians, paper Sec. 4.1),
        "sdr_median.<source>.<set>" (their median), "sir...", "sir_median...", "silent.<source>.<set>" (share of
        songs whose estimate is silent: degenerate), ..., "infer_s_per_min" (seconds per minute of audio of the
        separation pass that gives every variant), "peak_mb", "per_track": {set: [{track_id, source: {sdr,
        sir}}]}}}``; on ``mdb`` the band's estimate is the sum of bass and other.
    """
    rows: dict[str, dict[str, list]] = {}
    seconds, audio_s, peak = 0.0, 0.0, 0.0
    for name, items in sets.items():
        for it in items:
            with PeakMemory() as mem:
                t0 = time.perf_counter()
                variants = separate(it["mix"])
                seconds += time.perf_counter() - t0
            peak, audio_s = max(peak, mem.mb), audio_s + it["mix"].shape[-1] / it["sr"]
            prepared = _prepared(name, it)
            for variant, est in variants.items():
                scores = bsseval.evaluate(it["refs"], _as_references(est, it["refs"]), it["sr"], prepared=prepared)
                rows.setdefault(variant, {}).setdefault(name, []).append({"track_id": it["track_id"], **scores})
    out = {}
    for variant, per_track in rows.items():
        metrics = {}
        for name, tracks in per_track.items():
            summary = bsseval.summarize([{k: v for k, v in r.items() if k != "track_id"} for r in tracks])
            for source, m in summary.items():
                metrics[f"sdr.{source}.{name}"], metrics[f"sir.{source}.{name}"] = m["sdr_mean"], m["sir_mean"]
                metrics[f"sdr_median.{source}.{name}"], metrics[f"sir_median.{source}.{name}"] = m["sdr"], m["sir"]
                metrics[f"silent.{source}.{name}"] = m["silent"]
        out[variant] = {**metrics, "infer_s_per_min": 60.0 * seconds / max(audio_s, 1e-9), "peak_mb": peak,
                        "per_track": per_track}
    return out


#: the evaluation tracks' references prepared for BSSEval in this process (:func:`_prepared`): the models that one
#: worker process evaluates score the same tracks; :func:`adt.separation.study.run_study` empties it when done
_PREPARED: dict = {}


#: the most memory :data:`_PREPARED` holds (the demo's 13 tracks: about 1 GB)
PREPARED_BUDGET_MB = 1536


def _prepared(set_name: str, item: dict) -> bsseval.Prepared:
    """An evaluation track's references prepared for BSSEval (:func:`adt.separation.bsseval.prepare`), kept for
    the next model this process evaluates while :data:`PREPARED_BUDGET_MB` allows."""
    key = (set_name, item["track_id"], tuple((k, v.shape, float(np.abs(v).sum())) for k, v in item["refs"].items()))
    if key in _PREPARED:
        return _PREPARED[key]
    prepared = bsseval.prepare(item["refs"])
    if sum(p.nbytes for p in _PREPARED.values()) + prepared.nbytes <= PREPARED_BUDGET_MB * 2 ** 20:
        _PREPARED[key] = prepared
    return prepared


def _as_references(estimates: dict, refs: dict) -> dict:
    """Estimates shaped as the references: on ``mdb`` (refs drums and band) the band is bass + other; mono
    references (real songs) get the estimates' channel mean."""
    if "band" in refs:
        estimates = {"drums": estimates["drums"], "band": estimates["bass"] + estimates["other"]}
    return {k: v.mean(0, keepdims=True) if refs[k].shape[0] == 1 else v for k, v in estimates.items()}


def drums_only(drums_of: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], dict]:
    """A drums separator as a three-source one: bass and other share the rest of the mixture (their
    figures are not reported; drums' SDR and SIR depend on the drums estimate alone)."""
    def separate(mix: np.ndarray) -> dict:
        drums = drums_of(mix)
        rest = (mix - drums) / 2
        return {"drums": drums, "bass": rest, "other": rest}
    return separate


def forget_prepared() -> None:
    """Empty :data:`_PREPARED` (:func:`adt.separation.study.run_study`, when its models are scored)."""
    _PREPARED.clear()
