"""Tatum-level transcription study: the tatum paper's Table II and Fig. 3 (Secs. III-B, III-D, IV-D).

Three frame-to-tatum CRNNs (no LM, skip-bigram LM, GRU LM regularization) are
trained on the training tracks of the main training combination (the transcriber's
training sets) on ground-truth tatums, and scored with the frame-level transcriber
(peak picking + quantization to tatums) on every test split, with estimated
(madmom) and with ground-truth tatums. Scoring: ``adt.tatum.evaluate`` (Table II uses
the grid match; the +-50 ms time match is reported beside it).
"""


import dataclasses
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from adt.cache import StageCache, cache_key
from adt.config import Profile
from pipelines.assets.common import read_onsets
from pipelines.resources import AdtSettings

STUDY_VERSION = "2"  # 2: per-tatum L_tran (adt.tatum.regularization.tatum_bce); weight tuning
K = 3  # BD, SD, HH as in the paper
#: method -> regularizer (None: unregularized); the frame baseline is "frame_crnn".
REGULARIZERS: dict[str, str | None] = {"tatum_crnn": None, "tatum_bigram": "bigram", "tatum_gru": "gru"}
GRID_SOURCES = {"estimated": "madmom", "ground_truth": "ground_truth"}
EXCERPT_TATUMS = 64  # 4 bars in Fig. 3


def study_configs(profile: Profile, channels: int = 16) -> dict:
    """One :class:`adt.tatum.train.TatumTrainConfig` per tatum model, sized by the profile.

    steps = epochs x steps_per_epoch, validation every steps_per_epoch, gamma/alpha of the paper
    (Sec. IV-D). Batch: half the profile's batch size, since a 64-tatum segment (~8 s) holds about
    twice the frames of the frame model's 4-s segment (same frames per step). Conv channels: the paper
    gives none; 16 keeps a demo step near 1 s on 2 cores (32 takes about 2.5x as long).
    """
    from adt.tatum.train import paper_config

    common = dict(k=K, steps=profile.epochs * profile.steps_per_epoch, eval_every=profile.steps_per_epoch,
                  batch_size=max(1, profile.batch_size // 2), channels=channels, seed=profile.seed)
    return {m: paper_config(r or "none", **common) for m, r in REGULARIZERS.items()}


def _grids(tatums: dict) -> dict[str, dict[str, np.ndarray]]:
    tat = pd.read_parquet(tatums["path"])
    return {grid: {tid: np.sort(g.time_s.to_numpy()) for tid, g in tat[tat.source == source].groupby("track_id")}
            for grid, source in GRID_SOURCES.items()}


def _build(features: dict, ons: pd.DataFrame, grid: dict, ids: list[str], skipped: list[str], what: str) -> list:
    from adt.tatum.tracks import make_track

    out = []
    for tid in ids:
        if tid not in grid:
            skipped.append(f"{tid} ({what}): no tatum grid")
            continue
        o = ons[ons.track_id == tid]
        try:
            out.append(make_track(tid, np.load(features["tracks"][tid]["x"], mmap_mode="r"), grid[tid],
                                  o.time_s.to_numpy(), o.drum.to_numpy(), k=K))
        except ValueError as exc:
            skipped.append(f"{tid} ({what}): {exc}")
    return out


def _frame_model(transcriber: dict):
    """The transcriber from its ``model_path`` (:func:`adt.frame.recipe.load_model`: any architecture),
    else its MLflow ``model_uri``."""
    from adt.frame.recipe import load_model

    path = transcriber.get("model_path")
    if path and Path(path).is_file():
        return load_model(path)
    if transcriber.get("model_uri"):
        import mlflow

        from adt import tracking

        tracking.setup()
        return mlflow.pytorch.load_model(transcriber["model_uri"], map_location="cpu").eval()
    raise dg.Failure(f"transcriber has neither a loadable model_path ({path}) nor a model_uri")


def _split_ids(features: dict, datasets, split: str) -> list[str]:
    return sorted(t for t, v in features["tracks"].items() if v["dataset"] in datasets and v["split"] == split)


def run_study(log: Callable[[str], None], features: dict, tatums: dict, onsets: dict, lm_bigram: dict, lm_gru: dict,
              transcriber: dict, profile: Profile, out_dir: Path, configs: dict | None = None) -> dict:
    """Train the three tatum models, score the four methods, write Table II and Fig. 3 into ``out_dir``.

    With ``profile.tatum_trials`` > 0 each model's loss weights (gamma; alpha with an LM) are tuned
    on the validation tatum F-measure (:func:`adt.tatum.train.tune_weights`, the paper's Optuna
    step); otherwise the paper's values are used.

    Logged to MLflow (experiment adt/tatum_study: one run, a nested run per model).

    Returns:
        JSON-able manifest: paths (results, per_track, models, fig3), Table II Markdown (grid and
        time match, per test set), training histories, what was skipped, the MLflow run id.

    Raises:
        dagster.Failure: no training tracks on a tatum grid, or no test tracks.
    """
    import mlflow
    import torch

    from adt import tracking
    from adt.atomic import atomic_path
    from adt.features.stats import TrainingStats
    from adt.tatum.pianoroll import excerpt_start, plot_fig3
    from adt.tatum.evaluate import (METHOD_LABELS, evaluate_methods, frame_model_predictor, table_ii, table_ii_markdown, tatum_model_predictor)
    from adt.tatum.regularization import load_lm
    from adt.tatum.inference import predict_tatums, save_model
    from adt.tatum.train import train_tatum_model, tune_weights
    from pipelines.assets.features import training_stats_for

    torch.set_num_threads(2)
    configs = dict(configs or study_configs(profile))
    n_trials = int(profile.tatum_trials)
    ons = read_onsets(onsets)
    grids = _grids(tatums)
    train_sets = tuple(transcriber.get("train_sets") or
                       sorted({v["dataset"] for v in features["tracks"].values() if v["split"] == "train"}))
    skipped: list[str] = []
    # training on ground-truth tatums, estimated ones where a track has none
    fit_grid = {**grids["estimated"], **grids["ground_truth"]}
    train = _build(features, ons, fit_grid, _split_ids(features, train_sets, "train"), skipped, "train")
    val = _build(features, ons, fit_grid, _split_ids(features, train_sets, "validation"), skipped, "validation")
    if not train:
        raise dg.Failure(f"no training track of {train_sets} on a tatum grid: {skipped[:5]}")
    if not val and len(train) > 1:  # paper Sec. IV-A: 15% of the training data for validation
        n_val = max(1, round(0.15 * len(train)))
        order = np.random.default_rng(profile.seed).permutation(len(train))
        val = [train[i] for i in order[:n_val]]
        train = [train[i] for i in order[n_val:]]
    try:
        stats = TrainingStats.load(training_stats_for(features, train_sets)["dir"])
        mean_std = (stats.mean, stats.std)
    except (dg.Failure, FileNotFoundError, KeyError):
        mean_std = None  # standardize with the training tracks' own statistics
    gru_path = lm_gru.get("path_k3") or lm_gru["path"]
    lms = {"bigram": load_lm("bigram", lm_bigram["path_k3"], K), "gru": load_lm("gru", gru_path, K)}
    gru_note = type(lms["gru"]).__name__ + f" ({gru_path})"
    test_sets = sorted({v["dataset"] for v in features["tracks"].values() if v["split"] == "test"})
    if not test_sets:
        raise dg.Failure("no test split in the features")
    out_dir.mkdir(parents=True, exist_ok=True)
    models, histories, model_paths = {}, {}, {}
    params = {"train_sets": "+".join(train_sets), "train_tracks": len(train), "val_tracks": len(val), "k": K,
              "gru_lm": gru_note, "bigram_lm": lm_bigram["path_k3"], "frame_model": transcriber.get("model_path"),
              "test_sets": test_sets, "match": "grid (Table II), time +-50 ms (beside)"}
    with tracking.run("tatum_study", "table-ii", params=params) as run:
        for method, reg in REGULARIZERS.items():
            config = configs[method]
            log(f"{method}: training on {len(train)} tracks ({config.steps} steps, gamma {config.gamma}, "
                f"alpha {config.alpha if reg else 0})")
            with mlflow.start_run(run_name=method, nested=True):
                mlflow.log_params({**{k: str(v) for k, v in dataclasses.asdict(config).items()},
                                   "regularizer": reg or "none"})
                if n_trials > 0 and val:
                    model, history, tuned = tune_weights(
                        train, val, config, n_trials, lm=lms[reg] if reg else None, stats=mean_std,
                        on_trial=lambda n, t: (mlflow.log_metrics({"trial_val_f": t["val_f"]}, step=n),
                                               log(f"{method} trial {n}: {t}")))
                    configs[method] = dataclasses.replace(config, gamma=tuned["gamma"], alpha=tuned["alpha"])
                    mlflow.log_params({"tuned_gamma": tuned["gamma"], "tuned_alpha": tuned["alpha"]})
                    mlflow.log_table(pd.DataFrame(tuned["trials"]), "weight_trials.json")
                else:
                    model, history = train_tatum_model(
                        train, val, config, lm=lms[reg] if reg else None, stats=mean_std,
                        on_eval=lambda s, m: (mlflow.log_metrics({k: v for k, v in m.items() if np.isfinite(v)},
                                                                 step=s),
                                              log(f"{method} step {s}: {m}")))
                model_paths[method] = str(out_dir / f"{method}.pt")
                save_model(model, model_paths[method])
                mlflow.log_artifact(model_paths[method])
            models[method], histories[method] = model, history
        predictors = {"frame_crnn": frame_model_predictor(_frame_model(transcriber), K),
                      **{m: tatum_model_predictor(models[m], configs[m].threshold) for m in REGULARIZERS}}
        summaries, per_tracks, test_tracks = [], [], {}
        for test in test_sets:
            ids = _split_ids(features, (test,), "test")
            on_grids = {g: _build(features, ons, grids[g], ids, skipped, f"test {g}") for g in GRID_SOURCES}
            on_grids = {g: ts for g, ts in on_grids.items() if ts}
            if not on_grids:
                continue
            test_tracks[test] = on_grids
            summ, per = evaluate_methods(predictors, on_grids, k=K)
            summaries.append(summ.assign(test_set=test))
            per_tracks.append(per.assign(test_set=test))
            log(f"scored {test}: {', '.join(f'{g} {len(ts)} tracks' for g, ts in on_grids.items())}")
        if not summaries:
            raise dg.Failure(f"no test track on a tatum grid: {skipped[:5]}")
        summary = pd.concat(summaries, ignore_index=True)
        per_track = pd.concat(per_tracks, ignore_index=True)
        labels = {m: f"{METHOD_LABELS[m]} (α = {configs[m].alpha:.3g})" for m, r in REGULARIZERS.items() if r}
        markdown = {f"{test}.{match}": table_ii_markdown(table_ii(summary[summary.test_set == test], match, labels))
                    for test in summary.test_set.unique() for match in ("grid", "time")}
        for name, df in (("results", summary), ("per_track", per_track)):
            with atomic_path(out_dir / f"{name}.parquet") as tmp:
                df.to_parquet(tmp, index=False)
        mlflow.log_table(summary, "table_ii_long.json")
        mlflow.log_table(per_track, "per_track.json")
        mlflow.log_text("\n\n".join(f"## {k}\n\n{v}" for k, v in markdown.items()), "table_ii.md")
        overall = summary[(summary["class"] == "all") & (summary["match"] == "grid")]
        mlflow.log_metrics({f"{r.test_set}.{r.tatums}.{r.method}.f": float(r.f) for r in overall.itertuples()})

        # Fig. 3: the test track (ground-truth tatums) the regularization changed most for the better
        reg = "tatum_gru" if "tatum_gru" in models else "tatum_bigram"
        gt_rows = per_track[per_track.tatums == "ground_truth"].pivot_table(
            index=["test_set", "track_id"], columns="method", values="f_grid")
        fig = None
        if not gt_rows.empty:
            test, tid = (gt_rows[reg] - gt_rows["tatum_crnn"]).idxmax()
            track = next(t for t in test_tracks[test]["ground_truth"] if t.track_id == tid)
            unreg = (predict_tatums(models["tatum_crnn"], track) >= configs["tatum_crnn"].threshold).T
            regd = (predict_tatums(models[reg], track) >= configs[reg].threshold).T
            s = excerpt_start(unreg, regd, EXCERPT_TATUMS)
            cut = slice(s, s + EXCERPT_TATUMS)
            labels3 = ("ground truth", "unregularized", f"regularized ({REGULARIZERS[reg]} LM)")
            fs = {labels3[1]: float(gt_rows.loc[(test, tid), "tatum_crnn"]),
                  labels3[2]: float(gt_rows.loc[(test, tid), reg])}
            last = s + unreg[:, cut].shape[1] - 1
            fig = plot_fig3(track.y.T[:, cut], unreg[:, cut], regd[:, cut], track.tatums_s[cut], out_dir / "fig3.png",
                            title=f"{tid}, ground-truth tatums {s}..{last}", f_measures=fs, labels=labels3)
            mlflow.log_artifact(str(fig))
        val_f = {m: max(h["val_f"] for h in histories[m]) for m in models}
    return {"results": str(out_dir / "results.parquet"), "per_track": str(out_dir / "per_track.parquet"),
            "models": model_paths, "fig3": str(fig) if fig else None, "markdown": markdown,
            "histories": histories, "best_val_f": val_f, "train_sets": list(train_sets),
            "train_tracks": len(train), "val_tracks": len(val), "test_sets": test_sets, "gru_lm": gru_note,
            "weights": {m: {"gamma": configs[m].gamma, "alpha": configs[m].alpha if r else 0.0}
                        for m, r in REGULARIZERS.items()}, "weight_trials": n_trials,
            "frame_model": transcriber.get("model_path"), "skipped": skipped, "run_id": run.info.run_id,
            "train_seconds": {m: h[-1]["seconds"] for m, h in histories.items()}}


@dg.asset(group_name="models", code_version=STUDY_VERSION, tags={"adt/stage": "training"},
          description="Tatum paper Table II and Fig. 3: frame-to-tatum CRNNs (4 conv 3x3, 3 x 98 GRU) trained "
                      "unregularized and with skip-bigram (gamma 0.46, alpha 0.068) or GRU LM (gamma 0.61, alpha "
                      "0.055; tuned with Optuna when the profile's tatum_trials > 0) regularization on ground-truth "
                      "tatums, against the frame-level transcriber + "
                      "quantization; tatum-level P/R/F (delta 0.2) per test split with madmom and ground-truth "
                      "tatums.")
def tatum_study(context: dg.AssetExecutionContext, settings: AdtSettings, features: dict, tatums: dict,
                onsets: dict, tracks: dict, lm_bigram: dict, lm_gru: dict, transcriber: dict) -> dg.Output[dict]:
    profile = settings.get_profile()
    configs = study_configs(profile)
    key = cache_key("tatum_study", STUDY_VERSION, features["key"], tatums["key"], onsets["key"], tracks["key"],
                    lm_bigram["key"], lm_gru["key"], transcriber["key"],
                    {m: dataclasses.asdict(c) for m, c in configs.items()}, profile.tatum_trials)
    cache = StageCache("tatum_study", key)
    manifest = cache.load()
    if manifest is None:
        manifest = cache.save(run_study(context.log.info, features, tatums, onsets, lm_bigram, lm_gru, transcriber,
                                        profile, cache.dir, configs))
    md = manifest["markdown"]
    text = "\n\n".join(f"**{k.split('.')[0]}** (tatum-level P/R/F in %, delta 0.2, "
                       f"{'grid match' if k.endswith('grid') else '+-50 ms time match'})\n\n{v}"
                       for k, v in md.items())
    meta = {"table_ii": dg.MetadataValue.md(text), "mlflow_run_id": manifest["run_id"],
            "best_val_f": manifest["best_val_f"], "train_sets": "+".join(manifest["train_sets"]),
            "train_seconds": manifest["train_seconds"], "gru_lm": manifest["gru_lm"],
            "skipped": manifest["skipped"][:50], "loss_weights": manifest.get("weights", {})}
    if manifest["fig3"]:
        meta["fig3"] = dg.MetadataValue.path(manifest["fig3"])
    return dg.Output(manifest, data_version=dg.DataVersion(key), metadata=meta)
