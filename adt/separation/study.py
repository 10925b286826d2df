"""The separation study: the interleaved multitask paper's Tables 2 and 3 on our renders and on real
songs, the Open-Unmix baselines beside them, and the separator the graph uses.

Models (:data:`MODELS`; ``StudySettings.models`` picks some, the mixture always comes along): the four
procedures of :mod:`adt.separation.procedures` with the paper's encoder, ``interleaved`` with encoder+,
the soft-mask variants, an Open-Unmix drums model trained on the same data (:mod:`adt.separation.umx`),
the pretrained ``umxl`` and ``umxhq`` when they load, the separator shipped with the package
(``shipped``, :func:`adt.separation.separator.shipped`, scored as ``adt separate`` runs it) and the
mixture itself as every estimate (the floor). Plus, with ``StudySettings.transfer``, the transferable
encoder (paper Sec. 4.4): a model trained interleaved on drums and bass, then given an ``other``
decoder on its frozen encoder (:func:`adt.separation.procedures.add_source`). Every shared-encoder
model is scored as the paper sets it (no post-processing: each decoder's magnitude with the mixture's
phase) and again with ratio masks over its decoders (the row ``<name>+ratio``, a variant: the estimates
then sum to the mixture).

Starting from the shipped weights (``StudySettings.start_from_shipped``, the ``demo`` profile: minutes
instead of hours): the shared-encoder models with the shipped separator's architecture (the soft-mask
ones with the paper's encoder: ``interleaved_mask`` as shipped, ``simultaneous_mask``, and each network
of ``independent_mask`` from the shipped encoder and its source's decoder) are fine-tuned from its
weights by their procedure (``"start": "shipped"`` in their results); the others train from scratch.
The shipped separator heard every real song (its model card), so the models that start from it have
too: their results say ``"heard_real_songs": true``, and their ``real_val`` and ``real`` figures are
development figures, not held-out ones (marked in the tables).

Data (:func:`adt.separation.stem_data.stem_databases`): the rendered training and validation songs
pooled, each source database with its own random split; the real MDB songs of the training folds
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

Here: the run (:func:`run_study`) and the cross-validation; the models and sizes are in
:mod:`~adt.separation.study_settings`, the evaluation in :mod:`~adt.separation.study_eval`, one model's
training in :mod:`~adt.separation.study_models`, the choice in :mod:`~adt.separation.study_choice`, the
tables in :mod:`~adt.separation.study_tables`.
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

from adt import tracking
from adt.atomic import write_json
from adt.parallel import run_jobs
from adt.separation import bsseval, real_songs, stem_data
# re-exported: pipelines/checks.py imports the asset check from here; real_songs.py and the benchmarks document
# and use adt.separation.study.evaluate_separator and drums_only
from adt.separation.study_choice import beats_the_mixture, choice, choose, degenerate  # noqa: F401
from adt.separation.study_eval import drums_only, evaluate_separator  # noqa: F401
from adt.separation.study_eval import evaluation_sets, forget_prepared, rendered_tracks
from adt.separation.study_models import model_job
from adt.separation.study_settings import MODELS, RATIO, TRANSFER, StudySettings
from adt.separation.study_tables import HEARD_NOTE, TABLE2, TABLE3, heard_mark, paper_rows, source_table, tables

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
    started, folder = time.time(), Path(folder)  # the study's MLflow run spans its trainings
    models = (settings if models is None else dataclasses.replace(settings, models=tuple(models))).model_names()
    transfer = settings.transfer if transfer is None else transfer
    train_items, val_items = rendered_tracks(tracks, "train"), rendered_tracks(tracks, "validation")
    if not train_items or not val_items:
        raise ValueError("separation study: no rendered train/validation tracks with drums, bass and other stems")
    real = real_songs.fold_songs(songs, settings.real_test_fold) if songs else {"train": [], "val": [], "test": []}
    pool = train_items + val_items
    dbs = stem_data.stem_databases(pool, seed=settings.seed, val_fraction=len(val_items) / len(pool),
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
        run_jobs(model_job, [dict(name=n, settings=settings, dbs=dbs, train_songs=pool + real["train"], sets=sets,
                                  folder=folder) for n in todo],
                 1, log, names=[f"separation model {n}" for n in todo], job_log="log")
    finally:
        forget_prepared()  # jobs run here (one process): the prepared references go
    results = _logged_results(names, settings, folder, len(pool))
    return _study_summary(results, real, folder, started)


def _logged_results(names, settings: StudySettings, folder: Path, n_train: int) -> dict:
    """Every model's result (and its ``+ratio`` variant), by name: ``<name>.json``, or a computed one
    (``<name>.computed.json``) logged to MLflow first and then kept as ``<name>.json``; models left out
    (a pretrained model offline; no ratio variant) are absent."""
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
                                      "train_tracks": n_train, "eval_s": settings.eval_s},
                              tags={"procedure": result["procedure"], "encoder": result.get("encoder", "-"),
                                    "ratio_masks": str(result.get("ratio_masks", False))}):
                # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines
                import mlflow

                mlflow.log_metrics({k: float(v) for k, v in result.items() if isinstance(v, (int, float))
                                    and math.isfinite(v)})
                mlflow.log_dict(result.get("per_track", {}), "per_track.json")
            write_json(path, result)
            computed.unlink(missing_ok=True)
        results[name] = result
    return results


def _study_summary(results: dict, real: dict[str, list[dict]], folder: Path, started: float) -> dict:
    """:func:`run_study`'s output: the choice, the tables and the flagged models, with the study's MLflow run
    (logged once per folder and set of results)."""
    best = choose(results)
    md = tables(results)
    flagged = {flag: [n for n, r in results.items() if test(r)] for flag, test in
               (("started_from_shipped", lambda r: r.get("start") == "shipped"),
                ("heard_real_songs", lambda r: bool(r.get("heard_real_songs"))))}

    def log_tables() -> None:
        import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

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
    real = source_table(pooled_results, [(n + heard_mark(pooled_results, n), n) for n in order if n in pooled_results],
                        "real", median=True)
    real += "\n\n" + HEARD_NOTE if any(r.get("heard_real_songs") for r in pooled_results.values()) else ""
    common = set.intersection(*(set(st["results"]) for st in studies))
    renders = {n: {k: float(np.nanmean([st["results"][n].get(k, math.nan) for st in studies]))
                   for k in studies[0]["results"][n] if k.startswith(("sdr.", "sir."))} for n in common}
    return {"folds": studies, "pooled": pooled,
            "tables": {"real": real, "table2": source_table(renders, paper_rows(renders, TABLE2), "test"),
                       "table3": source_table(renders, paper_rows(renders, TABLE3), "test")}}
