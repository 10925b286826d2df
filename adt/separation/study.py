"""The separation study: the interleaved multitask paper's Tables 2 and 3 on our renders, the
Open-Unmix baselines beside them, and the separator the graph uses (the best validation drums SDR).

Models (:data:`MODELS`): the four procedures of :mod:`adt.separation.procedures` with the paper's
encoder, ``interleaved`` with encoder+, an Open-Unmix drums model trained on the same renders
(:mod:`adt.separation.umx`), the pretrained ``umxl`` and ``umxhq`` when they load, and the mixture
itself as every estimate (the floor). Plus the transferable encoder (paper Sec. 4.4): a model trained interleaved on
drums and bass, then given an ``other`` decoder on its frozen encoder (:func:`procedures.add_source`).

Evaluation (:mod:`adt.separation.bsseval`, BSSEval v4, 1-s windows, median over windows then over
tracks), the first ``eval_s`` seconds of each track:

* ``test``: rendered test tracks (kit-disjoint splits: kits no model trained on), drums / bass / other;
* ``mdb``: MDB Drums' real drum recordings mixed with a held-out rendered band
  (:func:`adt.data.accompaniment.band_parts`): drums against the real recording, the band as the
  interference;
* ``val``: validation renders, drums SDR (chooses the graph's separator).

Every model is trained and evaluated once: its weights and figures sit in ``<folder>/<name>*.pt`` and
``<folder>/<name>.json``, so a re-run after a crash resumes with the next model. Each model is one
MLflow run in ``adt/separation`` tagged ``procedure`` with metrics ``sdr.<source>.<set>`` and
``sir.<source>.<set>``, ``params``, ``infer_s_per_min``, ``peak_mb``, ``train_s``; a ``study`` run holds
the tables (``separation_study.json``, ``separation_study.md``) and the chosen model's figures.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from adt.atomic import write_json
from adt.memory import PeakMemory
from adt.audio import read_audio, write_audio
from adt.separation import bsseval, procedures, umx
from adt.separation.unet import SOURCES, UNetConfig

#: name -> (procedure, encoder variant); Open-Unmix and the floor are handled apart
SHARED_MODELS = {
    "independent": ("independent", "encoder"),
    "simultaneous": ("simultaneous", "encoder"),
    "interleaved": ("interleaved", "encoder"),
    "interleaved_acc": ("interleaved_acc", "encoder"),
    "interleaved_encoder+": ("interleaved", "encoder+"),
}
MODELS = (*SHARED_MODELS, "open_unmix", "umxl", "umxhq", "mixture")
TRANSFER = "interleaved_other_later"


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """Sizes of the study (:meth:`from_profile`): ``rounds`` per shared-encoder model (see
    :mod:`adt.separation.procedures`), ``umx_steps`` for Open-Unmix on ``umx_tracks`` training tracks (it
    holds them in memory), ``eval_tracks`` test renders,
    ``val_tracks`` validation renders, ``mdb_tracks`` MDB recordings (None: all), ``eval_s`` seconds of
    each evaluated track."""

    rounds: int = 160
    batch_size: int = 8
    patch_frames: int = 65
    freq_pool: int = 2
    umx_steps: int = 600
    umx_tracks: int = 64
    eval_tracks: int = 8
    val_tracks: int = 4
    mdb_tracks: int | None = None
    eval_s: float = 20.0
    seed: int = 1234

    @classmethod
    def from_profile(cls, profile) -> "StudySettings":
        return cls(rounds=profile.separation_rounds, batch_size=profile.separation_batch,
                   umx_steps=profile.separation_steps, eval_tracks=profile.separation_eval_tracks,
                   val_tracks=max(2, profile.separation_eval_tracks // 2), mdb_tracks=profile.separation_mdb_tracks,
                   eval_s=profile.separation_eval_s, seed=profile.seed)

    def train_settings(self, rounds: int | None = None) -> procedures.TrainSettings:
        return procedures.TrainSettings(rounds=rounds or self.rounds, batch_size=self.batch_size,
                                        val_every=max(1, (rounds or self.rounds) // 8), seed=self.seed)

    def config(self, encoder: str = "encoder", sources=SOURCES) -> UNetConfig:
        return UNetConfig(sources=tuple(sources), encoder_plus=encoder == "encoder+", freq_pool=self.freq_pool,
                          patch_frames=self.patch_frames)


# ------------------------------------------------------------------------------------------- data


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
    from adt.data.accompaniment import band_parts

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
                    names=("val", "test", "mdb")) -> dict[str, list[dict]]:
    """The study's evaluation sets (module docstring) that have tracks: ``val`` and ``test`` renders
    (:func:`render_set`), ``mdb`` (:func:`mdb_set`, cached under ``<folder>/mdb``)."""
    build = {"val": lambda: render_set(spread(rendered_tracks(tracks, "validation"), settings.val_tracks),
                                       settings.eval_s),
             "test": lambda: render_set(spread(rendered_tracks(tracks, "test"), settings.eval_tracks), settings.eval_s),
             "mdb": lambda: mdb_set(tracks, beats, Path(folder) / "mdb", settings.eval_s, settings.mdb_tracks)}
    sets = {name: build[name]() for name in names}
    return {k: v for k, v in sets.items() if v}


# ------------------------------------------------------------------------------------- evaluation


def evaluate_separator(separate: Callable[[np.ndarray], dict], sets: dict[str, list[dict]]) -> dict:
    """Metrics of ``separate`` (mixture (2, n) -> {source: (2, n)} for drums, bass, other) on ``sets``.

    Returns:
        ``{"sdr.<source>.<set>": dB, "sir.<source>.<set>": dB, ..., "infer_s_per_min", "peak_mb",
        "per_track": {set: [{track_id, source: {sdr, sir}}]}}``; on ``mdb`` the band's estimate is the
        sum of bass and other.
    """
    metrics, per_track, seconds, audio_s, peak = {}, {}, 0.0, 0.0, 0.0
    for name, items in sets.items():
        rows = []
        for it in items:
            with PeakMemory() as mem:
                t0 = time.perf_counter()
                est = separate(it["mix"])
                seconds += time.perf_counter() - t0
            peak, audio_s = max(peak, mem.mb), audio_s + it["mix"].shape[-1] / it["sr"]
            if "band" in it["refs"]:
                est = {"drums": est["drums"], "band": est["bass"] + est["other"]}
            rows.append({"track_id": it["track_id"], **bsseval.evaluate(it["refs"], est, it["sr"])})
        per_track[name] = rows
        for source, m in bsseval.summarize([{k: v for k, v in r.items() if k != "track_id"} for r in rows]).items():
            metrics[f"sdr.{source}.{name}"], metrics[f"sir.{source}.{name}"] = m["sdr"], m["sir"]
    metrics["infer_s_per_min"] = 60.0 * seconds / max(audio_s, 1e-9)
    metrics["peak_mb"] = peak
    return {**metrics, "per_track": per_track}


def drums_only(drums_of: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], dict]:
    """A drums separator as a three-source one: bass and other share the rest of the mixture (their
    figures are not reported; drums' SDR and SIR depend on the drums estimate alone)."""
    def separate(mix: np.ndarray) -> dict:
        drums = drums_of(mix)
        rest = (mix - drums) / 2
        return {"drums": drums, "bass": rest, "other": rest}
    return separate


# ------------------------------------------------------------------------------------------ study


def _load_result(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def run_study(tracks: pd.DataFrame, beats: pd.DataFrame, settings: StudySettings, folder: Path,
              log: Callable[[str], None] = print, models=MODELS, transfer: bool = True) -> dict:
    """Train and evaluate every model of ``models`` (and the transfer experiment), resumable per model.

    Args:
        tracks, beats: the unified tables (:mod:`adt.data.datasets`); rendered tracks with stems
            (demo, Groove) train and evaluate, MDB tracks give the real-drums set.
        folder: where models, per-model results and the MDB mixes go.

    Returns:
        ``{"results": {name: metrics + "params", "train_s", "procedure", "model_paths"}, "best": name,
        "tables": {"table2", "table3", "models", "transfer"} (Markdown)}``.

    Raises:
        ValueError: no rendered training or validation tracks with stems.
    """
    from adt import tracking
    from adt.parallel import run_jobs

    folder = Path(folder)
    train_items, val_items = rendered_tracks(tracks, "train"), rendered_tracks(tracks, "validation")
    if not train_items or not val_items:
        raise ValueError("separation study: no rendered train/validation tracks with drums, bass and other stems")
    independent, simultaneous = procedures.stem_databases(train_items, seed=settings.seed)
    val_dbs, _ = procedures.stem_databases(val_items, seed=settings.seed + 1)
    sets = evaluation_sets(tracks, beats, settings, folder)
    log(f"separation study: {len(train_items)} training tracks, evaluation "
        + ", ".join(f"{k} {len(v)}" for k, v in sets.items()))

    # the models are independent: trained and evaluated in parallel processes of one torch thread each (a
    # U-Net step gains less than 2x from a second thread), each result kept in <name>.computed.json; then,
    # here and in order, logged to MLflow and kept as <name>.json (a crash in between logs it on the re-run)
    names = (*models, *([TRANSFER] if transfer else []))
    todo = [n for n in names if _load_result(folder / f"{n}.json") is None
            and _load_result(folder / f"{n}.computed.json") is None]
    run_jobs(_model_job, [dict(name=n, settings=settings, independent=independent, simultaneous=simultaneous,
                               val_dbs=val_dbs, sets=sets, folder=folder) for n in todo],
             1, log, names=[f"separation model {n}" for n in todo], job_log="log")
    results = {}
    for name in names:
        path, computed = folder / f"{name}.json", folder / f"{name}.computed.json"
        result = _load_result(path)
        if result is None:
            result = _load_result(computed)
            if result is None:  # left out (a pretrained model offline)
                continue
            with tracking.run("separation", name, params={"rounds": settings.rounds, "batch_size": settings.batch_size,
                                                         "train_tracks": len(train_items), "eval_s": settings.eval_s},
                              tags={"procedure": result["procedure"], "encoder": result.get("encoder", "-")}):
                import mlflow

                mlflow.log_metrics({k: v for k, v in result.items() if isinstance(v, (int, float))
                                    and not isinstance(v, bool) and math.isfinite(v)})
                mlflow.log_dict(result.get("per_track", {}), "per_track.json")
            write_json(path, result)
            computed.unlink(missing_ok=True)
        results[name] = result
    candidates = [n for n in results if n not in ("mixture", TRANSFER)
                  and math.isfinite(results[n].get("sdr.drums.val", math.nan))]
    best = max(candidates, key=lambda n: results[n]["sdr.drums.val"])
    md = tables(results)

    def log_tables() -> None:
        import mlflow

        rows = [{"model": n, **{k: v for k, v in r.items() if isinstance(v, (int, float, str)) and k != "model_paths"}}
                for n, r in results.items()]
        mlflow.log_table(pd.DataFrame(rows), "separation_study.json")
        mlflow.log_text("\n\n".join(f"## {k}\n\n{v}" for k, v in md.items()), "separation_study.md")
        mlflow.set_tags({"procedure": results[best]["procedure"], "chosen": best})
        mlflow.log_metrics({f"{k}.chosen": v for k, v in results[best].items()
                            if k.startswith(("sdr.", "sir.")) and math.isfinite(v)})

    tracking.log_once("separation", "study", str(folder.resolve()) + ":" + ",".join(sorted(results)), log_tables)
    return {"results": results, "best": best, "tables": md}


def _model_job(name: str, settings: StudySettings, independent, simultaneous, val_dbs, sets, folder: Path,
               log: Callable[[str], None] = print) -> None:
    """Train and evaluate model ``name``; its result to ``<folder>/<name>.computed.json`` (nothing when it is
    left out)."""
    result = _train_and_evaluate(name, settings, independent, simultaneous, val_dbs, sets, folder, log)
    if result is not None:
        write_json(folder / f"{name}.computed.json", result)


def _train_and_evaluate(name, settings: StudySettings, independent, simultaneous, val_dbs, sets, folder: Path, log):
    t0 = time.perf_counter()
    if name in SHARED_MODELS:
        procedure, encoder = SHARED_MODELS[name]
        trained = procedures.train_procedure(procedure, settings.config(encoder), independent, simultaneous, val_dbs,
                                             settings.train_settings(), log=lambda m: log(f"{name}: {m}"))
        paths = procedures.save(dataclasses.replace(trained, procedure=name), folder)
        models = trained.models
        separate = lambda mix: procedures.separate_with(models, mix)  # noqa: E731
        extra = {"procedure": procedure, "encoder": encoder, "params": trained.parameters(),
                 "best_round": trained.best_round, "history": trained.history}
    elif name == TRANSFER:
        return _transfer(settings, independent, val_dbs, sets, folder, log)
    elif name == "open_unmix":
        items = spread(sorted(independent["drums"].items, key=lambda it: it.mix), settings.umx_tracks)
        pairs = [(Path(it.mix), Path(it.targets["drums"])) for it in items]  # Open-Unmix holds them in memory
        model_path = folder / "open_unmix-drums.pt"
        umx.train_drums_model(pairs, model_path, steps=settings.umx_steps, seed=settings.seed,
                              log=lambda m: log(f"open_unmix: {m}"))
        separator = umx.load_separator(model_path)
        separate = drums_only(lambda mix: umx.separate_audio(separator, mix, 44100))
        paths = {"drums": str(model_path)}
        extra = {"procedure": "open_unmix", "params": sum(p.numel() for p in separator.parameters())}
    elif name in ("umxl", "umxhq"):
        separator = umx.load_pretrained(name)
        if separator is None:
            log(f"separation study: pretrained {name} unavailable (offline?): left out")
            return None
        separate = drums_only(lambda mix: umx.separate_audio(separator, mix, 44100))
        paths, extra = {}, {"procedure": "open_unmix", "params": sum(p.numel() for p in separator.parameters())}
    elif name == "mixture":
        separate = lambda mix: {s: mix for s in SOURCES}  # noqa: E731
        paths, extra = {}, {"procedure": "mixture", "params": 0}
    else:
        raise ValueError(f"unknown separation model {name!r}; expected one of {MODELS + (TRANSFER,)}")
    train_s = time.perf_counter() - t0
    log(f"{name}: evaluating")
    metrics = evaluate_separator(separate, sets)
    return {**extra, **metrics, "train_s": train_s, "model_paths": paths}


def _transfer(settings: StudySettings, independent, val_dbs, sets, folder: Path, log) -> dict:
    """Interleaved on drums and bass, then ``other`` on the frozen encoder (half the rounds)."""
    t0 = time.perf_counter()
    base = procedures.train_procedure("interleaved", settings.config(sources=("drums", "bass")),
                                      {s: independent[s] for s in ("drums", "bass")}, _all(independent),
                                      {s: val_dbs[s] for s in ("drums", "bass")}, settings.train_settings(),
                                      log=lambda m: log(f"{TRANSFER} (drums, bass): {m}"))
    model = procedures.add_source(base.models["shared"], "other", independent["other"], val_dbs["other"],
                                  settings.train_settings(max(1, settings.rounds // 2)),
                                  log=lambda m: log(f"{TRANSFER} (other added): {m}"))
    trained = procedures.Trained(TRANSFER, {"shared": model}, base.history, base.best_round, time.perf_counter() - t0)
    paths = procedures.save(trained, folder)
    metrics = evaluate_separator(lambda mix: procedures.separate_with({"shared": model}, mix), sets)
    return {"procedure": "interleaved", "encoder": "encoder", "params": trained.parameters(), **metrics,
            "train_s": trained.seconds, "model_paths": paths}


def _all(independent: dict) -> procedures.SourceDatabase:
    first = next(iter(independent.values()))
    return procedures.SourceDatabase("all", first.sources, first.items)


# ----------------------------------------------------------------------------------------- tables


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.2f}"


def tables(results: dict) -> dict[str, str]:
    """Markdown: ``table2`` (paper Table 2: procedures, SDR and SIR per source on the test renders),
    ``table3`` (encoder vs encoder+), ``models`` (drums on renders and MDB, parameters, speed, memory),
    ``transfer`` (a source added later)."""
    head = "| | " + " | ".join(f"SDR {s}" for s in SOURCES) + " | " + " | ".join(f"SIR {s}" for s in SOURCES) + " |"
    rule = "|---" * (1 + 2 * len(SOURCES)) + "|"

    def row(label, r):
        return (f"| {label} | " + " | ".join(_fmt(r.get(f"sdr.{s}.test")) for s in SOURCES) + " | "
                + " | ".join(_fmt(r.get(f"sir.{s}.test")) for s in SOURCES) + " |")

    t2 = [head.replace("| |", "| Training method |", 1), rule]
    t2 += [row(n.replace("_acc", "-acc").capitalize(), results[n]) for n in
           ("independent", "simultaneous", "interleaved", "interleaved_acc") if n in results]
    t3 = [head, rule] + [row(label, results[n]) for label, n in (("encoder", "interleaved"),
                                                                  ("encoder+", "interleaved_encoder+")) if n in results]
    models = ["| model | procedure | params (M) | SDR drums test | SIR drums test | SDR drums MDB+band | "
              "SIR drums MDB+band | SDR drums val | s per min | peak MB | train s |", "|---" * 11 + "|"]
    for n, r in results.items():
        figures = [_fmt(r.get(k)) for k in ("sdr.drums.test", "sir.drums.test", "sdr.drums.mdb", "sir.drums.mdb",
                                            "sdr.drums.val", "infer_s_per_min")]
        models.append(f"| {n} | {r.get('procedure', '')} | {r.get('params', 0) / 1e6:.2f} | " + " | ".join(figures)
                      + f" | {r.get('peak_mb', 0):.0f} | {r.get('train_s', 0):.0f} |")
    later = (("all three interleaved", "interleaved"), ("other added on the frozen encoder", TRANSFER))
    transfer = [head, rule] + [row(label, results[n]) for label, n in later if n in results]
    return {"table2": "\n".join(t2), "table3": "\n".join(t3), "models": "\n".join(models),
            "transfer": "\n".join(transfer)}
