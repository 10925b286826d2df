"""The frame-level model stage: sweeps and trainings per training-set combination (thesis chs. 5-6).

:func:`transcriber_sweep` (asset ``transcriber``): an Optuna sweep (:func:`adt.frame.sweep.run_sweep`;
trials = ``FrameSettings.sweep_trials``, architectures = ``FrameSettings.sweep_architectures``) on all
training sets together, the best model registered as ``adt-frame-crnn`` (alias ``champion``
unless the champion scored higher on the same validation data). :func:`architecture_study`
(asset ``architecture_study``): the thesis's Table 6.1, one sweep per training dataset with the
architecture as a categorical parameter, each architecture's best model scored on that
dataset's test split. :func:`train_combination`: one model of given hyperparameters on a
combination (the zero-shot matrix's rows). Each result is cached by its inputs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from adt import tracking
from adt.cache import stage_cache
from adt.config import FrameSettings, Settings
from adt.data.tables import OnsetsResult
from adt.features.index import FeatureIndex
from adt.features.stats import TrainingStats
from adt.frame.champion import evaluation_key, register_champion
from adt.frame.checkpoint import FRAME_CRNN, evaluate, load_model, save_model
from adt.frame.recipe import TrainConfig, train_model
from adt.frame.reproduce import check_tags
from adt.frame.shipped import SHIPPED_F_TAG, load_fitting, not_worse, sha256
from adt.results import Mapping, MarkdownTables, ModelLink, RunLink, StageResult
from adt.vocab import CLASSES_5

#: Version of the frame-model stages (sweeps, models, architecture study, zero-shot matrix).
VERSION = "2"

Log = Callable[[str], None]
References = dict[str, dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class TranscriberResult(StageResult):
    """The transcriber sweep's outcome (asset ``transcriber``; :func:`transcriber_sweep`).

    Attributes:
        train_sets: the datasets trained on; architecture, best_params, best_val_f: the best trial's
            (validation micro F, 5 classes, 50 ms); model_path: its checkpoint.
        study_name, n_trials, trials: the Optuna study and one record per trial (:class:`adt.frame.sweep.SweepResult`).
        run_id: the sweep's MLflow run; model_uri, champion_uri: ``models:/adt-frame-crnn/<version>`` and
            ``...@champion`` when registered; shipped: the shipped transcriber's F on the same validation data;
            started_from: the fine-tuned checkpoint's name and SHA-256, or "scratch"; per_architecture:
            architecture -> its best complete trial; history: the best trial's epochs.
    """

    train_sets: list
    architecture: str
    best_params: dict
    best_val_f: float
    model_path: str
    study_name: str
    n_trials: int
    trials: list
    run_id: str
    started_from: str = "scratch"
    model_uri: str | None = None
    champion_uri: str | None = None
    shipped: dict = dataclasses.field(default_factory=dict)
    per_architecture: dict = dataclasses.field(default_factory=dict)
    history: list = dataclasses.field(default_factory=list)

    def metadata(self) -> dict:
        from adt.frame.sweep import trials_markdown  # lazy: sqlalchemy 0.1 s at import pipelines

        shipped = (self.shipped or {}).get("shipped_val_f")
        return {"mlflow_run": RunLink(self.run_id), "model": ModelLink(self.model_uri),
                "champion": ModelLink(self.champion_uri), "train_sets": "+".join(self.train_sets),
                "architecture": self.architecture,
                "best_params": Mapping(self.best_params or {}, key="parameter"),
                "best_val_f": round(self.best_val_f, 4), "study": self.study_name,
                "started_from": self.started_from,
                "shipped_val_f": round(float(shipped), 4) if shipped is not None else "not scored",
                "n_trials": self.n_trials, "trials": MarkdownTables(trials_markdown(self.trials))}


@dataclasses.dataclass(frozen=True)
class ArchitectureStudyResult(StageResult):
    """Thesis Table 6.1 (asset ``architecture_study``): ``cells`` records (architecture, train, val_f, test_f,
    trial), ``markdown`` the table (or why there is no study), ``run_id`` its MLflow run."""

    cells: list
    markdown: str
    run_id: str | None = None

    def metadata(self) -> dict:
        return {"table_6_1": MarkdownTables(self.markdown),
                "table_6_1_about": "micro F (5 classes, 50 ms) on each training set's test split",
                "mlflow_run": RunLink(self.run_id)}


def run_transcriber(settings: Settings, features: FeatureIndex, onsets: OnsetsResult,
                    log: Log = print) -> TranscriberResult:
    """Stage ``transcriber``: :func:`transcriber_sweep` with the profile's frame section, the settings' loss
    weighting and Optuna storage."""
    return transcriber_sweep(features, onsets.references(), settings.get_profile().frame, settings.loss_weighting,
                             settings.optuna_storage or None, log)


def run_architecture_study(settings: Settings, features: FeatureIndex, onsets: OnsetsResult,
                           transcriber: TranscriberResult, log: Log = print) -> ArchitectureStudyResult:
    """Stage ``architecture_study``: :func:`architecture_study` around the transcriber sweep."""
    return architecture_study(features, onsets.references(), settings.get_profile().frame, transcriber,
                              settings.loss_weighting, settings.optuna_storage or None, log)


def train_config(frame: FrameSettings, loss_weighting: str = "beta") -> TrainConfig:
    """The frame section's :class:`adt.frame.recipe.TrainConfig` (patience scaled for short runs)."""
    return TrainConfig.for_section(frame, loss_weighting=loss_weighting)


def scored_items(index: FeatureIndex, refs: References, datasets: Iterable[str],
                 split: str, with_drums: bool = False) -> list[tuple[Path, dict[str, np.ndarray]]]:
    """(features file, reference onsets per class) of the tracks of ``datasets`` in ``split``:
    what :func:`adt.frame.checkpoint.evaluate` and the validation of training take.

    ``with_drums``: also the clean drum stems of mixtures where the features have them
    (``transcriber_input="mix+drums"``): validation with and without accompaniment.
    """
    empty = {c: np.array([]) for c in CLASSES_5}
    items = [(t.x, refs.get(t.track_id, empty)) for t in index.items(datasets, split)]
    if with_drums:
        items += [(t.x_drums, refs.get(t.track_id, empty)) for t in index.items(datasets, split) if t.x_drums]
    return items


def pruner_warmup(config) -> int:
    """Epochs before the sweep's MedianPruner may prune a trial: half the epochs, at least 2.

    Epoch 1 says nothing (validation F 0.000-0.004 for every trial of the demo sweep, which the
    pruner used to cut at epoch 1 against a trial that had finished: the 3-trial sweep was one trial).
    """
    return max(2, (int(config.epochs) + 1) // 2)


def _inputs(index: FeatureIndex, refs: References, combo: tuple[str, ...]) -> tuple[list[Path], list, dict]:
    train_dirs = index.train_dirs(combo)
    if not train_dirs:
        raise ValueError(f"no training data for {combo}")
    return train_dirs, scored_items(index, refs, combo, "validation", with_drums=True), index.training_stats(combo)


def sweep_combination(combo: tuple[str, ...], index: FeatureIndex, refs: References, frame: FrameSettings, *,
                      architectures: Sequence[str], loss_weighting: str = "beta", storage: str | None = None,
                      register: bool = False, log: Log = print, init_path: str | Path | None = None) -> dict:
    """Run (or find cached) the Optuna sweep of ``architectures`` on the training splits of ``combo``.

    ``init_path``: a transcriber checkpoint every trial fine-tunes (:func:`adt.frame.sweep.run_sweep`).

    Returns:
        the :class:`adt.frame.sweep.SweepResult` fields plus ``train_sets``, ``best_params``,
        ``best_val_f``, ``started_from`` (the fine-tuned checkpoint's name and SHA-256, or "scratch") and the
        cache ``key``.

    Raises:
        ValueError: no training data or no validation tracks for ``combo``.
    """
    from adt.frame.sweep import run_sweep  # lazy: sqlalchemy 0.1 s at import pipelines

    config = train_config(frame, loss_weighting)
    train_dirs, val_items, stats_info = _inputs(index, refs, combo)
    if not val_items:
        raise ValueError(f"no validation tracks for {combo}: the sweep selects on them")
    started_from = f"{Path(init_path).name} (sha256 {sha256(init_path)})" if init_path else "scratch"
    cache = stage_cache("sweeps", VERSION, [str(d) for d in train_dirs], [str(p) for p, _ in val_items],
                        dataclasses.asdict(config), list(architectures), frame.sweep_trials, register,
                        stats_info["key"], *([started_from] if init_path else []))

    def sweep(folder: Path) -> dict:
        name = "+".join(combo)
        study = f"transcriber-{name}-{'all' if len(architectures) > 1 else architectures[0]}-{cache.key}"
        log(f"sweeping {', '.join(architectures)} on {name}: {frame.sweep_trials} trials (study {study})")
        result = run_sweep(train_dirs, val_items, folder / "trials", n_trials=frame.sweep_trials,
                           budget=frame.sweep_trials, config=config, architectures=architectures,
                           study_name=study, storage=storage, stats=TrainingStats.load(stats_info["dir"]),
                           register=register, artifacts={"training_stats": stats_info["dir"]}, init_path=init_path,
                           run_name=f"sweep[{name}]", log=log, pruner_warmup_epochs=pruner_warmup(config),
                           run_params={"train_sets": name, "feature_type": index.feature_type,
                                       "target_widening": index.target_widening, "profile": frame.profile,
                                       "started_from": started_from})
        return {**result.to_dict(), "train_sets": list(combo), "best_params": result.params,
                "best_val_f": result.best_value, "started_from": started_from}

    return cache.get_or_compute(sweep)


def transcriber_sweep(index: FeatureIndex, refs: References, frame: FrameSettings, loss_weighting: str = "beta",
                      storage: str | None = None, log: Log = print) -> TranscriberResult:
    """The sweep on all training sets together, its best model registered (module docstring). With
    ``frame.start_from_shipped`` every trial fine-tunes the shipped transcriber when it fits the features
    (:func:`adt.frame.shipped.load_fitting`; else from scratch, logged)."""
    init_path = None
    if frame.start_from_shipped:
        stats = index.training_stats(index.training_sets())
        model, where = load_fitting(index.feature_type, *_feature_dims(stats["dir"]))
        if model is None:
            log(f"transcriber sweep: from scratch ({where})")
        else:
            init_path = where
            log(f"transcriber sweep: fine-tuning the shipped {Path(where).name}")
    return TranscriberResult.from_manifest(sweep_combination(
        index.training_sets(), index, refs, frame, architectures=tuple(frame.sweep_architectures),
        loss_weighting=loss_weighting, storage=storage, register=True, log=log, init_path=init_path))


def _feature_dims(stats_dir: str) -> tuple[int, int]:
    """(features, classes) of a training set's statistics (:class:`adt.features.stats.TrainingStats`)."""
    stats = TrainingStats.load(stats_dir)
    return int(stats.mean.shape[0]), int(len(stats.onsets))


def train_combination(combo: tuple[str, ...], index: FeatureIndex, refs: References, frame: FrameSettings, *,
                      loss_weighting: str = "beta", architecture: str = FRAME_CRNN, params: dict | None = None,
                      register: bool = False, log: Log = print) -> dict:
    """Train (or find cached) one transcriber (``architecture`` with ``params``, e.g. a sweep's best)
    on the training splits of ``combo``, standardized with (and, for ``loss_weighting="infrequency"``,
    weighted by) its training statistics; ``register``: also register it as ``adt-frame-crnn``.

    Returns:
        manifest: ``model_path``, ``run_id``, ``history``, ``train_sets``, ``model_uri``,
        ``architecture``, ``best_params``, ``best_val_f``, ``key``.
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

    config = train_config(frame, loss_weighting)
    train_dirs, val_items, stats_info = _inputs(index, refs, combo)
    cache = stage_cache("models", VERSION, [str(d) for d in train_dirs], [str(p) for p, _ in val_items],
                        dataclasses.asdict(config), architecture, params, register, stats_info["key"])

    def train(folder: Path) -> dict:
        name = "+".join(combo)
        log(f"training {architecture} on {name}")
        loss = "weighted BCE (Eq. 10)" if loss_weighting == "beta" else "BCE with infrequency weights (thesis 5.2)"
        run_params = {**dataclasses.asdict(config), **(params or {}), "train_sets": name,
                      "architecture": architecture, "loss": loss, "feature_type": index.feature_type,
                      "target_widening": index.target_widening}
        with tracking.run("transcriber", f"{architecture}[{name}]", params=run_params) as run:
            mlflow.log_artifacts(stats_info["dir"], "training_stats")
            model, history = train_model(train_dirs, val_items, config, architecture, params,
                                         on_epoch=lambda e, m: (mlflow.log_metrics(
                                             {k: v for k, v in m.items() if k != "epoch"}, step=e),
                                             log(f"{name} epoch {e}: {tracking.figures(m, ('epoch',))}")),
                                         stats=TrainingStats.load(stats_info["dir"]))
            path = save_model(model, folder / "model.pt")
            mlflow.log_artifact(str(path), "model")
            uri = None
            if register:
                uri = register_champion(model, evaluation_key(val_items, config), log,
                                        source=f"train:{architecture}[{name}]/{cache.key}",
                                        extra_tags=check_tags(model, val_items),
                                        trained_on=f"train_sets {name}, feature_type {index.feature_type}, "
                                                   f"profile {frame.profile}; validated on {len(val_items)} tracks")
        return {"model_path": str(path), "run_id": run.info.run_id, "history": history, "train_sets": list(combo),
                "model_uri": uri, "architecture": architecture, "best_params": model.hparams,
                "best_val_f": model.best_val_f}

    return cache.get_or_compute(train)


def architecture_study(index: FeatureIndex, refs: References, frame: FrameSettings, main: TranscriberResult,
                       loss_weighting: str = "beta", storage: str | None = None,
                       log: Log = print) -> ArchitectureStudyResult:
    """Thesis Table 6.1: micro F-measure (5 classes, 50 ms) on the test split of each training set,
    of each architecture's best model from that training set's sweep (all architectures, categorical).

    Columns: every dataset with a training split, and all of them together (``main``, the
    transcriber sweep). A cell is NaN when the architecture got no complete trial or the
    training set has no test split. With one architecture in the profile there is no study:
    the result says so (``cells`` empty).
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

    architectures = tuple(frame.sweep_architectures)
    if len(architectures) < 2:
        return ArchitectureStudyResult(
            key=f"single-{architectures[0]}", cells=[], run_id=None,
            markdown=f"one architecture in profile {frame.profile!r} ({architectures[0]}): no study")
    all_sets = tuple(main.train_sets)
    combos = [(d,) for d in index.training_sets() if (d,) != all_sets] + [all_sets]
    started = time.time()  # the study's MLflow run spans its sweeps
    sweeps = {c: main.to_json() if c == all_sets else
              sweep_combination(c, index, refs, frame, architectures=architectures, loss_weighting=loss_weighting,
                                storage=storage, log=log) for c in combos}
    cache = stage_cache("architecture_study", VERSION, [s["key"] for s in sweeps.values()], index.key)

    def study(folder: Path) -> dict:
        cells = []
        for combo, sweep in sweeps.items():
            items = scored_items(index, refs, combo, "test")
            for arch in architectures:
                best = sweep["per_architecture"].get(arch)
                r = evaluate(load_model(best["model_path"]), items) if best and items else None
                cells.append({"architecture": arch, "train": "+".join(combo), "val_f": best["val_f"] if best else None,
                              "test_f": r["f"] if r else float("nan"), "trial": best["trial"] if best else None})
        table = pd.DataFrame(cells)
        matrix = (table.pivot(index="architecture", columns="train", values="test_f")
                  .reindex(index=list(architectures), columns=["+".join(c) for c in combos]))
        md = matrix.to_markdown(floatfmt=".4f")
        with tracking.run("transcriber", "architecture-study", started=started,
                          params={"architectures": ",".join(architectures), "train_sets": combos}) as run:
            mlflow.log_table(table, "architecture_study.json")
            mlflow.log_text(md, "architecture_study.md")
        return {"cells": table.to_dict("records"), "markdown": md, "run_id": run.info.run_id}

    return ArchitectureStudyResult.from_manifest(cache.get_or_compute(study))


def not_worse_than_shipped(transcriber: TranscriberResult) -> tuple[bool, dict]:
    """The asset check on the transcriber sweep (issue 28; :func:`adt.frame.shipped.not_worse`): its best model
    finds onsets and its validation F is at least the shipped transcriber's on the same validation data
    (``transcriber``: the ``transcriber`` stage's result). Passes when the shipped model could not be scored
    (missing, or other features): nothing to compare.

    Returns:
        (passed, metadata: both F-measures, or why there is no comparison, and where the sweep started).
    """
    passed, meta = not_worse(float(transcriber.best_val_f), transcriber.shipped or {})
    if isinstance(meta.get(SHIPPED_F_TAG), float):
        meta["started_from"] = transcriber.started_from
    return passed, meta
