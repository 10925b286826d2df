"""The separation study: the interleaved multitask paper's Tables 2 and 3 on our renders and on real
songs, the Open-Unmix baselines beside them, and the separator the graph uses.

Models (:data:`MODELS`; ``StudySettings.models`` picks some, the mixture always comes along): the four
procedures of :mod:`adt.separation.procedures` with the paper's encoder, ``interleaved`` with encoder+,
the soft-mask variants, an Open-Unmix drums model trained on the same data (:mod:`adt.separation.umx`),
the pretrained ``umxl`` and ``umxhq`` when they load, the separator shipped with the package
(``shipped``, :func:`adt.separation.separator.shipped`, scored as ``adt separate`` runs it) and the
mixture itself as every estimate (the floor). Plus, with ``StudySettings.transfer``, the transferable
encoder (paper Sec. 4.4): a model trained interleaved on drums and bass, then given an ``other``
decoder on its frozen encoder (:func:`procedures.add_source`). Every shared-encoder model is scored as
the paper sets it (no post-processing: each decoder's magnitude with the mixture's phase) and again
with ratio masks over its decoders (the row ``<name>+ratio``, a variant: the estimates then sum to the
mixture).

Starting from the shipped weights (``StudySettings.start_from_shipped``, the ``demo`` profile: minutes
instead of hours): the shared-encoder models with the shipped separator's architecture (the soft-mask
ones with the paper's encoder: ``interleaved_mask`` as shipped, ``simultaneous_mask``, and each network
of ``independent_mask`` from the shipped encoder and its source's decoder) are fine-tuned from its
weights by their procedure (``"start": "shipped"`` in their results); the others train from scratch.
The shipped separator heard every real song (its model card), so the models that start from it have
too: their results say ``"heard_real_songs": true``, and their ``real_val`` and ``real`` figures are
development figures, not held-out ones (marked in the tables).

Data (:func:`procedures.stem_databases`): the rendered training and validation songs pooled, each
source database with its own random split; the real MDB songs of the training folds
(:mod:`adt.separation.real_songs`, ``StudySettings.real_test_fold``) as extra training items of every
database, the fold's real validation songs in every validation database.

Evaluation (:mod:`adt.separation.bsseval`, BSSEval v4, 1-s windows, median over a song's windows;
over songs the **mean of the per-song medians** as the paper, Sec. 4.1, key ``sdr.<source>.<set>``,
and their median beside it, ``sdr_median.<source>.<set>``):

* ``test``: rendered test tracks (kit-disjoint splits: kits no model trained on), first ``eval_s`` s;
* ``mdb``: MDB Drums' real drum recordings mixed with a held-out rendered band
  (:func:`adt.data.accompaniment.band_parts`): drums against the real recording, the band as the
  interference;
* ``val``: rendered songs of the drums database's validation split;
* ``real_val``, ``real``: the fold's real validation and test songs, whole: the real full mix (the sum
  of the real stems) against the real drums, bass and other.

The chosen separator (:func:`choose`): among the models as ``adt separate`` runs them (ratio masks for the
shared encoders, so the stems sum to the mixture), the best ``real_val`` drums SDR (``val`` without real
songs) of those that never heard the real validation songs, then the best ``val`` drums SDR of that one
and the models that heard them (the shipped separator and the models started from it compete on the
rendered validation songs, which none of them trained the drums on): the choice is never worse on
``val`` than the shipped separator.

Every model is trained and evaluated once: its weights and figures sit in ``<folder>/<name>*.pt`` and
``<folder>/<name>.json``, so a re-run after a crash resumes with the next model. Each model is one
MLflow run in ``adt/separation`` tagged ``procedure`` with metrics ``sdr.<source>.<set>`` and
``sir.<source>.<set>``, ``params``, ``infer_s_per_min``, ``peak_mb``, ``train_s``, ``converged``; a
``study`` run holds the tables (``separation_study.json``, ``separation_study.md``) and the chosen
model's figures. :func:`cross_validate` runs the study once per real-song fold and pools the real
songs, each scored by the models that never heard it.
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
from adt.separation import bsseval, procedures, real_songs, umx
from adt.separation.unet import SOURCES, UNetConfig

#: name -> (procedure, encoder variant, decoder output); Open-Unmix and the floor are handled apart. The paper's
#: rows regress ReLU magnitudes; ``*_mask`` (a variant, extra rows) learns sigmoid soft masks on the mixture.
SHARED_MODELS = {
    "independent": ("independent", "encoder", "magnitude"),
    "simultaneous": ("simultaneous", "encoder", "magnitude"),
    "interleaved": ("interleaved", "encoder", "magnitude"),
    "interleaved_acc": ("interleaved_acc", "encoder", "magnitude"),
    "interleaved_encoder+": ("interleaved", "encoder+", "magnitude"),
    "independent_mask": ("independent", "encoder", "mask"),
    "simultaneous_mask": ("simultaneous", "encoder", "mask"),
    "interleaved_mask": ("interleaved", "encoder", "mask"),
}
#: the separator shipped with the package as a row of the study
SHIPPED = "shipped"
MODELS = (*SHARED_MODELS, "open_unmix", "umxl", "umxhq", SHIPPED, "mixture")
TRANSFER = "interleaved_other_later"
#: suffix of a shared-encoder model scored with ratio masks over its decoders
RATIO = "+ratio"


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """Sizes of the study (:meth:`from_profile`): ``rounds`` per shared-encoder model (see
    :mod:`adt.separation.procedures`), ``umx_steps`` for Open-Unmix on ``umx_tracks`` training tracks (it
    holds them in memory), ``eval_tracks`` test renders,
    ``val_tracks`` validation renders, ``mdb_tracks`` MDB recordings (None: all; 0: none), ``eval_s`` seconds
    of each evaluated render (real songs: whole), ``patience`` validations without improvement before a model
    stops (None: never; paper: 30 epochs), ``real_test_fold``: the real-song fold tested (None: every real song
    trains), ``real_eval_s``: seconds of each real song evaluated (None: whole; the graph's profiles:
    ``eval_s``); ``models``: the models of :data:`MODELS` run (None: every one; the mixture always),
    ``transfer``: the transfer experiment too, ``start_from_shipped``: the models with the shipped
    separator's architecture start from its weights (module docstring), trained then at ``fine_tune_lr`` (the
    paper's 2e-4: at our 1e-3 from scratch, the demo's fine-tuning made every validation loss worse, 0.285 ->
    0.327 in 24 rounds; at 2e-4 better, 0.285 -> 0.261)."""

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
    patience: int | None = 6
    real_test_fold: int | None = 0
    real_eval_s: float | None = None
    models: tuple | None = None
    transfer: bool = True
    start_from_shipped: bool = False
    fine_tune_lr: float = 2e-4
    seed: int = 1234

    @classmethod
    def from_profile(cls, profile) -> "StudySettings":
        """The profile's sizes (``Profile.separation_*``); the transfer experiment only with every model
        (``separation_models`` None); ``start_from_shipped`` as the profile's."""
        models = None if profile.separation_models is None else tuple(profile.separation_models)
        return cls(rounds=profile.separation_rounds, batch_size=profile.separation_batch,
                   umx_steps=profile.separation_steps, eval_tracks=profile.separation_eval_tracks,
                   val_tracks=max(2, profile.separation_eval_tracks // 2), mdb_tracks=profile.separation_mdb_tracks,
                   eval_s=profile.separation_eval_s, real_eval_s=profile.separation_eval_s, models=models,
                   transfer=models is None, start_from_shipped=profile.start_from_shipped, seed=profile.seed)

    def model_names(self) -> tuple:
        """The models run (``models``, every one of :data:`MODELS` when None), the mixture last when not named.

        Raises:
            ValueError: an unknown model name.
        """
        names = MODELS if self.models is None else tuple(self.models)
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            raise ValueError(f"unknown separation models {unknown}; expected some of {list(MODELS)}")
        return names if "mixture" in names else (*names, "mixture")

    def train_settings(self, rounds: int | None = None, fine_tune: bool = False) -> procedures.TrainSettings:
        """Validation every quarter of the rounds, every 10 at most (a short fine-tuning validates 5 times);
        ``fine_tune``: at ``fine_tune_lr``."""
        rounds = rounds or self.rounds
        lr = {"lr": self.fine_tune_lr} if fine_tune else {}
        return procedures.TrainSettings(rounds=rounds, batch_size=self.batch_size,
                                        val_every=max(1, min(10, rounds // 4)), patience=self.patience,
                                        seed=self.seed, **lr)

    def config(self, encoder: str = "encoder", sources=SOURCES, output: str = "magnitude") -> UNetConfig:
        return UNetConfig(sources=tuple(sources), encoder_plus=encoder == "encoder+", freq_pool=self.freq_pool,
                          patch_frames=self.patch_frames, output=output)


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
                    names=("val", "test", "mdb"), val_items: list[dict] | None = None,
                    real: dict[str, list[dict]] | None = None) -> dict[str, list[dict]]:
    """The study's evaluation sets (module docstring) that have tracks: ``val`` (``val_items``, default the
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


# ------------------------------------------------------------------------------------- evaluation


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
#: worker process evaluates score the same tracks; :func:`run_study` empties it when done
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


# ------------------------------------------------------------------------------------------ study


def _load_result(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def run_study(tracks: pd.DataFrame, beats: pd.DataFrame, settings: StudySettings, folder: Path,
              log: Callable[[str], None] = print, models=None, transfer: bool | None = None,
              songs: list[dict] | None = None) -> dict:
    """Train and evaluate every model of ``models`` (and the transfer experiment), resumable per model.

    Args:
        tracks, beats: the unified tables (:mod:`adt.data.datasets`); rendered tracks with stems
            (demo, Groove) train and evaluate, MDB tracks give the real-drums set.
        folder: where models, per-model results and the MDB mixes go.
        models, transfer: the models (the mixture always comes along) and whether the transfer experiment
            runs; None: ``settings``' (:meth:`StudySettings.model_names`, ``transfer``).
        songs: real songs with stems (:func:`adt.separation.real_songs.real_stem_songs`), split by
            ``settings.real_test_fold`` (:func:`adt.separation.real_songs.fold_songs`); None: renders only.

    Returns:
        ``{"run_id": the MLflow run of the study, "results": {name: metrics + "params", "train_s", "procedure",
        "model_paths", "ratio_masks", "start" ("shipped" or "scratch"), "heard_real_songs"}, "best": name, "choice": how it was chosen (:func:`choice`),
        "started_from_shipped": [names], "heard_real_songs": [names], "tables": {"table2", "table3", "real",
        "models", "transfer"} (Markdown), "songs": {"train", "val", "test": names}}``.

    Raises:
        ValueError: no rendered training or validation tracks with stems; an unknown model name.
    """
    from adt import tracking
    from adt.parallel import run_jobs

    started, folder = time.time(), Path(folder)  # the study's MLflow run spans its trainings
    models = (settings if models is None else dataclasses.replace(settings, models=tuple(models))).model_names()
    transfer = settings.transfer if transfer is None else transfer
    train_items, val_items = rendered_tracks(tracks, "train"), rendered_tracks(tracks, "validation")
    if not train_items or not val_items:
        raise ValueError("separation study: no rendered train/validation tracks with drums, bass and other stems")
    real = real_songs.fold_songs(songs, settings.real_test_fold) if songs else {"train": [], "val": [], "test": []}
    pool = train_items + val_items
    dbs = procedures.stem_databases(pool, seed=settings.seed, val_fraction=len(val_items) / len(pool),
                                    train_extra=real["train"], val_extra=real["val"])
    drums_val = {it.stems["drums"] for it in dbs.val["drums"].items}
    render_val = [t for t in pool if t["drums"] in drums_val]  # the renders the drums database validates on
    sets = evaluation_sets(tracks, beats, settings, folder, names=("val", "test", "mdb", "real_val", "real"),
                           val_items=render_val, real=real)
    log(f"separation study: models {', '.join(models)}{' and the transfer experiment' if transfer else ''}"
        f"{' (the shipped architecture from the shipped weights)' if settings.start_from_shipped else ''}; "
        f"{len(pool)} rendered songs ({len(dbs.train['drums'])} train the drums), real songs "
        + ", ".join(f"{k} {len(v)}" for k, v in real.items()) + "; evaluation "
        + ", ".join(f"{k} {len(v)}" for k, v in sets.items()))

    # the models are independent: trained and evaluated in parallel processes of one torch thread each (a
    # U-Net step gains less than 2x from a second thread), each result kept in <name>.computed.json; then,
    # here and in order, logged to MLflow and kept as <name>.json (a crash in between logs it on the re-run)
    names = (*models, *([TRANSFER] if transfer else []))
    todo = [n for n in names if _load_result(folder / f"{n}.json") is None
            and _load_result(folder / f"{n}.computed.json") is None]
    try:
        run_jobs(_model_job, [dict(name=n, settings=settings, dbs=dbs, train_songs=pool + real["train"], sets=sets,
                                   folder=folder) for n in todo],
                 1, log, names=[f"separation model {n}" for n in todo], job_log="log")
    finally:
        _PREPARED.clear()  # jobs run here (one process): the prepared references go
    results = {}
    for name in [v for n in names for v in (n, n + RATIO)]:
        path, computed = folder / f"{name}.json", folder / f"{name}.computed.json"
        result = _load_result(path)
        if result is None:
            result = _load_result(computed)
            if result is None:  # left out (a pretrained model offline; no ratio variant)
                continue
            began = result.pop("started_at", None)
            with tracking.run("separation", name, started=began,
                              params={"rounds": settings.rounds, "batch_size": settings.batch_size,
                                      "patience": settings.patience, "real_test_fold": settings.real_test_fold,
                                      "train_tracks": len(pool), "eval_s": settings.eval_s},
                              tags={"procedure": result["procedure"], "encoder": result.get("encoder", "-"),
                                    "ratio_masks": str(result.get("ratio_masks", False))}):
                import mlflow

                mlflow.log_metrics({k: float(v) for k, v in result.items() if isinstance(v, (int, float))
                                    and math.isfinite(v)})
                mlflow.log_dict(result.get("per_track", {}), "per_track.json")
            write_json(path, result)
            computed.unlink(missing_ok=True)
        results[name] = result
    best = choose(results)
    md = tables(results)
    flagged = {flag: [n for n, r in results.items() if test(r)] for flag, test in
               (("started_from_shipped", lambda r: r.get("start") == "shipped"),
                ("heard_real_songs", lambda r: bool(r.get("heard_real_songs"))))}

    def log_tables() -> None:
        import mlflow

        rows = [{"model": n, **{k: v for k, v in r.items() if isinstance(v, (int, float, str)) and k != "model_paths"}}
                for n, r in results.items()]
        mlflow.log_table(pd.DataFrame(rows), "separation_study.json")
        mlflow.log_text("\n\n".join(f"## {k}\n\n{v}" for k, v in md.items()), "separation_study.md")
        mlflow.set_tags({"procedure": results[best]["procedure"], "chosen": best, "choice": choice(results),
                         "started_from_shipped": ", ".join(flagged["started_from_shipped"]) or "none"})
        mlflow.log_metrics({f"{k}.chosen": v for k, v in results[best].items()
                            if k.startswith(("sdr.", "sir.")) and math.isfinite(v)})

    run_id = tracking.log_once("separation", "study", str(folder.resolve()) + ":" + ",".join(sorted(results)),
                               log_tables, started=started)
    return {"run_id": run_id, "results": results, "best": best, "choice": choice(results), **flagged, "tables": md,
            "songs": {k: [s["name"] for s in v] for k, v in real.items()}}


def deployed(results: dict) -> list[str]:
    """The models as ``adt separate`` runs them: shared encoders with ratio masks (``<name>+ratio``), the
    shipped separator, the Open-Unmix ones; not the mixture nor the transfer experiment."""
    return [n for n, r in results.items() if not n.startswith(("mixture", TRANSFER))
            and (r.get("ratio_masks") or r.get("procedure") == "open_unmix")]


def degenerate(result: dict, split: str) -> list[str]:
    """The sources whose estimate is silent on some song of ``split`` (a decoder that outputs nothing)."""
    return [s for s in SOURCES if result.get(f"silent.{s}.{split}", 0.0) > 0]


def _best(results: dict, names: list[str], splits=("real_val", "val")) -> tuple[str, str] | None:
    """``(name, split)``: the best drums SDR of ``names`` on the first of ``splits`` where one of them has a
    finite figure and every source sounding (not :func:`degenerate`), or None."""
    for split in splits:
        key = f"sdr.drums.{split}"
        scored = [n for n in names
                  if math.isfinite(results[n].get(key, math.nan)) and not degenerate(results[n], split)]
        if scored:
            return max(scored, key=lambda n: results[n][key]), split
    return None


def _choice(results: dict) -> tuple[str, str]:
    held_out = [n for n in deployed(results) if not results[n].get("heard_real_songs")]
    heard = [n for n in deployed(results) if results[n].get("heard_real_songs")]
    finalist = _best(results, held_out)
    if not heard:
        if finalist is None:
            raise ValueError("separation study: no model with a validation drums SDR and every source sounding")
        return finalist[0], f"the best {finalist[1]} drums SDR"
    candidates = ([finalist[0]] if finalist else []) + heard
    final = _best(results, candidates, splits=("val",))
    if final is None:
        raise ValueError("separation study: no model with a validation drums SDR and every source sounding")
    before = (f"the best {finalist[1]} drums SDR of the models that never heard the real songs, then "
              if finalist else "")
    return final[0], (f"{before}the best val drums SDR among {', '.join(candidates)} ({', '.join(heard)} heard the "
                      "real songs: compared on val, never on real_val)")


def choose(results: dict) -> str:
    """The chosen separator among :func:`deployed` models that are not :func:`degenerate` on the set they are
    compared on.

    The rule: ``real_val`` (the fold's real validation songs) is a fair validation set only for models that
    never heard those songs; the shipped separator (trained on all 9 real songs, its model card) and the models
    fine-tuned from it (``"heard_real_songs": true``) would win there on memory. So (1) the models that never
    heard them compete on ``real_val`` drums SDR (on ``val`` when no model was scored on real songs), as
    before; (2) that finalist and every model that heard the real songs compete on ``val`` drums SDR: the
    rendered validation songs of the drums database, whose drums none of them trained on (the shipped
    separator was trained on the demo profile's renders with the same seeded per-source splits; the study's
    models hear the other sources of those songs through their own databases, as the paper's do). Hence the
    choice is never worse on ``val`` than the shipped separator when the shipped row is in the study. Caveat:
    on another corpus (the standard and full profiles) some ``val`` songs may be performances the shipped
    separator trained on, rendered on other kits, which favours it there.

    Raises:
        ValueError: no model has a finite validation drums SDR and every source sounding.
    """
    return _choice(results)[0]


def choice(results: dict) -> str:
    """How :func:`choose` chose, in words (for the manifest and the asset's metadata)."""
    return _choice(results)[1]


def _model_job(name: str, settings: StudySettings, dbs, train_songs, sets, folder: Path,
               log: Callable[[str], None] = print) -> None:
    """Train and evaluate model ``name``; its result(s) to ``<folder>/<name>.computed.json`` (and
    ``<name>+ratio.computed.json`` for a shared encoder; nothing when it is left out), with ``started_at`` (when
    the job began, ``time.time()``: the model's MLflow run spans its training and evaluation)."""
    started = time.time()
    for key, result in (_train_and_evaluate(name, settings, dbs, train_songs, sets, folder, log) or {}).items():
        write_json(folder / f"{key}.computed.json", {**result, "started_at": started})


def _scored_both_ways(name: str, models: dict, sets, extra: dict, train_s: float, paths: dict, log) -> dict:
    """``{name: the paper's estimates' figures, name + RATIO: with ratio masks}``, from one network pass per track."""
    log(f"{name}: evaluating (the paper's estimates and with ratio masks)")
    metrics = evaluate_variants(lambda mix: procedures.separate_variants(models, mix), sets)
    return {name + (RATIO if ratio else ""): {**extra, **metrics[ratio], "train_s": train_s, "model_paths": paths,
                                              "ratio_masks": ratio} for ratio in (False, True)}


def shipped_start(settings: StudySettings, config: UNetConfig):
    """The shipped separator's network when ``settings.start_from_shipped`` and a model of ``config`` can start
    from it (:func:`procedures.compatible`), else None.

    Raises:
        FileNotFoundError, ValueError: the shipped separator is missing or unreadable (names it).
    """
    from adt.separation import separator

    if not settings.start_from_shipped:
        return None
    network = separator.shipped_network()
    return network if procedures.compatible(config, network) else None


def _train_shared(name: str, settings: StudySettings, dbs, sets, folder: Path, log) -> dict:
    t0 = time.perf_counter()
    procedure, encoder, output = SHARED_MODELS[name]
    config = settings.config(encoder, output=output)
    start = shipped_start(settings, config)
    if start is not None:
        log(f"{name}: fine-tuning from the shipped separator's weights (lr {settings.fine_tune_lr:g})")
    trained = procedures.train_procedure(procedure, config, dbs, settings.train_settings(fine_tune=start is not None),
                                         log=lambda m: log(f"{name}: {m}"), start=start)
    paths = procedures.save(dataclasses.replace(trained, procedure=name), folder)
    extra = {"procedure": procedure, "encoder": encoder, "output": output, "params": trained.parameters(),
             "best_round": trained.best_round, "converged": trained.converged, "history": trained.history,
             "start": "scratch" if start is None else "shipped", "heard_real_songs": start is not None}
    return _scored_both_ways(name, trained.models, sets, extra, time.perf_counter() - t0, paths, log)


def _shipped_row(sets, log) -> dict:
    """The shipped separator as ``adt separate`` runs it (ratio masks over its decoders)."""
    from adt.separation import separator

    sep = separator.shipped()
    network = separator.shipped_network()
    log(f"{SHIPPED}: evaluating {sep.description}")
    metrics = evaluate_separator(lambda mix: sep.separate(mix, separator.SAMPLE_RATE), sets)
    return {SHIPPED: {"procedure": SHIPPED, "encoder": "encoder", "output": network.config.output,
                      "params": sum(p.numel() for p in network.parameters()), **metrics, "train_s": 0.0,
                      "model_paths": {"shared": str(separator.shipped_path())}, "ratio_masks": True,
                      "start": "shipped", "heard_real_songs": True}}


def _train_and_evaluate(name, settings: StudySettings, dbs, train_songs, sets, folder: Path, log) -> dict | None:
    t0 = time.perf_counter()
    if name in SHARED_MODELS:
        return _train_shared(name, settings, dbs, sets, folder, log)
    if name == TRANSFER:
        return _transfer(settings, dbs, sets, folder, log)
    if name == SHIPPED:
        return _shipped_row(sets, log)
    if name == "open_unmix":
        songs = spread(sorted(train_songs, key=lambda t: t["drums"]), settings.umx_tracks)
        mixes = [_song_mix(t, folder / "umx_mixes") for t in songs]
        pairs = [(m, Path(t["drums"])) for m, t in zip(mixes, songs)]  # Open-Unmix holds them in memory
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
    return {name: {**extra, **metrics, "train_s": train_s, "model_paths": paths}}


def _song_mix(song: dict, folder: Path) -> Path:
    """A song's mixture wav: its own ``mix`` when it has one, else its stems summed into ``folder``."""
    if song.get("mix"):
        return Path(song["mix"])
    path = Path(folder) / f"{Path(song['drums']).parent.name}.wav"
    if not path.is_file():
        mix = procedures.mixture_of(procedures.Item({s: song[s] for s in SOURCES if song.get(s)}, ()))
        write_audio(path, mix, 44100)
    return path


def _transfer(settings: StudySettings, dbs, sets, folder: Path, log) -> dict:
    """Interleaved on drums and bass, then ``other`` on the frozen encoder (half the rounds)."""
    t0 = time.perf_counter()
    two = ("drums", "bass")
    sub = dataclasses.replace(dbs, train={s: dbs.train[s] for s in two}, val={s: dbs.val[s] for s in two})
    base = procedures.train_procedure("interleaved", settings.config(sources=two), sub, settings.train_settings(),
                                      log=lambda m: log(f"{TRANSFER} (drums, bass): {m}"))
    model = procedures.add_source(base.models["shared"], "other", dbs.train["other"], dbs.val["other"],
                                  settings.train_settings(max(1, settings.rounds // 2)),
                                  log=lambda m: log(f"{TRANSFER} (other added): {m}"))
    trained = procedures.Trained(TRANSFER, {"shared": model}, base.history, base.best_round, time.perf_counter() - t0)
    paths = procedures.save(trained, folder)
    extra = {"procedure": "interleaved", "encoder": "encoder", "params": trained.parameters()}
    return _scored_both_ways(TRANSFER, {"shared": model}, sets, extra, trained.seconds, paths, log)


# ----------------------------------------------------------------------------------------- tables


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.2f}"


def _paper_rows(results: dict, names) -> list[tuple[str, str]]:
    """(label, result name) for the paper's rows then their ratio-mask variants; models started from the shipped
    weights say so."""
    def label_of(label: str, n: str) -> str:
        return label + (" (fine-tuned from shipped)" if results[n].get("start") == "shipped" else "")

    rows = [(label_of(label, n), n) for label, n in names if n in results]
    return rows + [(label_of(f"{label} + ratio masks", n + RATIO), n + RATIO) for label, n in names
                   if n + RATIO in results]


TABLE2 = (("Independent", "independent"), ("Simultaneous", "simultaneous"), ("Interleaved", "interleaved"),
          ("Interleaved-acc", "interleaved_acc"), ("Independent, soft masks", "independent_mask"),
          ("Simultaneous, soft masks", "simultaneous_mask"), ("Interleaved, soft masks", "interleaved_mask"))
TABLE3 = (("encoder", "interleaved"), ("encoder+", "interleaved_encoder+"))
#: the footnote of the figures of models that heard the real songs (``"heard_real_songs": true``)
HEARD = "heard every real song in training"
HEARD_NOTE = (f"† {HEARD} (the shipped separator was trained on all 9 MDB songs; the models fine-tuned from it "
              "inherit them): its real_val and real figures are development figures, not held-out ones.")


def _heard(results: dict, n: str) -> str:
    return " †" if results[n].get("heard_real_songs") else ""


def source_table(results: dict, rows, split: str, median: bool = False) -> str:
    """Markdown: SDR and SIR per source (dB) on ``split`` for ``rows`` [(label, result name)]; the mean of the
    per-song medians (paper), or with ``median`` both that and the median over songs; "(silent)" marks a source
    whose estimate is silent on some song (degenerate, :func:`degenerate`)."""
    cols = [("sdr", s) for s in SOURCES] + [("sir", s) for s in SOURCES]
    head = "| | " + " | ".join(f"{m.upper()} {s}" for m, s in cols) + " |"
    if median:
        head = "| | " + " | ".join(f"{m.upper()} {s} mean / median" for m, s in cols) + " |"
    lines = [head, "|---" * (1 + len(cols)) + "|"]
    for label, n in rows:
        r = results[n]
        cells = [_fmt(r.get(f"{m}.{s}.{split}")) + (f" / {_fmt(r.get(f'{m}_median.{s}.{split}'))}" if median else "")
                 + (" (silent)" if r.get(f"silent.{s}.{split}", 0.0) > 0 else "") for m, s in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(results: dict) -> dict[str, str]:
    """Markdown: ``table2`` (paper Table 2: procedures, SDR and SIR per source on the test renders, mean of the
    per-song medians; the ratio-mask variants below, then the shipped separator; models fine-tuned from it say
    so), ``table3`` (encoder vs encoder+), ``real`` (every model on the real test songs: mean / median),
    ``models`` (drums on every set, start, parameters, speed, memory, training), ``transfer`` (a source added
    later). "†" marks the real-song figures of models that heard the real songs (:data:`HEARD_NOTE` below the
    table)."""
    shipped = [("Shipped separator (interleaved, soft masks + ratio masks)", SHIPPED)] if SHIPPED in results else []
    t2 = source_table(results, _paper_rows(results, TABLE2) + shipped, "test")
    t2 = t2.replace("| |", "| Training method |", 1)
    t3 = source_table(results, _paper_rows(results, TABLE3), "test")
    note = "\n\n" + HEARD_NOTE if any(r.get("heard_real_songs") for r in results.values()) else ""
    real = source_table(results, [(n + _heard(results, n), n) for n in results], "real", median=True) + note
    sets = ("test", "mdb", "val", "real_val", "real")
    models = ["| model | procedure | start | params (M) | " + " | ".join(f"SDR drums {k}" for k in sets)
              + " | SIR drums real | s per min | peak MB | train s | best round | converged |",
              "|---" * (10 + len(sets)) + "|"]
    for n, r in results.items():
        figures = [_fmt(r.get(f"sdr.drums.{k}")) + (_heard(results, n) if k.startswith("real") else "") for k in sets]
        figures += [_fmt(r.get("sir.drums.real")) + _heard(results, n), _fmt(r.get("infer_s_per_min"))]
        models.append(f"| {n} | {r.get('procedure', '')} | {r.get('start', 'scratch')} | "
                      + f"{r.get('params', 0) / 1e6:.2f} | " + " | ".join(figures)
                      + f" | {r.get('peak_mb', 0):.0f} | {r.get('train_s', 0):.0f} | "
                      + f"{r.get('best_round', '-')} | {r.get('converged', '-')} |")
    later = (("all three interleaved", "interleaved"), ("other added on the frozen encoder", TRANSFER))
    transfer = source_table(results, [(label, n) for label, n in later if n in results], "test")
    return {"table2": t2, "table3": t3, "real": real, "models": "\n".join(models) + note, "transfer": transfer}


# ------------------------------------------------------------------------------------ cross-validation


def pool_folds(studies: list[dict]) -> dict:
    """Real-song figures pooled over the folds' studies (:func:`run_study` outputs, one per fold): each
    song scored by the models of the fold that tested it.

    Returns:
        ``{"results": {name: {"sdr.<source>.real": mean of per-song medians, "sdr_median...", "sir...",
        "songs", "heard_real_songs": in some fold} for names every fold has, and "chosen": each fold's chosen
        separator on its songs},
        "per_song": {name: [{track_id, source: {sdr, sir}}]}, "chosen": [each fold's choice]}``.
    """
    names = set.intersection(*(set(st["results"]) for st in studies)) if studies else set()
    per_song = {n: [row for st in studies for row in st["results"][n]["per_track"].get("real", [])]
                for n in sorted(names)}
    per_song["chosen"] = [row for st in studies for row in st["results"][st["best"]]["per_track"].get("real", [])]
    heard = {n: any(st["results"][n].get("heard_real_songs") for st in studies) for n in names}
    heard["chosen"] = any(st["results"][st["best"]].get("heard_real_songs") for st in studies)
    results = {}
    for n, rows in per_song.items():
        if not rows:
            continue
        summary = bsseval.summarize([{k: v for k, v in r.items() if k != "track_id"} for r in rows])
        results[n] = {"songs": len(rows), "heard_real_songs": heard[n]}
        for source, m in summary.items():
            results[n].update({f"sdr.{source}.real": m["sdr_mean"], f"sdr_median.{source}.real": m["sdr"],
                               f"sir.{source}.real": m["sir_mean"], f"sir_median.{source}.real": m["sir"],
                               f"silent.{source}.real": m["silent"]})
    return {"results": results, "per_song": per_song, "chosen": [st["best"] for st in studies]}


def cross_validate(tracks: pd.DataFrame, beats: pd.DataFrame, songs: list[dict], settings: StudySettings,
                   folder: Path, log: Callable[[str], None] = print, models=MODELS, transfer: bool = False,
                   folds=(0, 1, 2)) -> dict:
    """:func:`run_study` once per real-song fold (``<folder>/fold<k>``, resumable) and the real songs pooled
    (:func:`pool_folds`).

    Returns:
        ``{"folds": [run_study outputs], "pooled": pool_folds output, "tables": {"real": the cross-validated
        real-song table (mean / median), "table2", "table3": the renders' test figures averaged over folds}}``.
    """
    studies = [run_study(tracks, beats, dataclasses.replace(settings, real_test_fold=k), Path(folder) / f"fold{k}",
                         log=lambda m, k=k: log(f"fold {k}: {m}"), models=models, transfer=transfer, songs=songs)
               for k in folds]
    pooled = pool_folds(studies)
    order = [n for n in studies[0]["results"] if n in pooled["results"]] + ["chosen"]
    pooled_results = pooled["results"]
    real = source_table(pooled_results, [(n + _heard(pooled_results, n), n) for n in order if n in pooled_results],
                        "real", median=True)
    real += "\n\n" + HEARD_NOTE if any(r.get("heard_real_songs") for r in pooled_results.values()) else ""
    common = set.intersection(*(set(st["results"]) for st in studies))
    renders = {n: {k: float(np.nanmean([st["results"][n].get(k, math.nan) for st in studies]))
                   for k in studies[0]["results"][n] if k.startswith(("sdr.", "sir."))} for n in common}
    return {"folds": studies, "pooled": pooled,
            "tables": {"real": real, "table2": source_table(renders, _paper_rows(renders, TABLE2), "test"),
                       "table3": source_table(renders, _paper_rows(renders, TABLE3), "test")}}
