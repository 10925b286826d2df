"""Hyperparameter sweeps of the transcribers with Optuna, tracked in MLflow (thesis Sec. 5.5-5.6).

One Optuna study per (training combination, architecture) or per (training
combination, all architectures), the architecture then being a categorical
parameter. Sampler: TPE (Bayesian optimization, as the thesis's ``OptunaSearch``),
seeded with ``seed`` + the trials already in the study so a resumed study does not
replay its first draws (with a ``budget``: each trial with ``seed`` + its number,
:func:`adt.frame.shared_study.run_budget`); pruner: ``MedianPruner`` on the validation micro F-measure
reported after every epoch (:func:`adt.frame.recipe.train_model`). Search space (thesis
Table 5.1): learning rate log-uniform in [1e-4, 5e-3], weight decay log-uniform in
[1e-6, 1e-2], every architecture-specific hyperparameter a categorical choice
(``adt.frame.architectures.suggest``; :func:`suggest_frame_crnn` for the tatum paper's
frame baseline, whose GRU layers and hidden size the paper also tuned with Optuna).
Architecture parameters are named ``<architecture>.<kwarg>``, ``lr`` and
``weight_decay`` are shared. With several architectures a new study first runs one
trial per architecture (enqueued), so every architecture gets at least one model.

MLflow: :func:`run_sweep` opens one parent run; each trial is a nested run with its
parameters, per-epoch curves (loss, val_f, lr, grad_norm) and its checkpoint
(``model/trial-NNNN.pt``, :func:`adt.frame.checkpoint.save_model`) as artifact. The best
trial's model can be registered as ``tracking.MODEL_NAME`` (weights only, once per study and trial:
:func:`adt.frame.champion.register_trial`) and promoted to the alias ``champion`` unless the champion scored
higher on the same validation data (:func:`adt.frame.champion.promote`; otherwise it becomes ``challenger``).

Resumable: the study's trial budget (a sweep interrupted between trials runs only the missing
ones), and within a trial per-epoch checkpoints (``epochs-<params>.pt``,
:func:`adt.frame.recipe.train_model`): trials send Optuna heartbeats, a trial whose process died is
marked FAILED once its heartbeat is :data:`adt.frame.shared_study.GRACE_S` old and retried with the same parameters
(``optuna.storages.RetryHeartbeatStaleTrialCallback``), and the retry resumes from the dead trial's last epoch:
the file in ``out_dir``, or, on a worker that shares no folder with the dead one, the copy kept in the dead
trial's MLflow run (:mod:`adt.frame.trial_store`). Workers share no folder at all when MLflow is a tracking
server with proxied artifacts: the study's best checkpoint is fetched from its trial's run as well.

Storage: None means the SQLite file ``<data>/optuna/transcriber.db``; any Optuna RDB
URL works, and the study is opened with ``load_if_exists=True``, so several worker
processes calling :func:`run_sweep` with the same storage and study name share one
study (each runs ``n_trials`` more trials; with ``budget``, all together finish exactly the budget,
:mod:`adt.frame.shared_study`, and the study's best model is registered once, by the worker that trained it,
:func:`adt.frame.shared_study.registered_elsewhere`). docs/scale-out.md: PostgreSQL for the studies, MLflow and Dagster.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sqlalchemy.engine import make_url

from adt import tracking
from adt.cache import cache_key
from adt.config import data_dir
from adt.features.stats import TrainingStats
from adt.frame import architectures, champion, shared_study, trial_store
from adt.frame.checkpoint import FRAME_CRNN, load_model, save_model
from adt.frame.recipe import TrainConfig, train_model
from adt.frame.shipped import sha256
from adt.stores import retry_on_schema_race

#: Thesis Table 5.1: optimizer search space.
LR_RANGE = (1e-4, 5e-3)
WEIGHT_DECAY_RANGE = (1e-6, 1e-2)
#: FrameCRNN choices: the tatum paper tuned "the number of GRU layers, the hidden dimension" with Optuna
#: (Sec. IV-D; it found 3 x 98); conv blocks and dropout (0.3) stay at the TrainConfig values.
FRAME_CRNN_SPACE = {"hidden": (32, 64, 98), "layers": (1, 2, 3)}
#: Fine-tuning a given network (``run_sweep(init_path=...)``): its architecture stays, the learning rate is
#: drawn below the thesis's range (the shipped transcriber was trained at 5e-4).
FINETUNE_LR_RANGE = (5e-5, 5e-4)


def default_storage() -> str:
    """The SQLite study storage ``<data>/optuna/transcriber.db`` (folder created)."""
    path = data_dir() / "optuna" / "transcriber.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def masked(storage: str) -> str:
    """``storage`` with any password hidden (for logs and MLflow params)."""
    try:
        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy knows: log nothing secret
        return storage.split("@")[-1]


def architecture_names() -> tuple[str, ...]:
    """``"frame_crnn"`` followed by ``adt.frame.architectures.ARCHITECTURES`` (when that module is present)."""
    try:
        from adt.frame.architectures import ARCHITECTURES
    except ImportError:
        return (FRAME_CRNN,)
    return (FRAME_CRNN, *[a for a in ARCHITECTURES if a != FRAME_CRNN])


def suggest_frame_crnn(trial: Any) -> dict:
    """Hyperparameters of :class:`adt.frame.architectures.FrameCRNN` from an Optuna trial, named like
    ``adt.frame.architectures.suggest``'s: ``"frame_crnn.<kwarg>"`` (``channels`` c: blocks (c, 2c)),
    plus ``"lr"`` and ``"weight_decay"``."""
    params = {f"{FRAME_CRNN}.{name}": trial.suggest_categorical(f"{FRAME_CRNN}.{name}", list(choices))
              for name, choices in FRAME_CRNN_SPACE.items()}
    params["lr"] = trial.suggest_float("lr", *LR_RANGE, log=True)
    params["weight_decay"] = trial.suggest_float("weight_decay", *WEIGHT_DECAY_RANGE, log=True)
    return params


def suggest_finetune(trial: Any, hparams: dict) -> dict:
    """Fine-tuning a network of hyperparameters ``hparams``: those stay, ``lr`` (:data:`FINETUNE_LR_RANGE`) and
    ``weight_decay`` are drawn."""
    params = {k: v for k, v in hparams.items() if k not in ("lr", "weight_decay")}
    params["lr"] = trial.suggest_float("lr", *FINETUNE_LR_RANGE, log=True)
    params["weight_decay"] = trial.suggest_float("weight_decay", *WEIGHT_DECAY_RANGE, log=True)
    return params


def suggest_params(trial: Any, architecture: str) -> dict:
    """The trial's hyperparameters for ``architecture`` (includes ``lr`` and ``weight_decay``).

    Raises:
        ValueError: an unknown architecture (from ``adt.frame.architectures.suggest``).
    """
    if architecture == FRAME_CRNN:
        return suggest_frame_crnn(trial)

    return dict(architectures.suggest(trial, architecture))


@dataclasses.dataclass
class SweepResult:
    """What :func:`run_sweep` found. ``trials``: one record per trial of the whole study
    (trial, state, val_f, architecture, params, best_epoch, epochs, seconds, mlflow_run_id)."""

    study_name: str
    storage: str  # password hidden
    n_trials: int  # in the study, all calls together
    best_trial: int
    best_value: float  # validation micro F of the best trial's selected epoch
    architecture: str
    params: dict
    model_path: str
    history: list[dict]
    run_id: str  # this call's parent MLflow run
    trial_run_ids: list[str]  # this call's nested runs
    trials: list[dict]
    #: architecture -> its best complete trial: trial, val_f, params, model_path
    per_architecture: dict = dataclasses.field(default_factory=dict)
    model_uri: str | None = None  # models:/<name>/<version> when registered
    champion_uri: str | None = None  # models:/<name>@champion when registered
    #: when registered: the shipped transcriber's F on the same validation data (adt.frame.shipped.score_shipped)
    shipped: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def trial_records(study: Any) -> list[dict]:
    """One JSON-able record per trial of ``study`` (see :class:`SweepResult`)."""
    out = []
    for t in study.trials:
        out.append({"trial": t.number, "state": t.state.name,
                    "val_f": float(t.value) if t.value is not None else None,
                    "architecture": t.user_attrs.get("architecture"), "params": t.user_attrs.get("params", {}),
                    "best_epoch": t.user_attrs.get("best_epoch"),
                    "epochs": t.user_attrs.get("epochs", len(t.intermediate_values)),
                    "seconds": t.user_attrs.get("seconds"), "mlflow_run_id": t.user_attrs.get("mlflow_run_id")})
    return out


def trials_markdown(records: list[dict]) -> str:
    """The trials as a Markdown table (parameters abbreviated)."""
    def fmt(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    rows = [{"trial": r["trial"], "state": r["state"], "architecture": r["architecture"],
             "val F": "-" if r["val_f"] is None else f"{r['val_f']:.3f}", "epochs": r["epochs"],
             "params": ", ".join(f"{k}={fmt(v)}" for k, v in sorted((r["params"] or {}).items()))} for r in records]
    return pd.DataFrame(rows).to_markdown(index=False) if rows else "(no trials)"


def best_per_architecture(study: Any) -> dict[str, Any]:
    """The best complete trial (highest validation F, earliest on ties) of each architecture in ``study``."""
    best: dict[str, Any] = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        arch = t.user_attrs.get("architecture")
        if arch is not None and (arch not in best or t.value > best[arch].value):
            best[arch] = t
    return best


@dataclasses.dataclass(frozen=True)
class SweepSetup:
    """What every trial and helper of one :func:`run_sweep` call shares: its arguments of the same names
    (``storage`` and ``log`` with their defaults filled in; ``startup``: the pruner's startup trials)."""

    train_dirs: list[Path]
    val_items: list[tuple[Path, dict[str, np.ndarray]]]
    out_dir: Path
    config: TrainConfig
    stats: TrainingStats | None
    architectures: tuple[str, ...]
    init_path: str | Path | None
    stage: str
    study_name: str
    storage: str
    log: Callable[[str], None]
    startup: int
    pruner_warmup_epochs: int
    run_params: dict | None
    inputs_key: str | None = None
    heartbeat: tuple[int, int] | None = None


def run_sweep(train_dirs: list[Path], val_items: list[tuple[Path, dict[str, np.ndarray]]], out_dir: str | Path, *,
              n_trials: int, config: TrainConfig = TrainConfig(), architectures: Sequence[str] = (FRAME_CRNN,),
              budget: int | None = None, study_name: str = "transcriber", storage: str | None = None,
              stats: TrainingStats | None = None, register: bool = False, stage: str = "transcriber",
              run_name: str | None = None, run_params: dict | None = None,
              artifacts: dict[str, str | Path] | None = None, pruner_startup_trials: int | None = None,
              pruner_warmup_epochs: int = 0, log: Callable[[str], None] | None = None,
              workers: int | None = None, init_path: str | Path | None = None, parent_run_id: str | None = None,
              inputs_key: str | None = None, heartbeat: tuple[int, int] | None = None) -> SweepResult:
    """Run ``n_trials`` Optuna trials of :func:`adt.frame.recipe.train_model` and keep the best model.

    Args:
        train_dirs, val_items, stats: as :func:`adt.frame.recipe.train_model` (validation tracks required: the
            objective).
        out_dir: folder for the trial checkpoints ``trial-NNNN.pt``.
        n_trials: trials this call runs (a shared study grows by this many), or with ``budget``
            at most this many.
        budget: the study's total of finished (complete or pruned) trials: a call runs only
            what is missing, so a sweep interrupted by the end of a session resumes where it stopped;
            workers sharing the study finish exactly the total together (:func:`adt.frame.shared_study.run_budget`).
        config: the fixed training settings (epochs, steps, batch, loss, peak picking, seed: the same for all).
        architectures: one name (a per-architecture study) or several (the architecture
            is a categorical parameter ``"architecture"``); see :func:`architecture_names`.
        study_name, storage: the Optuna study; storage None -> :func:`default_storage`.
        register: register the best trial's model as ``tracking.MODEL_NAME`` and promote it
            (:func:`adt.frame.champion.register_trial`), unless another worker of the study does
            (:func:`adt.frame.shared_study.registered_elsewhere`).
        stage, run_name, run_params: the parent MLflow run (experiment ``adt/<stage>``; ``parent_run_id``: the
            run it is nested under, a helper's under the sweep's);
            ``artifacts``: artifact path -> local folder, logged to it (e.g. the training statistics).
        pruner_startup_trials: complete trials before the MedianPruner prunes (default min(5, max(2, n_trials
            // 2)): the median of one trial is no comparison); pruner_warmup_epochs: epochs before it may.
        log: progress messages (e.g. Dagster's ``context.log.info``).
        workers: with ``budget``, processes on this machine that run the trials together: this one and
            ``workers - 1`` helpers (:func:`adt.frame.shared_study.start_helpers`); None:
            :func:`adt.frame.shared_study.local_workers`.
        init_path: a transcriber checkpoint every trial fine-tunes (:func:`suggest_finetune`: its architecture
            and widths stay, ``architectures`` must name its architecture; no per-epoch resume); None: from
            scratch. The registered version is also compared with the shipped transcriber
            (:mod:`adt.frame.shipped`) either way.
        inputs_key: names the inputs in the per-epoch checkpoints' fingerprint in place of their paths (workers
            with their own data folders resume each other's trials, :mod:`adt.frame.trial_store`); None: the paths.
        heartbeat: (interval, grace) seconds of the trials' Optuna heartbeats; None: :mod:`adt.frame.shared_study`'s.

    Returns:
        :class:`SweepResult` over the whole study (all calls that shared it).

    Raises:
        ValueError: no validation tracks, no architectures, or n_trials < 1.
        RuntimeError: the study has no complete trial, or the best trial's checkpoint is gone.
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY

    if not val_items:
        raise ValueError("a sweep needs validation tracks (its objective is their micro F-measure)")
    architectures = tuple(architectures)
    if not architectures or int(n_trials) < 1:
        raise ValueError(f"need at least one architecture and one trial, got {architectures} and {n_trials}")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    startup = pruner_startup_trials if pruner_startup_trials is not None else min(5, max(2, int(n_trials) // 2))
    setup = SweepSetup(train_dirs, val_items, Path(out_dir), config, stats, architectures, init_path, stage,
                       study_name, storage or default_storage(), log or (lambda msg: None), startup,
                       pruner_warmup_epochs, run_params, inputs_key, tuple(heartbeat) if heartbeat else None)
    study, rdb = open_study(setup)
    trial_run_ids: list[str] = []
    with tracking.run(stage, run_name or f"sweep[{study_name}]", params=sweep_params(setup, n_trials),
                      parent_run_id=parent_run_id) as parent:
        for name, folder in (artifacts or {}).items():
            mlflow.log_artifacts(str(folder), name)
        objective = functools.partial(train_trial, setup=setup, experiment_id=parent.info.experiment_id,
                                      run_ids=trial_run_ids)
        if budget is None:
            study.optimize(objective, n_trials=int(n_trials))
        else:
            shared_study.run_with_helpers(study, rdb, objective, setup, int(budget), int(n_trials), workers,
                                          parent.info.run_id)
        result, best = sweep_result(study, setup, parent.info.run_id, trial_run_ids)
        if register:
            register_best(result, best, setup, trial_run_ids, parent.info.start_time)
    return result


def sweep_params(setup: SweepSetup, n_trials: int) -> dict:
    """The sweep run's MLflow parameters: the study (storage without password), sampler and pruner, the fixed
    training settings (``train.<field>``) and the caller's ``run_params``."""
    return {"study": setup.study_name, "storage": masked(setup.storage), "n_trials": n_trials,
            "architectures": ",".join(setup.architectures), "sampler": "TPE",
            "pruner": f"Median(startup={setup.startup})",
            **{f"train.{k}": v for k, v in dataclasses.asdict(setup.config).items()}, **(setup.run_params or {})}


def open_study(setup: SweepSetup) -> tuple[Any, Any]:
    """The sweep's Optuna study (created, or loaded: shared by every worker that names it) and its RDB storage.

    Trials send heartbeats (every ``setup.heartbeat[0]`` s, default :data:`adt.frame.shared_study.HEARTBEAT_S`): one
    whose process died (none for ``setup.heartbeat[1]`` s, default :data:`adt.frame.shared_study.GRACE_S`) is marked
    FAILED at the next trial start and retried with the same parameters, which resumes from its per-epoch
    checkpoint (here, or fetched from the stores: :mod:`adt.frame.trial_store`). Pruner: ``MedianPruner``
    (``setup.startup`` complete trials, ``setup.pruner_warmup_epochs``); sampler: TPE seeded with the config's
    seed + the trials already in the study. A new study of several architectures first gets one enqueued trial
    per architecture.
    """
    pruner = optuna.pruners.MedianPruner(n_startup_trials=setup.startup, n_warmup_steps=setup.pruner_warmup_epochs)
    interval, grace = setup.heartbeat or (shared_study.HEARTBEAT_S, shared_study.GRACE_S)
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = retry_on_schema_race(lambda: optuna.storages.RDBStorage(  # N workers on a fresh database
            setup.storage, heartbeat_interval=int(interval), grace_period=int(grace),
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)))
    study = optuna.create_study(study_name=setup.study_name, storage=rdb, direction="maximize",
                                load_if_exists=True, pruner=pruner)
    n_before = len(study.trials)
    study.sampler = optuna.samplers.TPESampler(seed=setup.config.seed + n_before)
    if len(setup.architectures) > 1 and n_before == 0:
        for arch in setup.architectures:  # one model per architecture before TPE takes over
            study.enqueue_trial({"architecture": arch}, skip_if_exists=True)  # once, with workers starting together
    return study, rdb


def train_trial(trial: optuna.Trial, setup: SweepSetup, experiment_id: str, run_ids: list[str]) -> float:
    """One trial: its architecture and hyperparameters drawn (:func:`suggest_params`; fine-tuning
    ``setup.init_path``: :func:`suggest_finetune`), the model trained (:func:`adt.frame.recipe.train_model`,
    reporting to the study's pruner; a retried trial resumes its per-epoch checkpoint, here or fetched from the
    run of the try it retries, :class:`adt.frame.trial_store.EpochCheckpoints`) in a nested MLflow run of
    experiment ``experiment_id`` (its id appended to ``run_ids``), its checkpoint saved as ``trial-NNNN.pt`` and
    logged to the run (``model/``: where other workers fetch it, :func:`adt.frame.trial_store.local_checkpoint`).

    Returns:
        the model's best validation micro F.

    Raises:
        optuna.TrialPruned: the pruner stopped it.
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY

    if setup.init_path is not None:
        init = load_model(setup.init_path)
        arch, params = init.architecture, suggest_finetune(trial, init.hparams)
    elif len(setup.architectures) > 1:
        init, arch = None, trial.suggest_categorical("architecture", list(setup.architectures))
    else:
        init, arch = None, setup.architectures[0]
    if init is None:
        params = suggest_params(trial, arch)
    trial.set_user_attr("architecture", arch)
    trial.set_user_attr("params", params)
    t0, pruned, log, study_name = time.perf_counter(), None, setup.log, setup.study_name
    with mlflow.start_run(run_name=f"trial-{trial.number}[{arch}]", nested=True,
                          experiment_id=experiment_id) as child:
        run_ids.append(child.info.run_id)
        trial.set_user_attr("mlflow_run_id", child.info.run_id)
        mlflow.set_tags({**tracking.provenance(setup.stage, f"trial {trial.number} of sweep {study_name}"),
                         "optuna.study": study_name, "optuna.trial": trial.number, "architecture": arch})
        mlflow.log_params({"architecture": arch, **params})
        log(f"{study_name} trial {trial.number}: {arch} {tracking.figures(params)}")
        # a retried trial resumes it: here, or fetched from the stores (another worker's try)
        epochs = trial_store.EpochCheckpoints(setup.out_dir / f"epochs-{cache_key(arch, params)[:16]}.pt", log)
        if init is None:
            epochs.fetch(trial)

        def on_epoch(epoch: int, m: dict) -> None:
            epochs.seen(trial, epoch)
            mlflow.log_metrics({k: v for k, v in m.items() if k != "epoch"}, step=epoch)
            log(f"trial {trial.number} epoch {epoch}: loss {m['loss']:.4f} val F {m['val_f']:.4f} lr {m['lr']:.2e}")

        try:
            model, history = train_model(setup.train_dirs, setup.val_items, setup.config, arch, params,
                                         on_epoch=on_epoch, stats=setup.stats, trial=trial, init=init,
                                         checkpoint=epochs.path if init is None else None,
                                         inputs_key=setup.inputs_key, on_checkpoint=epochs.store)
        except optuna.TrialPruned as exc:
            pruned = exc
            mlflow.set_tag("optuna.state", "PRUNED")
            epochs.drop()
        else:
            path = save_model(model, setup.out_dir / f"trial-{trial.number:04d}.pt")
            mlflow.log_artifact(str(path), trial_store.MODEL_DIR)  # where other workers fetch it
            trial.set_user_attr(trial_store.SHA256_ATTR, sha256(path))
            epochs.drop()
            mlflow.log_metric("best_val_f", model.best_val_f)
            mlflow.set_tag("optuna.state", "COMPLETE")
            for key, value in (("model_path", str(path)), ("best_epoch", model.best_epoch),
                               ("epochs", len(history)), ("history", history)):
                trial.set_user_attr(key, value)
        trial.set_user_attr("seconds", time.perf_counter() - t0)
    if pruned is not None:
        log(f"trial {trial.number} pruned: {pruned}")
        raise pruned
    return float(model.best_val_f)


def sweep_result(study: Any, setup: SweepSetup, run_id: str, trial_run_ids: list[str]) -> tuple[SweepResult, Any]:
    """The :class:`SweepResult` of the whole study and its best trial; logs the best trial's parameters, its
    validation F and the trials table (``trials.md``) to the active (parent) run. The best trial's checkpoint (and
    each architecture's best) is a file in ``setup.out_dir``: fetched from its trial's run when another worker
    trained it (:func:`adt.frame.trial_store.local_checkpoint`).

    Raises:
        RuntimeError: the study has no complete trial, or the best trial's checkpoint is neither here nor in its
            run.
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise RuntimeError(f"study {setup.study_name!r} has no complete trial")
    best = study.best_trial
    model_path = trial_store.local_checkpoint(best, setup.out_dir, setup.log)
    records = trial_records(study)
    mlflow.log_params({"best.trial": best.number, "best.architecture": best.user_attrs["architecture"],
                       **{f"best.{k}": v for k, v in best.user_attrs["params"].items()}})
    mlflow.log_metric("best_val_f", float(best.value))
    mlflow.log_text(trials_markdown(records), "trials.md")
    result = SweepResult(study_name=setup.study_name, storage=masked(setup.storage), n_trials=len(study.trials),
                         best_trial=best.number, best_value=float(best.value),
                         architecture=best.user_attrs["architecture"], params=dict(best.user_attrs["params"]),
                         model_path=model_path, history=list(best.user_attrs.get("history", [])),
                         run_id=run_id, trial_run_ids=trial_run_ids, trials=records,
                         per_architecture={a: {"trial": t.number, "val_f": float(t.value),
                                               "params": dict(t.user_attrs["params"]),
                                               "model_path": model_path if t.number == best.number else
                                               trial_store.local_checkpoint(t, setup.out_dir, setup.log)}
                                           for a, t in best_per_architecture(study).items()})
    return result, best


def register_best(result: SweepResult, best: Any, setup: SweepSetup, own_run_ids: list[str], since_ms: int) -> None:
    """Register the study's ``best`` trial's model and promote it (:func:`adt.frame.champion.register_trial`, in
    the active run; ``result.model_uri`` and ``result.shipped`` set) unless another worker of the study, running
    since ``since_ms``, trained and registers it (:func:`adt.frame.shared_study.registered_elsewhere`); then
    ``result.champion_uri``: the registry's champion."""
    if not shared_study.registered_elsewhere(best, own_run_ids, since_ms, setup.log):
        result.model_uri, result.shipped = champion.register_trial(
            result.model_path, setup.val_items, setup.config, source=f"optuna:{setup.study_name}/trial-{best.number}",
            trained_on=trained_on(setup), log=setup.log)
    result.champion_uri = champion.champion_uri()


def trained_on(setup: SweepSetup) -> str:
    """What the registered version was trained on, for its description: the run's training sets, profile and
    feature type (else the shard folders), the validation tracks, the checkpoint fine-tuned."""
    out = ", ".join(f"{k} {v}" for k, v in (setup.run_params or {}).items()
                    if k in ("train_sets", "profile", "feature_type")) or \
        f"the shards {', '.join(str(d) for d in setup.train_dirs)}"
    out += f"; validated on {len(setup.val_items)} tracks"
    if setup.init_path is not None:
        out += f"; fine-tuned from {Path(setup.init_path).name}"
    return out
