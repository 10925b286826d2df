"""The zero-shot matrix (thesis ch. 7): training-set combinations x test sets, micro F-measure.

:func:`zero_shot_matrix` (asset ``zero_shot_matrix``) trains the transcriber sweep's best
architecture with its best hyperparameters on every training-set combination of the
profile (rows; the sweep's own model for all training sets together) and scores each on
every dataset's test split (columns) with the micro F-measure (50 ms, mir_eval;
:mod:`adt.metrics`), 5-class and 3-class. Written as Parquet, Markdown and heatmaps,
logged to MLflow ``adt/zero_shot``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from adt.cache import stage_cache
from adt.config import Profile
from adt.features.index import FeatureIndex, training_combinations
from adt.frame.study import VERSION, scored_items, train_combination
from adt.vocab import CLASSES_3, CLASSES_5


def matrix_markdown(cells: pd.DataFrame, value: str) -> str:
    """The zero-shot matrix (rows: training sets, columns: test sets) as Markdown, in-domain
    cells (the row's training sets include the column's dataset) marked with ``*``."""
    in_domain = cells.pivot(index="train", columns="test", values="in_domain").astype(bool)
    matrix = cells.pivot(index="train", columns="test", values=value)
    shown = matrix.apply(lambda col: [f"{v:.3f}" + ("*" if in_domain.loc[r, col.name] else "")
                                      for r, v in col.items()])
    return shown.to_markdown(disable_numparse=True)


def heatmap(matrix: pd.DataFrame, title: str, path: Path, in_domain: pd.DataFrame | None = None) -> None:
    """A PNG heatmap of a matrix of F-measures in [0, 1] (matplotlib), cells printed, ``*`` in-domain."""
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


def zero_shot_matrix(index: FeatureIndex, refs: dict, transcriber: dict, profile: Profile,
                     loss_weighting: str = "beta", log: Callable[[str], None] = print) -> dict:
    """The matrix (module docstring).

    Args:
        index: the features; ``refs``: reference onsets (:func:`adt.metrics.reference_onsets`).
        transcriber: the transcriber sweep's manifest (``train_sets``, ``architecture``,
            ``best_params``, ``model_path``, ``key``).

    Returns:
        manifest: ``cells`` (records: train, test, in_domain, f/p/r 5-class, f 3-class, per-class f),
        ``markdown`` {"f_5class", "f_3class"}, ``run_id``, ``path`` (folder with cells.parquet and
        the heatmaps), ``key``.
    """
    import mlflow

    from adt import tracking
    from adt.atomic import atomic_path
    from adt.frame.recipe import evaluate, load_model

    all_sets = index.training_sets()
    combos = training_combinations(profile.train_combinations, all_sets)
    test_sets = index.test_sets()
    cache = stage_cache("zero_shot_matrix", VERSION, "marked", index.key, transcriber["key"], combos, test_sets)

    def fill(folder: Path) -> dict:
        cells = []
        for combo in combos:
            m = transcriber if combo == all_sets else train_combination(
                combo, index, refs, profile, loss_weighting=loss_weighting,
                architecture=transcriber["architecture"], params=transcriber["best_params"], log=log)
            model = load_model(m["model_path"])
            for test in test_sets:
                items = scored_items(index, refs, (test,), "test")
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
                png = folder / f"zero_shot_{k}.png"
                png.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(png, suffix=".png") as tmp:
                    heatmap(table.pivot(index="train", columns="test", values=k),
                            f"micro F-measure ({k[2]}-class, 50 ms)", tmp, in_domain)
                mlflow.log_artifact(str(png))
                md[k] = matrix_markdown(table, k)
            mlflow.log_text(md["f_5class"] + "\n\n" + md["f_3class"], "zero_shot.md")
        with atomic_path(folder / "cells.parquet") as tmp:
            table.to_parquet(tmp, index=False)
        return {"cells": table.to_dict("records"), "markdown": md, "run_id": run.info.run_id, "path": str(folder)}

    return cache.get_or_compute(fill)
