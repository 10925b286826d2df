"""Transcription models and the zero-shot evaluation matrix."""


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

MODEL_VERSION = "1"


def train_config(profile: Profile, loss_weighting: str = "beta"):
    from adt.train import TrainConfig

    return TrainConfig(epochs=profile.epochs, steps_per_epoch=profile.steps_per_epoch,
                       batch_size=profile.batch_size, seed=profile.seed, loss_weighting=loss_weighting)


def _items(features: dict, refs: dict, datasets: tuple[str, ...], split: str) -> list[tuple[Path, dict]]:
    return [(Path(v["x"]), refs.get(tid, {c: np.array([]) for c in CLASSES_5}))
            for tid, v in sorted(features["tracks"].items()) if v["dataset"] in datasets and v["split"] == split]


def train_combination(log, combo: tuple[str, ...], features: dict, refs: dict, profile: Profile,
                      register: bool = False, loss_weighting: str = "beta") -> dict:
    """Train (or find cached) the frame-level CRNN on the training splits of ``combo``,
    standardized with (and, for ``loss_weighting="infrequency"``, weighted by) its training statistics."""
    import mlflow
    import torch

    from adt import tracking
    from adt.features import TrainingStats
    from adt.train import train_frame_model
    from pipelines.assets.features import training_stats_for

    config = train_config(profile, loss_weighting)
    train_dirs = [Path(features["shards"][d]["train"]) for d in combo if "train" in features["shards"].get(d, {})]
    if not train_dirs:
        raise dg.Failure(f"no training data for {combo}")
    stats_info = training_stats_for(features, combo)
    val_items = _items(features, refs, combo, "validation")
    key = cache_key("frame_crnn", MODEL_VERSION, [str(d) for d in train_dirs], [str(p) for p, _ in val_items],
                    dataclasses.asdict(config), register, stats_info["key"])
    cache = StageCache("models", key)
    manifest = cache.load()
    if manifest is not None:
        return manifest
    name = "+".join(combo)
    log(f"training the frame-level CRNN on {name}")
    loss = "weighted BCE (Eq. 10)" if loss_weighting == "beta" else "BCE with infrequency weights (thesis 5.2)"
    params = {**dataclasses.asdict(config), "train_sets": name, "architecture": "FrameCRNN", "loss": loss,
              "feature_type": features.get("feature_type", "log_mel"), "target_widening": features.get("target_widening")}
    with tracking.run("transcriber", f"frame-crnn[{name}]", params=params) as run:
        mlflow.log_artifacts(stats_info["dir"], "training_stats")
        model, history = train_frame_model(train_dirs, val_items, config,
                                           on_epoch=lambda e, m: (mlflow.log_metrics(m, step=e),
                                                                  log(f"epoch {e}: {m}")),
                                           stats=TrainingStats.load(stats_info["dir"]))
        path = cache.dir / "model.pt"
        from adt.atomic import atomic_path

        with atomic_path(path, suffix=".pt") as tmp:
            torch.save({"state_dict": model.state_dict(), "config": model.config}, tmp)
        mlflow.log_artifact(str(path))
        uri = None
        if register:
            info = mlflow.pytorch.log_model(model, name="model", registered_model_name=tracking.MODEL_NAME,
                                            pip_requirements=["torch==2.13.0", "numpy"], serialization_format="pickle")
            uri = f"models:/{tracking.MODEL_NAME}/{info.registered_model_version}"
        return cache.save({"model_path": str(path), "run_id": run.info.run_id, "history": history,
                           "train_sets": list(combo), "model_uri": uri})


def load_model(path: str):
    import torch

    from adt.models import FrameCRNN

    state = torch.load(path, map_location="cpu", weights_only=False)
    model = FrameCRNN(**state["config"])
    model.load_state_dict(state["state_dict"])
    return model.eval()


def _training_sets(features: dict) -> tuple[str, ...]:
    return tuple(sorted(d for d, splits in features["shards"].items() if "train" in splits))


@dg.asset(group_name="models", code_version=MODEL_VERSION, tags={"adt/stage": "training"},
          description="Frame-level CRNN baseline (tatum paper Eq. 10, beta = 8; peak picking as there) trained on "
                      "every training split, AdamW; logged to MLflow and registered as adt-frame-crnn.")
def transcriber(context: dg.AssetExecutionContext, settings: AdtSettings, features: dict, onsets: dict) -> dg.Output[dict]:
    refs = onsets_by_track(read_onsets(onsets))
    combo = _training_sets(features)
    manifest = train_combination(context.log.info, combo, features, refs, settings.get_profile(), register=True,
                                 loss_weighting=settings.loss_weighting)
    last = manifest["history"][-1]
    return dg.Output(manifest, data_version=dg.DataVersion(manifest["key"]),
                     metadata={"mlflow_run_id": manifest["run_id"], "model_uri": str(manifest["model_uri"]),
                               "train_sets": "+".join(combo), "final_loss": last["loss"],
                               "best_val_f": max(h["val_f"] for h in manifest["history"])})


def _heatmap(matrix: pd.DataFrame, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * matrix.shape[1], 1.2 + 0.6 * matrix.shape[0]))
    im = ax.imshow(matrix.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns)
    ax.set_yticks(range(matrix.shape[0]), matrix.index)
    for (i, j), v in np.ndenumerate(matrix.to_numpy(dtype=float)):
        ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="w" if v < 0.6 else "k")
    ax.set_xlabel("test set")
    ax.set_ylabel("training sets")
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@dg.asset(group_name="evaluation", code_version=MODEL_VERSION, tags={"adt/stage": "training"},
          description="Zero-shot matrix (thesis ch. 7): rows = training-set combinations, columns = every "
                      "dataset's test split; cells = micro F-measure (50 ms, mir_eval), 5-class and 3-class.")
def zero_shot_matrix(context: dg.AssetExecutionContext, settings: AdtSettings, features: dict, onsets: dict,
                     transcriber: dict) -> dg.Output[dict]:
    import mlflow

    from adt import tracking
    from adt.atomic import atomic_path
    from adt.train import evaluate

    profile = settings.get_profile()
    refs = onsets_by_track(read_onsets(onsets))
    available = set(_training_sets(features))
    combos = [tuple(c) for c in profile.train_combinations if set(c) <= available]
    all_sets = _training_sets(features)
    if all_sets not in combos:
        combos.append(all_sets)
    test_sets = sorted(d for d in {v["dataset"] for v in features["tracks"].values()}
                       if any(v["dataset"] == d and v["split"] == "test" for v in features["tracks"].values()))
    key = cache_key("zero_shot", MODEL_VERSION, features["key"], transcriber["key"], combos, test_sets)
    cache = StageCache("zero_shot_matrix", key)
    manifest = cache.load()
    if manifest is None:
        cells = []
        for combo in combos:
            m = transcriber if combo == all_sets else train_combination(context.log.info, combo, features, refs, profile,
                                                                        loss_weighting=settings.loss_weighting)
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
            for k in ("f_5class", "f_3class"):
                matrix = table.pivot(index="train", columns="test", values=k)
                png = cache.dir / f"zero_shot_{k}.png"
                png.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(png, suffix=".png") as tmp:
                    _heatmap(matrix, f"micro F-measure ({k[2]}-class, 50 ms)", tmp)
                mlflow.log_artifact(str(png))
                md[k] = matrix.to_markdown(floatfmt=".3f")
            mlflow.log_text(md["f_5class"] + "\n\n" + md["f_3class"], "zero_shot.md")
        with atomic_path(cache.dir / "cells.parquet") as tmp:
            table.to_parquet(tmp, index=False)
        manifest = cache.save({"cells": table.to_dict("records"), "markdown": md, "run_id": run.info.run_id,
                               "path": str(cache.dir)})
    text = ("**5-class micro F (50 ms)**\n\n" + manifest["markdown"]["f_5class"] +
            "\n\n**3-class (BD, SD, HH) micro F (50 ms)**\n\n" + manifest["markdown"]["f_3class"] +
            "\n\nIn-domain cells: a row whose training sets include the column's dataset.")
    return dg.Output(manifest, data_version=dg.DataVersion(manifest["key"]),
                     metadata={"matrix": dg.MetadataValue.md(text), "mlflow_run_id": manifest["run_id"],
                               "path": dg.MetadataValue.path(manifest["path"])})
