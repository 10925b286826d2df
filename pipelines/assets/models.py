"""Transcription models (thesis ch. 5-6 recipe and sweeps) and the zero-shot evaluation matrix.

``transcriber``: an Optuna sweep (adt.frame.sweep; trials = ``Profile.sweep_trials``,
architectures = ``Profile.sweep_architectures``) on all training sets together;
the best trial's model is registered as ``adt-frame-crnn`` with the alias
``champion``. With more than one architecture it also runs the thesis's
architecture study (Table 6.1): one sweep per training dataset with the
architecture as a categorical parameter, each architecture's best model scored on
that dataset's test split. ``zero_shot_matrix`` trains the best architecture with
the best hyperparameters on every training combination (thesis ch. 7).
Study storage: ``AdtSettings.optuna_storage`` (an RDB URL shared with the GRU LM
sweep) or ``<data>/optuna/transcriber.db``.
"""


import dataclasses
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from adt.cache import StageCache, cache_key
from adt.config import Profile
from adt.vocab import CLASSES_3, CLASSES_5
from pipelines.assets.common import onsets_by_track, read_onsets
from pipelines.resources import AdtSettings

MODEL_VERSION = "2"
FRAME_CRNN = "frame_crnn"


def train_config(profile: Profile, loss_weighting: str = "beta"):
    """The profile's :class:`adt.frame.recipe.TrainConfig` (patience scaled for short runs, see ``for_profile``)."""
    from adt.frame.recipe import TrainConfig

    return TrainConfig.for_profile(profile, loss_weighting=loss_weighting)


def _items(features: dict, refs: dict, datasets: tuple[str, ...], split: str) -> list[tuple[Path, dict]]:
    return [(Path(v["x"]), refs.get(tid, {c: np.array([]) for c in CLASSES_5}))
            for tid, v in sorted(features["tracks"].items()) if v["dataset"] in datasets and v["split"] == split]


def _inputs(features: dict, refs: dict, combo: tuple[str, ...]) -> tuple[list[Path], list, dict]:
    """Training shard folders, validation items and training statistics of a combination."""
    from pipelines.assets.features import training_stats_for

    train_dirs = [Path(features["shards"][d]["train"]) for d in combo if "train" in features["shards"].get(d, {})]
    if not train_dirs:
        raise dg.Failure(f"no training data for {combo}")
    return train_dirs, _items(features, refs, combo, "validation"), training_stats_for(features, combo)


def sweep_combination(log, combo: tuple[str, ...], features: dict, refs: dict, profile: Profile, *,
                      architectures: tuple[str, ...], loss_weighting: str = "beta", storage: str | None = None,
                      register: bool = False) -> dict:
    """Run (or find cached) the Optuna sweep of ``architectures`` on the training splits of ``combo``.

    Returns the :class:`adt.frame.sweep.SweepResult` fields plus ``train_sets``, ``best_params``,
    ``best_val_f`` and the cache ``key``.

    Raises:
        dagster.Failure: no training data or no validation tracks for ``combo``.
    """
    from adt.features.stats import TrainingStats
    from adt.frame.sweep import run_sweep

    config = train_config(profile, loss_weighting)
    train_dirs, val_items, stats_info = _inputs(features, refs, combo)
    if not val_items:
        raise dg.Failure(f"no validation tracks for {combo}: the sweep selects on them")
    key = cache_key("sweep", MODEL_VERSION, [str(d) for d in train_dirs], [str(p) for p, _ in val_items],
                    dataclasses.asdict(config), list(architectures), profile.sweep_trials, register,
                    stats_info["key"])
    cache = StageCache("sweeps", key)
    manifest = cache.load()
    if manifest is not None:
        return manifest
    name = "+".join(combo)
    study = f"transcriber-{name}-{'all' if len(architectures) > 1 else architectures[0]}-{key}"
    log(f"sweeping {', '.join(architectures)} on {name}: {profile.sweep_trials} trials (study {study})")

    result = run_sweep(train_dirs, val_items, cache.dir / "trials", n_trials=profile.sweep_trials,
                       budget=profile.sweep_trials, config=config,
                       architectures=architectures, study_name=study, storage=storage,
                       stats=TrainingStats.load(stats_info["dir"]), register=register,
                       artifacts={"training_stats": stats_info["dir"]},
                       run_name=f"sweep[{name}]", log=log, pruner_warmup_epochs=config.lr_patience,
                       run_params={"train_sets": name, "feature_type": features.get("feature_type", "log_mel"),
                                   "target_widening": features.get("target_widening")})
    return cache.save({**result.to_dict(), "train_sets": list(combo), "best_params": result.params,
                       "best_val_f": result.best_value})


def train_combination(log, combo: tuple[str, ...], features: dict, refs: dict, profile: Profile,
                      register: bool = False, loss_weighting: str = "beta", architecture: str = FRAME_CRNN,
                      params: dict | None = None) -> dict:
    """Train (or find cached) one transcriber (``architecture`` with ``params``, e.g. a sweep's best)
    on the training splits of ``combo``, standardized with (and, for ``loss_weighting="infrequency"``,
    weighted by) its training statistics; ``register``: also register it as ``adt-frame-crnn``."""
    import mlflow

    from adt import tracking
    from adt.features.stats import TrainingStats
    from adt.frame.recipe import save_model, train_model

    config = train_config(profile, loss_weighting)
    train_dirs, val_items, stats_info = _inputs(features, refs, combo)
    key = cache_key("transcriber", MODEL_VERSION, [str(d) for d in train_dirs], [str(p) for p, _ in val_items],
                    dataclasses.asdict(config), architecture, params, register, stats_info["key"])
    cache = StageCache("models", key)
    manifest = cache.load()
    if manifest is not None:
        return manifest
    name = "+".join(combo)
    log(f"training {architecture} on {name}")
    loss = "weighted BCE (Eq. 10)" if loss_weighting == "beta" else "BCE with infrequency weights (thesis 5.2)"
    run_params = {**dataclasses.asdict(config), **(params or {}), "train_sets": name, "architecture": architecture,
                  "loss": loss, "feature_type": features.get("feature_type", "log_mel"),
                  "target_widening": features.get("target_widening")}
    with tracking.run("transcriber", f"{architecture}[{name}]", params=run_params) as run:
        mlflow.log_artifacts(stats_info["dir"], "training_stats")
        model, history = train_model(train_dirs, val_items, config, architecture, params,
                                     on_epoch=lambda e, m: (mlflow.log_metrics({k: v for k, v in m.items()
                                                                                if k != "epoch"}, step=e),
                                                            log(f"epoch {e}: {m}")),
                                     stats=TrainingStats.load(stats_info["dir"]))
        path = save_model(model, cache.dir / "model.pt")
        mlflow.log_artifact(str(path), "model")
        uri = None
        if register:
            from adt.frame.sweep import evaluation_key, register_champion

            uri = register_champion(model, evaluation_key(val_items, config), log)
        return cache.save({"model_path": str(path), "run_id": run.info.run_id, "history": history,
                           "train_sets": list(combo), "model_uri": uri, "architecture": architecture,
                           "best_params": model.hparams, "best_val_f": model.best_val_f})


def load_model(path: str):
    """A transcriber checkpoint (:func:`adt.frame.recipe.load_model`)."""
    from adt.frame.recipe import load_model as load

    return load(path)


def _training_sets(features: dict) -> tuple[str, ...]:
    return tuple(sorted(d for d, splits in features["shards"].items() if "train" in splits))


def architecture_study(log, features: dict, refs: dict, profile: Profile, architectures: tuple[str, ...],
                       main: dict, loss_weighting: str, storage: str | None) -> dict:
    """Thesis Table 6.1: micro F-measure (5 classes, 50 ms) on the test split of each training set,
    of each architecture's best model from that training set's sweep (all architectures, categorical).

    Columns: every dataset with a training split, and all of them together (the main sweep).
    A cell is NaN when the architecture got no complete trial or the training set has no test split.
    """
    import mlflow

    from adt import tracking
    from adt.frame.recipe import evaluate

    all_sets = tuple(main["train_sets"])
    combos = [(d,) for d in _training_sets(features) if (d,) != all_sets] + [all_sets]
    sweeps = {c: main if c == all_sets else
              sweep_combination(log, c, features, refs, profile, architectures=architectures,
                                loss_weighting=loss_weighting, storage=storage) for c in combos}
    key = cache_key("architecture_study", MODEL_VERSION, [s["key"] for s in sweeps.values()], features["key"])
    cache = StageCache("architecture_study", key)
    manifest = cache.load()
    if manifest is not None:
        return manifest
    cells = []
    for combo, sweep in sweeps.items():
        items = _items(features, refs, combo, "test")
        for arch in architectures:
            best = sweep["per_architecture"].get(arch)
            r = evaluate(load_model(best["model_path"]), items) if best and items else None
            cells.append({"architecture": arch, "train": "+".join(combo), "val_f": best["val_f"] if best else None,
                          "test_f": r["f"] if r else float("nan"), "trial": best["trial"] if best else None})
    table = pd.DataFrame(cells)
    matrix = (table.pivot(index="architecture", columns="train", values="test_f")
              .reindex(index=list(architectures), columns=["+".join(c) for c in combos]))
    md = matrix.to_markdown(floatfmt=".4f")
    with tracking.run("transcriber", "architecture-study",
                      params={"architectures": ",".join(architectures), "train_sets": [c for c in combos]}) as run:
        mlflow.log_table(table, "architecture_study.json")
        mlflow.log_text(md, "architecture_study.md")
    return cache.save({"cells": table.to_dict("records"), "markdown": md, "run_id": run.info.run_id})


@dg.asset(group_name="models", code_version=MODEL_VERSION, tags={"adt/stage": "training"},
          description="Transcriber sweep (thesis ch. 5: AdamW, clipping at norm 2, LR / 5 on plateau, early "
                      "stopping, selection on validation micro F; Optuna TPE + median pruning, each trial a "
                      "nested MLflow run) on every training split; the best model registered as adt-frame-crnn "
                      "with alias champion. Several architectures: also the architecture study (thesis Table 6.1).")
def transcriber(context: dg.AssetExecutionContext, settings: AdtSettings, features: dict, onsets: dict) -> dg.Output[dict]:
    from adt.frame.sweep import trials_markdown

    profile = settings.get_profile()
    refs = onsets_by_track(read_onsets(onsets))
    combo = _training_sets(features)
    architectures = tuple(profile.sweep_architectures)
    storage = settings.optuna_storage or None
    main = sweep_combination(context.log.info, combo, features, refs, profile, architectures=architectures,
                             loss_weighting=settings.loss_weighting, storage=storage, register=True)
    study = None
    if len(architectures) > 1:
        study = architecture_study(context.log.info, features, refs, profile, architectures, main,
                                   settings.loss_weighting, storage)
    manifest = {**main, "architecture_study": study,
                "key": cache_key(main["key"], study and study["key"])}
    metadata = {"mlflow_run_id": main["run_id"], "model_uri": str(main["model_uri"]),
                "champion_uri": str(main["champion_uri"]), "train_sets": "+".join(combo),
                "architecture": main["architecture"], "best_params": main["best_params"],
                "best_val_f": main["best_val_f"], "study": main["study_name"], "n_trials": main["n_trials"],
                "trials": dg.MetadataValue.md(trials_markdown(main["trials"]))}
    if study is not None:
        metadata["architecture_study"] = dg.MetadataValue.md(
            "**Micro F (5 classes, 50 ms) on each training set's test split** (thesis Table 6.1)\n\n"
            + study["markdown"])
    return dg.Output(manifest, data_version=dg.DataVersion(manifest["key"]), metadata=metadata)


def matrix_markdown(cells: pd.DataFrame, value: str) -> str:
    """The zero-shot matrix (rows: training sets, columns: test sets) as Markdown, in-domain
    cells (the row's training sets include the column's dataset) marked with ``*``."""
    in_domain = cells.pivot(index="train", columns="test", values="in_domain").astype(bool)
    matrix = cells.pivot(index="train", columns="test", values=value)
    shown = matrix.apply(lambda col: [f"{v:.3f}" + ("*" if in_domain.loc[r, col.name] else "")
                                      for r, v in col.items()])
    return shown.to_markdown(disable_numparse=True)


def _heatmap(matrix: pd.DataFrame, title: str, path: Path, in_domain: pd.DataFrame | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * matrix.shape[1], 1.2 + 0.6 * matrix.shape[0]))
    im = ax.imshow(matrix.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns)
    ax.set_yticks(range(matrix.shape[0]), matrix.index)
    for (i, j), v in np.ndenumerate(matrix.to_numpy(dtype=float)):
        mark = "*" if in_domain is not None and bool(in_domain.iloc[i, j]) else ""
        ax.text(j, i, f"{v:.3f}{mark}", ha="center", va="center", color="w" if v < 0.6 else "k")
    ax.set_xlabel("test set")
    ax.set_ylabel("training sets")
    ax.set_title(title + ("\n(* in-domain)" if in_domain is not None else ""))
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@dg.asset(group_name="evaluation", code_version=MODEL_VERSION, tags={"adt/stage": "training"},
          description="Zero-shot matrix (thesis ch. 7): the sweep's best architecture and hyperparameters trained "
                      "on each training-set combination (rows), tested on every dataset's test split (columns); "
                      "cells = micro F-measure (50 ms, mir_eval), 5-class and 3-class.")
def zero_shot_matrix(context: dg.AssetExecutionContext, settings: AdtSettings, features: dict, onsets: dict,
                     transcriber: dict) -> dg.Output[dict]:
    import mlflow

    from adt import tracking
    from adt.atomic import atomic_path
    from adt.frame.recipe import evaluate

    profile = settings.get_profile()
    refs = onsets_by_track(read_onsets(onsets))
    available = set(_training_sets(features))
    combos = [tuple(c) for c in profile.train_combinations if set(c) <= available]
    all_sets = _training_sets(features)
    if all_sets not in combos:
        combos.append(all_sets)
    test_sets = sorted(d for d in {v["dataset"] for v in features["tracks"].values()}
                       if any(v["dataset"] == d and v["split"] == "test" for v in features["tracks"].values()))
    key = cache_key("zero_shot", MODEL_VERSION, "marked", features["key"], transcriber["key"], combos, test_sets)
    cache = StageCache("zero_shot_matrix", key)
    manifest = cache.load()
    if manifest is None:
        cells = []
        for combo in combos:
            m = transcriber if combo == all_sets else train_combination(
                context.log.info, combo, features, refs, profile, loss_weighting=settings.loss_weighting,
                architecture=transcriber["architecture"], params=transcriber["best_params"])
            model = load_model(m["model_path"])
            for test in test_sets:
                items = _items(features, refs, (test,), "test")
                r5 = evaluate(model, items, classes=CLASSES_5)
                r3 = evaluate(model, items, classes=CLASSES_3)
                cells.append({"train": "+".join(combo), "test": test, "in_domain": test in combo,
                              "f_5class": r5["f"], "f_3class": r3["f"], "p_5class": r5["p"], "r_5class": r5["r"],
                              **{f"{k}_5class": v for k, v in r5.items() if k.startswith("f_")}})
        table = pd.DataFrame(cells)
        md = {}
        with tracking.run("zero_shot", "zero-shot-matrix", params={"combinations": combos, "test_sets": test_sets}) as run:
            mlflow.log_table(table, "zero_shot_cells.json")
            in_domain = table.pivot(index="train", columns="test", values="in_domain").astype(bool)
            for k in ("f_5class", "f_3class"):
                matrix = table.pivot(index="train", columns="test", values=k)
                png = cache.dir / f"zero_shot_{k}.png"
                png.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(png, suffix=".png") as tmp:
                    _heatmap(matrix, f"micro F-measure ({k[2]}-class, 50 ms)", tmp, in_domain)
                mlflow.log_artifact(str(png))
                md[k] = matrix_markdown(table, k)
            mlflow.log_text(md["f_5class"] + "\n\n" + md["f_3class"], "zero_shot.md")
        with atomic_path(cache.dir / "cells.parquet") as tmp:
            table.to_parquet(tmp, index=False)
        manifest = cache.save({"cells": table.to_dict("records"), "markdown": md, "run_id": run.info.run_id,
                               "path": str(cache.dir)})
    text = ("**5-class micro F (50 ms)**\n\n" + manifest["markdown"]["f_5class"] +
            "\n\n**3-class (BD, SD, HH) micro F (50 ms)**\n\n" + manifest["markdown"]["f_3class"] +
            "\n\n`*` in-domain: the row's training sets include the column's dataset.")
    return dg.Output(manifest, data_version=dg.DataVersion(manifest["key"]),
                     metadata={"matrix": dg.MetadataValue.md(text), "mlflow_run_id": manifest["run_id"],
                               "path": dg.MetadataValue.path(manifest["path"])})
