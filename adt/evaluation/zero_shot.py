"""The zero-shot matrix (thesis ch. 7): training-set combinations x test sets, micro F-measure.

:func:`zero_shot_matrix` (asset ``zero_shot_matrix``) trains the transcriber sweep's best
architecture with its best hyperparameters on every training-set combination of the features
(``FeatureSettings.train_combinations``: rows; the sweep's own model for all training sets together) and scores
each on every dataset's test split (columns) with the micro F-measure (50 ms, mir_eval;
:mod:`adt.metrics`), 5-class and 3-class. One more row, :data:`SHIPPED_ROW`, scores the
transcriber shipped with the package (``adt/pretrained/``) on the same test tracks, hearing
what it was trained on (a mixture itself for a ``"mix"``/``"mix+drums"`` model; see
:func:`adt.frame.checkpoint.model_input`). Written as Parquet, Markdown and heatmaps, logged to
MLflow ``adt/zero_shot``.

When the sweep fine-tuned the shipped transcriber (``Profile.start_from_shipped``, the demo), its row is named
``<sets> (from shipped)``: that model heard everything the shipped one did, so it is no zero-shot row; the
other rows train from scratch with the sweep's architecture and widths at the profile's learning rate (the
sweep's fine-tuning rate is no rate to train from scratch with).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from adt import tracking
from adt.atomic import atomic_path, save_array
from adt.cache import stage_cache
from adt.config import FrameSettings, Settings
from adt.cpu import training_threads
from adt.data.download import sha256sum
from adt.data.tables import OnsetsResult
from adt.features.index import FeatureIndex
from adt.features.spectrogram import features_file
from adt.frame.checkpoint import evaluate, load_model, model_input
from adt.frame.study import VERSION, TranscriberResult, scored_items, train_combination
from adt.parallel import run_jobs
from adt.results import FigureLink, PathEntry, RunLink, StageResult, Table
from adt.transcribe.transcriber import pretrained_path
from adt.vocab import CLASSES_3, CLASSES_5


def matrix_table(cells: pd.DataFrame | list[dict], value: str) -> pd.DataFrame:
    """The zero-shot matrix as text cells (rows: training sets, index ``train``; columns: test sets), each
    ``value`` to 3 decimals, in-domain cells (the row's training sets include the column's dataset) marked
    with ``*``."""
    cells = pd.DataFrame(cells)
    in_domain = cells.pivot(index="train", columns="test", values="in_domain").astype(bool)
    matrix = cells.pivot(index="train", columns="test", values=value)
    return matrix.apply(lambda col: [f"{v:.3f}" + ("*" if in_domain.loc[r, col.name] else "")
                                     for r, v in col.items()])


def matrix_markdown(cells: pd.DataFrame, value: str) -> str:
    """:func:`matrix_table` as Markdown."""
    return matrix_table(cells, value).to_markdown(disable_numparse=True)


def heatmap(matrix: pd.DataFrame, title: str, path: Path, in_domain: pd.DataFrame | None = None) -> None:
    """A PNG heatmap of a matrix of F-measures in [0, 1] (matplotlib), cells printed, ``*`` in-domain."""
    # lazy: pyplot after matplotlib.use('Agg'); matplotlib 0.5 s at import pipelines
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


#: Row name of the shipped transcriber in the matrix.
SHIPPED_ROW = "shipped model"


def shipped_items(model, index: FeatureIndex, refs: dict, test: str, tracks: pd.DataFrame | None,
                  folder: Path) -> list[tuple[Path, dict[str, np.ndarray]]]:
    """The test tracks of ``test`` as the shipped ``model`` hears them: the index's features where they
    come from the same audio and feature type, else features of the mixture (or drum recording) written
    to ``folder`` (``tracks``: the ``tracks`` table, for the audio paths)."""
    wants_stem = model_input(model) == "separated"
    empty = {c: np.array([]) for c in CLASSES_5}
    items = []
    for t in index.items((test,), "test"):
        same = t.input == "drum" or (t.input == "separated") == wants_stem
        if tracks is None or (same and model.feature_type == index.feature_type):
            items.append((t.x, refs.get(t.track_id, empty)))
            continue
        row = tracks.loc[t.track_id]
        audio = row.mix_path if isinstance(row.mix_path, str) else row.drum_path
        path = folder / model.feature_type / f"{t.track_id}.x.npy"
        if not path.is_file():
            save_array(path, features_file(audio, model.feature_type))
        items.append((path, refs.get(t.track_id, empty)))
    return items


@dataclass(frozen=True)
class ZeroShotMatrixResult(StageResult):
    """The zero-shot matrix (asset ``zero_shot_matrix``): ``cells`` records (train, test, in_domain, f/p/r 5-class,
    f 3-class, per-class f), ``markdown`` {"f_5class", "f_3class"}, ``path`` the folder with cells.parquet and
    the heatmaps, ``run_id`` its MLflow run."""

    cells: list
    markdown: dict
    path: str
    run_id: str | None = None

    def metadata(self) -> dict:
        # each matrix once, as a table (rows: training sets; `*` in-domain); the heatmaps of the same figures are links
        return {"matrix_3class": Table(matrix_table(self.cells, "f_3class"), index="train"),
                "matrix_5class": Table(matrix_table(self.cells, "f_5class"), index="train"),
                "about": "micro F-measure (50 ms, mir_eval); * in-domain: the row's training sets include the "
                         "column's dataset",
                "mlflow_run": RunLink(self.run_id),
                "heatmap_3class": FigureLink("zero_shot_f_3class.png", self.run_id),
                "heatmap_5class": FigureLink("zero_shot_f_5class.png", self.run_id), "path": PathEntry(self.path)}


def run(settings: Settings, features: FeatureIndex, onsets: OnsetsResult, transcriber: TranscriberResult,
        log: Callable[[str], None] = print) -> ZeroShotMatrixResult:
    """Stage ``zero_shot_matrix``: :func:`zero_shot_matrix` with the profile's frame section (the recipe of the
    rows it trains) and the settings' loss weighting, the shipped row on the mixtures of the unified tables."""
    return zero_shot_matrix(features, onsets.references(), transcriber, settings.get_profile().frame,
                            settings.loss_weighting, log, tracks_path=f"{onsets.dir}/tracks.parquet")


def _log_matrix(table: pd.DataFrame, folder: Path, combos: list, test_sets: list[str],
                started: float) -> tuple[dict[str, str], str]:
    """Log the matrix to MLflow (``adt/zero_shot``, one run spanning the cells' training since ``started``): the
    cells as a table and as metrics, a heatmap per class set (written into ``folder``), the Markdown tables.
    Returns ({"f_5class", "f_3class"}: Markdown, the run id)."""
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

    md = {}
    params = {"combinations": ", ".join("+".join(c) for c in combos), "test_sets": ", ".join(test_sets)}
    with tracking.run("zero_shot", "zero-shot-matrix", params=params, started=started) as run:
        mlflow.log_table(table, "zero_shot_cells.json")
        # every cell as a metric too (f3.<train>.<test>, f5.<train>.<test>): charted and compared across runs
        mlflow.log_metrics({tracking.metric_name(f"f{k[2]}", c["train"], c["test"]): float(c[k])
                            for c in table.to_dict("records") for k in ("f_3class", "f_5class")})
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
    return md, run.info.run_id


def zero_shot_matrix(index: FeatureIndex, refs: dict, transcriber: TranscriberResult, frame: FrameSettings,
                     loss_weighting: str = "beta", log: Callable[[str], None] = print,
                     tracks_path: str | Path | None = None) -> ZeroShotMatrixResult:
    """The matrix (module docstring).

    Args:
        index: the features (its training combinations are the rows, :attr:`FeatureIndex.combinations`);
            ``refs``: reference onsets (:func:`adt.metrics.reference_onsets`).
        frame: the profile's frame section: the recipe of the rows trained here (:func:`train_combination`).
        transcriber: the ``transcriber`` stage's result (its architecture, best parameters, model).
        tracks_path: the ``tracks`` table (Parquet), for the mixtures the shipped model hears; without
            it the shipped row is scored on the index's features as they are.
    """
    all_sets = index.training_sets()
    # the index's combinations, fewest sets first (a stored index's JSON has them sorted by name)
    combos = sorted((tuple(name.split("+")) for name in index.combinations), key=lambda c: (len(c), c))

    test_sets = index.test_sets()
    shipped = pretrained_path()
    shipped_digest = sha256sum(shipped) if shipped.is_file() else None
    cache = stage_cache("zero_shot_matrix", VERSION, "marked", index.key, transcriber.key, combos, test_sets,
                        shipped_digest)

    def fill(folder: Path) -> dict:
        started, cells = time.time(), []  # the MLflow run, opened once the cells are in, spans their training

        def score(model, name: str, combo: tuple, items_of: Callable[[str], list]) -> None:
            for test in test_sets:
                items = items_of(test)
                r5 = evaluate(model, items, classes=CLASSES_5)
                r3 = evaluate(model, items, classes=CLASSES_3)
                cells.append({"train": name, "test": test, "in_domain": test in combo,
                              "f_5class": r5["f"], "f_3class": r3["f"], "p_5class": r5["p"], "r_5class": r5["r"],
                              **{f"{k}_5class": v for k, v in r5.items() if k.startswith("f_")}})

        # the other combinations' transcribers are independent: trained in parallel where each takes one core
        others = [c for c in combos if c != all_sets]
        fine_tuned = transcriber.started_from != "scratch"
        params = {k: v for k, v in transcriber.best_params.items()
                  if not (fine_tuned and k in ("lr", "weight_decay"))}
        trained = dict(zip(others, run_jobs(
            train_combination, [dict(combo=c, index=index, refs=refs, frame=frame, loss_weighting=loss_weighting,
                                     architecture=transcriber.architecture, params=params)
                              for c in others],
            training_threads(transcriber.architecture), log,
            names=[f"transcriber on {'+'.join(c)}" for c in others], job_log="log")))
        for combo in combos:
            model_path = transcriber.model_path if combo == all_sets else trained[combo]["model_path"]
            name = "+".join(combo) + (" (from shipped)" if combo == all_sets and fine_tuned else "")
            score(load_model(model_path), name, combo,
                  lambda test: scored_items(index, refs, (test,), "test"))
        if shipped_digest:
            model = load_model(shipped)
            tracks = pd.read_parquet(tracks_path).set_index("track_id") if tracks_path else None
            log(f"scoring the shipped model {shipped.name} on the test sets")
            score(model, SHIPPED_ROW, (), lambda test: shipped_items(model, index, refs, test, tracks,
                                                                    folder / "shipped_features"))
        table = pd.DataFrame(cells)
        md, run_id = _log_matrix(table, folder, combos, test_sets, started)
        with atomic_path(folder / "cells.parquet") as tmp:
            table.to_parquet(tmp, index=False)
        return {"cells": table.to_dict("records"), "markdown": md, "run_id": run_id, "path": str(folder)}

    return ZeroShotMatrixResult.from_manifest(cache.get_or_compute(fill))
