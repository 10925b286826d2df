"""The tatum-level stage: the tatum paper's Table II and Fig. 3 (Secs. III-B, III-D, IV-D).

Three frame-to-tatum CRNNs (no LM, skip-bigram LM, GRU LM regularization) are
trained on the training tracks of the main training combination (the transcriber's
training sets) on ground-truth tatums, and scored with the frame-level transcriber
(peak picking + quantization to tatums) on every test split, with estimated
(madmom) and with ground-truth tatums. Scoring: ``adt.tatum.evaluate`` (Table II uses
the grid match; the +-50 ms time match is reported beside it). :func:`tatum_study`
(asset ``tatum_study``) caches the whole study by its inputs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from adt import registry, tracking
from adt.atomic import atomic_path, write_json
from adt.cache import stage_cache
from adt.config import Settings, TatumSettings
from adt.cpu import DEFAULT_THREADS
from adt.data.tables import OnsetsResult
from adt.features.index import FeatureIndex
from adt.features.stats import TrainingStats
from adt.frame.checkpoint import load_model
from adt.frame.study import TranscriberResult
from adt.lm.fit import LmBigramResult, LmGruResult
from adt.parallel import run_jobs
from adt.results import Figure, Mapping, RunLink, Skipped, StageResult, Table
from adt.rhythm.tatum_table import TatumsResult
from adt.tatum.inference import predict_tatums, save_model
from adt.tatum.pianoroll import excerpt_start, plot_fig3
from adt.tatum.regularization import load_lm
from adt.tatum.tracks import make_track
from adt.tatum.train import paper_config, train_tatum_model, tune_weights

#: Version of the tatum study (``tatum_study`` asset). 3: whole-track tatum grids; 2: per-tatum L_tran
#: (adt.tatum.regularization.tatum_bce), weight tuning.
VERSION = "3"
K = 3  # BD, SD, HH as in the paper
#: method -> regularizer (None: unregularized); the frame baseline is "frame_crnn".
REGULARIZERS: dict[str, str | None] = {"tatum_crnn": None, "tatum_bigram": "bigram", "tatum_gru": "gru"}
GRID_SOURCES = {"estimated": "madmom", "ground_truth": "ground_truth"}
EXCERPT_TATUMS = 64  # 4 bars in Fig. 3


@dataclasses.dataclass(frozen=True)
class TatumStudyResult(StageResult):
    """The tatum paper's Table II and Fig. 3 (asset ``tatum_study``; :func:`run_study`).

    Attributes:
        results: Parquet of tatum-level P/R/F per method, test split, tatum source and match; per_track: per
            track; markdown: Table II per test split and match; fig3: Fig. 3 (PNG) or None.
        models: method -> checkpoint; histories: method -> epochs; best_val_f: method -> validation F;
            train_seconds: method -> training time; weights: method -> loss weights (gamma, alpha); weight_trials:
            Optuna trials tuning them.
        train_sets, train_tracks, val_tracks, test_sets: what was trained and tested on; gru_lm: the GRU LM's
            class and path; frame_model: the frame-level transcriber's checkpoint; skipped: tracks left out and
            why; run_id: the study's MLflow run.
    """

    results: str
    per_track: str
    models: dict
    fig3: str | None
    markdown: dict
    histories: dict
    best_val_f: dict
    train_sets: list
    train_tracks: int
    val_tracks: int
    test_sets: list
    gru_lm: str
    weights: dict
    weight_trials: int
    frame_model: str | None
    skipped: list
    run_id: str
    train_seconds: dict

    def metadata(self) -> dict:
        from adt.tatum.evaluate import table_ii_compact  # lazy: mir_eval, scipy.signal 0.9 s at import pipelines

        # Table II at a glance: tatum-level F in % (all drums, delta 0.2, grid match) per test split and tatum
        # source; P/R, the per-drum tables and the +-50 ms time match are in the MLflow run (table_ii.md)
        return {"table_ii": Table(table_ii_compact(pd.read_parquet(self.results)), index="method"),
                "mlflow_run": RunLink(self.run_id),
                "fig3": Figure(self.fig3, self.run_id, "Fig. 3: piano rolls, unregularized vs LM-regularized")
                if self.fig3 else None,
                "train_sets": "+".join(self.train_sets), "gru_lm": self.gru_lm.split(" (")[0],
                "skipped": Skipped(self.skipped),
                # per model: validation F, training time, loss weights (gamma, alpha)
                "models": Mapping({m: {"best_val_f": f, "train_s": round(self.train_seconds.get(m, 0.0), 1),
                                       **(self.weights or {}).get(m, {})}
                                   for m, f in self.best_val_f.items()}, key="method")}


def run(settings: Settings, features: FeatureIndex, tatums: TatumsResult, onsets: OnsetsResult,
        lm_bigram: LmBigramResult, lm_gru: LmGruResult, transcriber: TranscriberResult,
        log: Callable[[str], None] = print) -> TatumStudyResult:
    """Stage ``tatum_study``: :func:`tatum_study` with the profile's tatum section."""
    return tatum_study(features, tatums, onsets, lm_bigram, lm_gru, transcriber, settings.get_profile().tatum, log)


def study_configs(tatum: TatumSettings, channels: int = 16) -> dict:
    """One :class:`adt.tatum.train.TatumTrainConfig` per tatum model, sized by the profile's tatum section.

    Steps, validation interval and batch size are the section's (by default the frame recipe's epochs x
    steps_per_epoch, every steps_per_epoch, half its batch, since a 64-tatum segment (~8 s) holds about
    twice the frames of the frame model's 4-s segment: same frames per step); gamma/alpha of the paper
    (Sec. IV-D). Conv channels: the paper gives none; 16 keeps a demo step near 1 s on 2 cores (32 takes
    about 2.5x as long).
    """
    common = dict(k=K, steps=tatum.steps, eval_every=tatum.eval_every, batch_size=tatum.batch_size,
                  channels=channels, seed=tatum.seed)
    return {m: paper_config(r or "none", **common) for m, r in REGULARIZERS.items()}


def train_method(method: str, config, train: list, val: list, n_trials: int, lm_path: str | None, stats: tuple,
                 out_dir: Path, parent_run_id: str, log: Callable[[str], None] = print) -> None:
    """Train (or tune, with ``n_trials``) the tatum model ``method`` (:data:`REGULARIZERS`) as a nested MLflow run
    of ``parent_run_id``; writes ``<out_dir>/<method>.pt``, then ``<method>.finished.json`` (tuned gamma and
    alpha, the history)."""
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

    reg = REGULARIZERS[method]
    model_path = out_dir / f"{method}.pt"
    log(f"{method}: training on {len(train)} tracks ({config.steps} steps, gamma {config.gamma}, "
        f"alpha {config.alpha if reg else 0})")
    lm = load_lm(reg, lm_path, K) if reg else None
    parent = mlflow.get_run(parent_run_id)
    with mlflow.start_run(run_name=method, nested=True, parent_run_id=parent_run_id,
                          experiment_id=parent.info.experiment_id):
        mlflow.set_tags(tracking.provenance("tatum_study", f"tatum CRNN {method}"))
        mlflow.log_params({**{k: str(v) for k, v in dataclasses.asdict(config).items()},
                           "regularizer": reg or "none"})
        if n_trials > 0 and val:
            model, history, tuned = tune_weights(
                train, val, config, n_trials, lm=lm, stats=stats,
                on_trial=lambda n, t: (mlflow.log_metrics({"trial_val_f": t["val_f"]}, step=n),
                                       log(f"{method} trial {n}: {t}")))
            config = dataclasses.replace(config, gamma=tuned["gamma"], alpha=tuned["alpha"])
            mlflow.log_params({"tuned_gamma": tuned["gamma"], "tuned_alpha": tuned["alpha"]})
            mlflow.log_table(pd.DataFrame(tuned["trials"]), "weight_trials.json")
        else:
            model, history = train_tatum_model(
                train, val, config, lm=lm, stats=stats,
                on_eval=lambda s, m: (mlflow.log_metrics({k: v for k, v in m.items() if np.isfinite(v)}, step=s),
                                      log(f"{method} step {s}: {tracking.figures(m, ('step',))}")))
        save_model(model, model_path)
        mlflow.log_artifact(str(model_path))
    plain = json.loads(json.dumps(history, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
    write_json(out_dir / f"{method}.finished.json", {"gamma": float(config.gamma), "alpha": float(config.alpha),
                                                     "history": plain})


def _grids(tatums: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    tat = tatums
    return {grid: {tid: np.sort(g.time_s.to_numpy()) for tid, g in tat[tat.source == source].groupby("track_id")}
            for grid, source in GRID_SOURCES.items()}


def _build(index: FeatureIndex, ons: pd.DataFrame, grid: dict, ids: list[str], skipped: list[str], what: str) -> list:
    out = []
    for tid in ids:
        if tid not in grid:
            skipped.append(f"{tid} ({what}): no tatum grid")
            continue
        o = ons[ons.track_id == tid]
        try:
            out.append(make_track(tid, np.load(index.tracks[tid].x, mmap_mode="r"), grid[tid],
                                  o.time_s.to_numpy(), o.drum.to_numpy(), k=K))
        except ValueError as exc:
            skipped.append(f"{tid} ({what}): {exc}")
    return out


def _frame_model(transcriber: TranscriberResult):
    """The transcriber from its ``model_path`` (:func:`adt.frame.checkpoint.load_model`: any architecture),
    else its MLflow ``model_uri`` (:func:`adt.registry.load`, weights only)."""
    path = transcriber.model_path
    if path and Path(path).is_file():
        return load_model(path)
    if transcriber.model_uri:
        return registry.load(transcriber.model_uri, kind="transcriber").eval()  # weights only
    raise ValueError(f"transcriber has neither a loadable model_path ({path}) nor a model_uri")


def _split_ids(index: FeatureIndex, datasets, split: str) -> list[str]:
    return [t.track_id for t in index.items(datasets, split)]


def _fit_tracks(index: FeatureIndex, onsets: pd.DataFrame, grids: dict, train_sets: tuple[str, ...], seed: int,
                skipped: list[str]) -> tuple[list, list]:
    """(training, validation) tatum tracks of ``train_sets``: on ground-truth tatums, estimated ones where a
    track has none; without validation tracks, 15% of the training ones (paper Sec. IV-A), drawn with ``seed``.

    Raises:
        ValueError: no training track on a tatum grid.
    """
    fit_grid = {**grids["estimated"], **grids["ground_truth"]}
    train = _build(index, onsets, fit_grid, _split_ids(index, train_sets, "train"), skipped, "train")
    val = _build(index, onsets, fit_grid, _split_ids(index, train_sets, "validation"), skipped, "validation")
    if not train:
        raise ValueError(f"no training track of {train_sets} on a tatum grid: {skipped[:5]}")
    if not val and len(train) > 1:  # paper Sec. IV-A: 15% of the training data for validation
        n_val = max(1, round(0.15 * len(train)))
        order = np.random.default_rng(seed).permutation(len(train))
        val = [train[i] for i in order[:n_val]]
        train = [train[i] for i in order[n_val:]]
    return train, val


def _train_models(configs: dict, train: list, val: list, n_trials: int, lm_paths: dict, mean_std: tuple,
                  out_dir: Path, run_id: str, log: Callable[[str], None]) -> tuple[dict, dict, dict]:
    """Train (or load, when trained before a crash) the three tatum models; ``configs`` get their tuned loss
    weights. Returns (method -> model, method -> history, method -> checkpoint path)."""
    from adt.tatum.inference import load_model  # not at the top: the module's load_model is adt.frame.checkpoint's

    # the three models are independent: trained in parallel processes of one torch thread each where the
    # cores allow (the tatum CRNN gains 1.3x from a second thread, a second process 2x), each into its
    # <method>.pt and <method>.finished.json (a crash resumes after the last finished one)
    todo = [m for m in REGULARIZERS if not ((out_dir / f"{m}.finished.json").is_file()
                                            and (out_dir / f"{m}.pt").is_file())]
    run_jobs(train_method, [dict(method=m, config=configs[m], train=train, val=val, n_trials=n_trials,
                                 lm_path=lm_paths.get(REGULARIZERS[m]), stats=mean_std, out_dir=out_dir,
                                 parent_run_id=run_id) for m in todo],
             1, log, names=[f"{m} model" for m in todo], job_log="log", one_wave=True)
    models, histories, model_paths = {}, {}, {}
    for method in REGULARIZERS:
        model_paths[method] = str(out_dir / f"{method}.pt")
        state = json.loads((out_dir / f"{method}.finished.json").read_text())
        configs[method] = dataclasses.replace(configs[method], gamma=state["gamma"], alpha=state["alpha"])
        models[method], histories[method] = load_model(model_paths[method]), state["history"]
        if method not in todo:
            log(f"{method}: trained before this run stopped, loaded from {model_paths[method]}")
    return models, histories, model_paths


def _score(index: FeatureIndex, onsets: pd.DataFrame, grids: dict, test_sets: list[str], predictors: dict,
           skipped: list[str], log: Callable[[str], None]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Every method on every test split's tracks, on both tatum grids: (summary, per track, the test tracks).

    Raises:
        ValueError: no test track on a tatum grid.
    """
    from adt.tatum.evaluate import evaluate_methods  # lazy: mir_eval, scipy.signal 0.9 s at import pipelines

    summaries, per_tracks, test_tracks = [], [], {}
    for test in test_sets:
        ids = _split_ids(index, (test,), "test")
        on_grids = {g: _build(index, onsets, grids[g], ids, skipped, f"test {g}") for g in GRID_SOURCES}
        on_grids = {g: ts for g, ts in on_grids.items() if ts}
        if not on_grids:
            continue
        test_tracks[test] = on_grids
        summ, per = evaluate_methods(predictors, on_grids, k=K)
        summaries.append(summ.assign(test_set=test))
        per_tracks.append(per.assign(test_set=test))
        log(f"scored {test}: {', '.join(f'{g} {len(ts)} tracks' for g, ts in on_grids.items())}")
    if not summaries:
        raise ValueError(f"no test track on a tatum grid: {skipped[:5]}")
    return pd.concat(summaries, ignore_index=True), pd.concat(per_tracks, ignore_index=True), test_tracks


def _fig3(per_track: pd.DataFrame, models: dict, configs: dict, test_tracks: dict, out_dir: Path) -> Path | None:
    """Fig. 3: the test track (ground-truth tatums) the regularization changed most for the better, as piano
    rolls; None without ground-truth test tracks."""
    reg = "tatum_gru" if "tatum_gru" in models else "tatum_bigram"
    gt_rows = per_track[per_track.tatums == "ground_truth"].pivot_table(
        index=["test_set", "track_id"], columns="method", values="f_grid")
    if gt_rows.empty:
        return None
    test, tid = (gt_rows[reg] - gt_rows["tatum_crnn"]).idxmax()
    track = next(t for t in test_tracks[test]["ground_truth"] if t.track_id == tid)
    unreg = (predict_tatums(models["tatum_crnn"], track) >= configs["tatum_crnn"].threshold).T
    regd = (predict_tatums(models[reg], track) >= configs[reg].threshold).T
    s = excerpt_start(unreg, regd, EXCERPT_TATUMS)
    cut = slice(s, s + EXCERPT_TATUMS)
    labels3 = ("ground truth", "unregularized", f"regularized ({REGULARIZERS[reg]} LM)")
    fs = {labels3[1]: float(gt_rows.loc[(test, tid), "tatum_crnn"]), labels3[2]: float(gt_rows.loc[(test, tid), reg])}
    last = s + unreg[:, cut].shape[1] - 1
    return plot_fig3(track.y.T[:, cut], unreg[:, cut], regd[:, cut], track.tatums_s[cut], out_dir / "fig3.png",
                     title=f"{tid}, ground-truth tatums {s}..{last}", f_measures=fs, labels=labels3)


def _write_tables(summary: pd.DataFrame, per_track: pd.DataFrame, markdown: dict, out_dir: Path) -> None:
    """Table II's figures into ``out_dir`` (results.parquet, per_track.parquet) and the active MLflow run (the
    tables, Table II in Markdown, each test set's grid-match F per tatum source and method as a metric)."""
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

    for name, df in (("results", summary), ("per_track", per_track)):
        with atomic_path(out_dir / f"{name}.parquet") as tmp:
            df.to_parquet(tmp, index=False)
    mlflow.log_table(summary, "table_ii_long.json")
    mlflow.log_table(per_track, "per_track.json")
    mlflow.log_text("\n\n".join(f"## {k}\n\n{v}" for k, v in markdown.items()), "table_ii.md")
    overall = summary[(summary["class"] == "all") & (summary["match"] == "grid")]
    mlflow.log_metrics({f"{r.test_set}.{r.tatums}.{r.method}.f": float(r.f) for r in overall.itertuples()})


def run_study(log: Callable[[str], None], index: FeatureIndex, tatums: pd.DataFrame, onsets: pd.DataFrame,
              lm_bigram: LmBigramResult, lm_gru: LmGruResult, transcriber: TranscriberResult, tatum: TatumSettings,
              out_dir: Path,
              configs: dict | None = None) -> dict:
    """Train the three tatum models, score the four methods, write Table II and Fig. 3 into ``out_dir``.

    With ``tatum.trials`` > 0 each model's loss weights (gamma; alpha with an LM) are tuned
    on the validation tatum F-measure (:func:`adt.tatum.train.tune_weights`, the paper's Optuna
    step); otherwise the paper's values are used.

    Logged to MLflow (experiment adt/tatum_study: one run, a nested run per model). Resumable per
    model: a model trained before a crash (``<method>.pt`` and ``<method>.finished.json`` in the stage
    folder) is loaded, not trained again.

    Args:
        index: the features; ``tatums``, ``onsets``: the ``tatums`` and ``onsets`` tables; lm_bigram, lm_gru,
            transcriber: those stages' results.

    Returns:
        the manifest :class:`TatumStudyResult` reads.

    Raises:
        ValueError: no training tracks on a tatum grid, no test tracks, or a training set without
            training statistics (:meth:`adt.features.index.FeatureIndex.training_stats`).
    """
    # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mir_eval, scipy.signal 0.8 s,
    # mlflow 0.8 s at import pipelines
    import mlflow

    from adt.tatum.evaluate import (METHOD_LABELS, frame_model_predictor, table_ii, table_ii_markdown,
                                    tatum_model_predictor)

    torch.set_num_threads(DEFAULT_THREADS)
    configs = dict(configs or study_configs(tatum))
    n_trials = int(tatum.trials)
    grids = _grids(tatums)
    train_sets = tuple(transcriber.train_sets or index.training_sets())
    skipped: list[str] = []
    train, val = _fit_tracks(index, onsets, grids, train_sets, tatum.seed, skipped)
    # the training statistics of the features stage, as for the frame-level models
    stats = TrainingStats.load(index.training_stats(train_sets)["dir"])
    mean_std = (stats.mean, stats.std)
    gru_path = lm_gru.path_k3 or lm_gru.path
    gru_note = type(load_lm("gru", gru_path, K)).__name__ + f" ({gru_path})"  # loads: a bad LM fails here
    test_sets = index.test_sets()
    if not test_sets:
        raise ValueError("no test split in the features")
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"train_sets": "+".join(train_sets), "train_tracks": len(train), "val_tracks": len(val), "k": K,
              "gru_lm": gru_note, "bigram_lm": lm_bigram.path_k3, "frame_model": transcriber.model_path,
              "test_sets": test_sets, "match": "grid (Table II), time +-50 ms (beside)"}
    with tracking.run("tatum_study", "table-ii", params=params) as run:
        models, histories, model_paths = _train_models(
            configs, train, val, n_trials, {"bigram": lm_bigram.path_k3, "gru": gru_path}, mean_std, out_dir,
            run.info.run_id, log)
        predictors = {"frame_crnn": frame_model_predictor(_frame_model(transcriber), K),
                      **{m: tatum_model_predictor(models[m], configs[m].threshold) for m in REGULARIZERS}}
        summary, per_track, test_tracks = _score(index, onsets, grids, test_sets, predictors, skipped, log)
        labels = {m: f"{METHOD_LABELS[m]} (α = {configs[m].alpha:.3g})" for m, r in REGULARIZERS.items() if r}
        markdown = {f"{test}.{match}": table_ii_markdown(table_ii(summary[summary.test_set == test], match, labels))
                    for test in summary.test_set.unique() for match in ("grid", "time")}
        _write_tables(summary, per_track, markdown, out_dir)
        fig = _fig3(per_track, models, configs, test_tracks, out_dir)
        if fig is not None:
            mlflow.log_artifact(str(fig))
    val_f = {m: max(h["val_f"] for h in histories[m]) for m in models}
    return {"results": str(out_dir / "results.parquet"), "per_track": str(out_dir / "per_track.parquet"),
            "models": model_paths, "fig3": str(fig) if fig else None, "markdown": markdown,
            "histories": histories, "best_val_f": val_f, "train_sets": list(train_sets),
            "train_tracks": len(train), "val_tracks": len(val), "test_sets": test_sets, "gru_lm": gru_note,
            "weights": {m: {"gamma": configs[m].gamma, "alpha": configs[m].alpha if r else 0.0}
                        for m, r in REGULARIZERS.items()}, "weight_trials": n_trials,
            "frame_model": transcriber.model_path, "skipped": skipped, "run_id": run.info.run_id,
            "train_seconds": {m: h[-1]["seconds"] for m, h in histories.items()}}




def tatum_study(index: FeatureIndex, tatums: TatumsResult, onsets: OnsetsResult, lm_bigram: LmBigramResult,
                lm_gru: LmGruResult, transcriber: TranscriberResult, tatum: TatumSettings,
                log: Callable[[str], None] = print) -> TatumStudyResult:
    """:func:`run_study` once per input (asset ``tatum_study``): cached by the content keys of the
    features, tatums, onsets, LMs and transcriber, the study configs and the weight trials.

    Args:
        tatums, onsets, lm_bigram, lm_gru, transcriber: the stages' results.
    """
    configs = study_configs(tatum)
    cache = stage_cache("tatum_study", VERSION, index.key, tatums.key, onsets.key, lm_bigram.key,
                        lm_gru.key, transcriber.key, {m: dataclasses.asdict(c) for m, c in configs.items()},
                        tatum.trials)
    return TatumStudyResult.from_manifest(cache.get_or_compute(lambda folder: run_study(
        log, index, pd.read_parquet(tatums.path), pd.read_parquet(onsets.path), lm_bigram, lm_gru,
        transcriber, tatum, folder, configs)))
