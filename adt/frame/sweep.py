"""Hyperparameter sweeps of the transcribers with Optuna, tracked in MLflow (thesis Sec. 5.5-5.6).

One Optuna study per (training combination, architecture) or per (training
combination, all architectures), the architecture then being a categorical
parameter. Sampler: TPE (Bayesian optimization, as the thesis's ``OptunaSearch``),
seeded with ``seed`` + the trials already in the study so a resumed study does not
replay its first draws (with a ``budget``: each trial with ``seed`` + its number,
:func:`run_budget`); pruner: ``MedianPruner`` on the validation micro F-measure
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
(``model/trial-NNNN.pt``, :func:`adt.frame.recipe.save_model`) as artifact. The best
trial's model can be registered as ``tracking.MODEL_NAME`` (weights only, once per study and trial:
:func:`adt.registry.register`) and promoted to the alias ``champion`` unless the champion scored higher
on the same validation data (:func:`adt.tracking.promote`; otherwise it becomes ``challenger``).

Resumable: the study's trial budget (a sweep interrupted between trials runs only the missing
ones), and within a trial per-epoch checkpoints (``epochs-<params>.pt``,
:func:`adt.frame.recipe.train_model`): trials send Optuna heartbeats, a trial whose process died is
marked FAILED once its heartbeat is :data:`GRACE_S` old and retried with the same parameters
(``optuna.storages.RetryHeartbeatStaleTrialCallback``), and the retry resumes from the dead trial's last epoch.

Storage: None means the SQLite file ``<data>/optuna/transcriber.db``; any Optuna RDB
URL works, and the study is opened with ``load_if_exists=True``, so several worker
processes calling :func:`run_sweep` with the same storage and study name share one
study (each runs ``n_trials`` more trials; with ``budget``, all together finish exactly the budget,
:func:`run_budget`, and the study's best model is registered once, by the worker that trained it,
:func:`registered_elsewhere`). docs/scale-out.md: PostgreSQL for the studies, MLflow and Dagster.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adt.config import data_dir
from adt.features.stats import TrainingStats
from adt.frame.recipe import FRAME_CRNN, TrainConfig, load_model, save_model, train_model

#: Thesis Table 5.1: optimizer search space.
LR_RANGE = (1e-4, 5e-3)
WEIGHT_DECAY_RANGE = (1e-6, 1e-2)
#: FrameCRNN choices: the tatum paper tuned "the number of GRU layers, the hidden dimension" with Optuna
#: (Sec. IV-D; it found 3 x 98); conv blocks and dropout (0.3) stay at the TrainConfig values.
FRAME_CRNN_SPACE = {"hidden": (32, 64, 98), "layers": (1, 2, 3)}
#: Fine-tuning a given network (``run_sweep(init_path=...)``): its architecture stays, the learning rate is
#: drawn below the thesis's range (the shipped transcriber was trained at 5e-4).
FINETUNE_LR_RANGE = (5e-5, 5e-4)


#: Optuna heartbeat of a running trial, and how long without one before it counts as dead (seconds).
HEARTBEAT_S, GRACE_S = 60, 180


def default_storage() -> str:
    """The SQLite study storage ``<data>/optuna/transcriber.db`` (folder created)."""
    path = data_dir() / "optuna" / "transcriber.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def masked(storage: str) -> str:
    """``storage`` with any password hidden (for logs and MLflow params)."""
    from sqlalchemy.engine import make_url

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
    from adt.frame import architectures

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
    import pandas as pd

    def fmt(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    rows = [{"trial": r["trial"], "state": r["state"], "architecture": r["architecture"],
             "val F": "-" if r["val_f"] is None else f"{r['val_f']:.3f}", "epochs": r["epochs"],
             "params": ", ".join(f"{k}={fmt(v)}" for k, v in sorted((r["params"] or {}).items()))} for r in records]
    return pd.DataFrame(rows).to_markdown(index=False) if rows else "(no trials)"


def best_per_architecture(study: Any) -> dict[str, Any]:
    """The best complete trial (highest validation F, earliest on ties) of each architecture in ``study``."""
    import optuna

    best: dict[str, Any] = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        arch = t.user_attrs.get("architecture")
        if arch is not None and (arch not in best or t.value > best[arch].value):
            best[arch] = t
    return best


#: Study states that take a place in a trial budget: finished, running, or enqueued to run.
FINISHED = ("COMPLETE", "PRUNED")
LIVE = (*FINISHED, "RUNNING", "WAITING")
#: How often a worker whose budget is taken by other workers' running trials looks again (seconds).
POLL_S = 2.0
#: How long a worker waits for the worker that trained the best model to register it (seconds).
REGISTER_WAIT_S = 600


class OverBudget(Exception):
    """A trial started although the budget is taken (another worker started one at the same time): it
    ends FAILED (user attribute ``over_budget``) without training."""


def _states(names: Sequence[str]) -> tuple:
    import optuna

    return tuple(optuna.trial.TrialState[n] for n in names)


def admitted(storage: Any, study: Any, trial: Any, budget: int) -> bool:
    """Whether ``trial`` (just started) has a place in the study's ``budget``: fewer than ``budget``
    trials numbered before it are finished, running or waiting (:data:`LIVE`), read afresh from the storage.

    Lock-free and safe with any number of workers: trial numbers are a total order (Optuna numbers a
    new trial under a lock on the study row), a trial's decision depends only on the trials before it,
    and a trial not live when it is read (FAIL) never runs again (a retry is a new, later trial). So
    at most ``budget`` admitted trials are ever live; one that fails leaves its place to a later trial.
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    before = [t for t in storage.get_all_trials(study_id, deepcopy=False, states=_states(LIVE))
              if t.number < trial.number]
    return len(before) < budget


#: User attribute of every trial this release starts: the worker, ``host:pid``.
WORKER_ATTR = "adt.worker"


def fail_orphans(storage: Any, study_id: int) -> list[int]:
    """Mark FAILED the RUNNING trials that never had a heartbeat and started more than :data:`GRACE_S` ago.

    Optuna's :func:`optuna.storages.fail_stale_trials` only sees trials with a heartbeat; a trial left RUNNING
    by a process of a release without heartbeats (no :data:`WORKER_ATTR`) would otherwise hold a place of the
    budget for good, and the workers would wait for it forever. Returns the trial numbers marked.
    """
    import optuna

    now, marked = datetime.datetime.now(), []  # Optuna stores naive local start times
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if WORKER_ATTR in t.user_attrs or t.datetime_start is None:
            continue
        if (now - t.datetime_start).total_seconds() > GRACE_S:
            try:
                if storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL):
                    marked.append(t.number)
            except optuna.exceptions.UpdateFinishedTrialError:  # another worker marked it first
                pass
    return marked


def run_budget(study: Any, storage: Any, objective: Callable, budget: int, n_trials: int,
               log: Callable[[str], None], sampler_for: Callable[[int], Any] | None = None) -> int:
    """Run trials of ``objective`` one at a time until the study has ``budget`` finished (complete or
    pruned) trials, at most ``n_trials`` of them here; returns how many ran here.

    Before each trial the counts are read afresh; while other workers' running trials fill the budget
    this worker waits (polls every :data:`POLL_S`; a dead worker's trial goes stale after
    :data:`GRACE_S` and is retried; one without any heartbeat is failed by :func:`fail_orphans`), so every
    worker returns with the whole budget finished and sees the
    same best trial. A trial that starts in the same instant as another worker's last place is
    refused by :func:`admitted` (FAILED, ``over_budget``), so the budget is never exceeded.
    ``sampler_for(trial number)``: a sampler for each trial (seeded by the trial number, so workers that
    start together do not draw the same parameters; with TPE the draw still depends on the trials finished by then).
    """
    import optuna

    study_id = storage.get_study_id_from_name(study.study_name)

    def count(names: Sequence[str]) -> int:
        return len(storage.get_all_trials(study_id, deepcopy=False, states=_states(names)))

    refused: list[int] = []

    def guarded(trial: Any) -> float:
        trial.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}")
        if not admitted(storage, study, trial, budget):
            trial.set_user_attr("over_budget", True)
            refused.append(trial.number)
            raise OverBudget(f"trial {trial.number}: the budget of {budget} is taken by other workers' trials")
        if sampler_for is not None:
            study.sampler = sampler_for(trial.number)
        return objective(trial)

    ran, said = 0, False
    finished = count(FINISHED)
    log(f"study {study.study_name}: {finished} of {budget} trials finished before, running at most "
        f"{min(n_trials, max(0, budget - finished))} here")
    while ran < n_trials and (finished := count(FINISHED)) < budget:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial: FAILED, retried
        for number in fail_orphans(storage, study_id):
            log(f"study {study.study_name}: trial {number} was left RUNNING without heartbeats: marked FAILED")
        if count((*FINISHED, "RUNNING")) >= budget:  # the other workers' running trials take the rest
            if not said:
                log(f"study {study.study_name}: {finished} of {budget} finished, the rest running elsewhere: waiting")
                said = True
            time.sleep(POLL_S)
            continue
        n_refused = len(refused)
        study.optimize(guarded, n_trials=1, catch=(OverBudget,))
        ran += len(refused) == n_refused
    return ran


def run_sweep(train_dirs: list[Path], val_items: list[tuple[Path, dict[str, np.ndarray]]], out_dir: str | Path, *,
              n_trials: int, config: TrainConfig = TrainConfig(), architectures: Sequence[str] = (FRAME_CRNN,),
              budget: int | None = None,
              study_name: str = "transcriber", storage: str | None = None, stats: TrainingStats | None = None,
              register: bool = False, stage: str = "transcriber", run_name: str | None = None,
              run_params: dict | None = None, artifacts: dict[str, str | Path] | None = None,
              pruner_startup_trials: int | None = None,
              pruner_warmup_epochs: int = 0, log: Callable[[str], None] | None = None,
              workers: int | None = None, init_path: str | Path | None = None,
              parent_run_id: str | None = None) -> SweepResult:
    """Run ``n_trials`` Optuna trials of :func:`adt.frame.recipe.train_model` and keep the best model.

    Args:
        train_dirs, val_items, stats: as :func:`adt.frame.recipe.train_model` (validation
            tracks are required: they are the objective).
        out_dir: folder for the trial checkpoints ``trial-NNNN.pt``.
        n_trials: trials this call runs (a shared study grows by this many), or with ``budget``
            at most this many.
        budget: the study's total of finished (complete or pruned) trials: a call runs only
            what is missing, so a sweep interrupted by the end of a session resumes where it stopped;
            workers sharing the study finish exactly the total together (:func:`run_budget`).
        config: the fixed training settings (epochs, steps, batch, loss, peak picking,
            seed: every trial trains with the same seed).
        architectures: one name (a per-architecture study) or several (the architecture
            is a categorical parameter ``"architecture"``); see :func:`architecture_names`.
        study_name, storage: the Optuna study; storage None -> :func:`default_storage`.
        register: register the best trial's model as ``tracking.MODEL_NAME`` and promote it
            (:func:`register_champion`).
        stage, run_name, run_params: the parent MLflow run (experiment ``adt/<stage>``; ``parent_run_id``: the
            run it is nested under, a helper's under the sweep's);
            ``artifacts``: artifact path -> local folder, logged to it (e.g. the training statistics).
        pruner_startup_trials: complete trials before the MedianPruner prunes
            (default min(5, max(2, n_trials // 2)): the median of one trial is no comparison);
            pruner_warmup_epochs: epochs before it may.
        log: progress messages (e.g. Dagster's ``context.log.info``).
        workers: with ``budget``, processes on this machine that run the trials together: this one and
            ``workers - 1`` helpers (:func:`start_helpers`); None: :func:`local_workers`.
        init_path: a transcriber checkpoint every trial fine-tunes (:func:`suggest_finetune`: its architecture
            and widths stay, ``architectures`` must name its architecture; no per-epoch resume); None: from
            scratch. The registered version is also compared with the shipped transcriber
            (:mod:`adt.frame.shipped`) either way.

    Returns:
        :class:`SweepResult` over the whole study (all calls that shared it).

    Raises:
        ValueError: no validation tracks, no architectures, or n_trials < 1.
        RuntimeError: the study has no complete trial, or the best trial's checkpoint is gone.
    """
    import mlflow
    import optuna

    from adt import tracking
    from adt.postgres import retry_on_schema_race

    if not val_items:
        raise ValueError("a sweep needs validation tracks (its objective is their micro F-measure)")
    architectures = tuple(architectures)
    if not architectures or int(n_trials) < 1:
        raise ValueError(f"need at least one architecture and one trial, got {architectures} and {n_trials}")
    log = log or (lambda msg: None)
    storage = storage or default_storage()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    startup = pruner_startup_trials if pruner_startup_trials is not None else min(5, max(2, int(n_trials) // 2))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=pruner_warmup_epochs)
    # heartbeats: a trial whose process died (no heartbeat for GRACE_S) is marked FAILED at the next trial
    # start and retried with the same parameters, which resumes from its per-epoch checkpoint
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = retry_on_schema_race(lambda: optuna.storages.RDBStorage(  # N workers on a fresh database
            storage, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)))
    study = optuna.create_study(study_name=study_name, storage=rdb, direction="maximize",
                                load_if_exists=True, pruner=pruner)
    n_before = len(study.trials)
    study.sampler = optuna.samplers.TPESampler(seed=config.seed + n_before)
    if len(architectures) > 1 and n_before == 0:
        for arch in architectures:  # one model per architecture before TPE takes over
            study.enqueue_trial({"architecture": arch}, skip_if_exists=True)  # once, with workers starting together
    trial_run_ids: list[str] = []

    def objective(trial: optuna.Trial) -> float:
        if init_path is not None:
            init = load_model(init_path)
            arch, params = init.architecture, suggest_finetune(trial, init.hparams)
        elif len(architectures) > 1:
            init, arch = None, trial.suggest_categorical("architecture", list(architectures))
        else:
            init, arch = None, architectures[0]
        if init is None:
            params = suggest_params(trial, arch)
        trial.set_user_attr("architecture", arch)
        trial.set_user_attr("params", params)
        t0, pruned = time.perf_counter(), None
        with mlflow.start_run(run_name=f"trial-{trial.number}[{arch}]", nested=True,
                              experiment_id=parent.info.experiment_id) as child:
            trial_run_ids.append(child.info.run_id)
            trial.set_user_attr("mlflow_run_id", child.info.run_id)
            mlflow.set_tags({**tracking.provenance(stage, f"trial {trial.number} of sweep {study_name}"),
                             "optuna.study": study_name, "optuna.trial": trial.number, "architecture": arch})
            mlflow.log_params({"architecture": arch, **params})
            log(f"{study_name} trial {trial.number}: {arch} {tracking.figures(params)}")

            def on_epoch(epoch: int, m: dict) -> None:
                mlflow.log_metrics({k: v for k, v in m.items() if k != "epoch"}, step=epoch)
                log(f"trial {trial.number} epoch {epoch}: loss {m['loss']:.4f} val F {m['val_f']:.4f} lr {m['lr']:.2e}")

            from adt.cache import cache_key

            epochs_file = out_dir / f"epochs-{cache_key(arch, params)[:16]}.pt"  # a retried trial resumes it
            try:
                model, history = train_model(train_dirs, val_items, config, arch, params, on_epoch=on_epoch,
                                             stats=stats, trial=trial, init=init,
                                             checkpoint=epochs_file if init is None else None)
            except optuna.TrialPruned as exc:
                pruned = exc
                mlflow.set_tag("optuna.state", "PRUNED")
                epochs_file.unlink(missing_ok=True)
            else:
                path = save_model(model, out_dir / f"trial-{trial.number:04d}.pt")
                epochs_file.unlink(missing_ok=True)
                mlflow.log_artifact(str(path), "model")
                mlflow.log_metric("best_val_f", model.best_val_f)
                mlflow.set_tag("optuna.state", "COMPLETE")
                trial.set_user_attr("model_path", str(path))
                trial.set_user_attr("best_epoch", model.best_epoch)
                trial.set_user_attr("epochs", len(history))
                trial.set_user_attr("history", history)
            trial.set_user_attr("seconds", time.perf_counter() - t0)
        if pruned is not None:
            log(f"trial {trial.number} pruned: {pruned}")
            raise pruned
        return float(model.best_val_f)

    params = {"study": study_name, "storage": masked(storage), "n_trials": n_trials,
              "architectures": ",".join(architectures), "sampler": "TPE", "pruner": f"Median(startup={startup})",
              **{f"train.{k}": v for k, v in dataclasses.asdict(config).items()}, **(run_params or {})}
    with tracking.run(stage, run_name or f"sweep[{study_name}]", params=params, parent_run_id=parent_run_id) as parent:
        for name, folder in (artifacts or {}).items():
            mlflow.log_artifacts(str(folder), name)
        if budget is None:
            study.optimize(objective, n_trials=int(n_trials))
        else:
            n_workers = local_workers(architectures, config, budget) if workers is None else int(workers)
            missing = int(budget) - len(study.get_trials(deepcopy=False, states=_states(FINISHED)))
            helpers = []
            if min(n_workers, missing) > 1:
                spec = {"train_dirs": [str(d) for d in train_dirs], "out_dir": str(out_dir),
                        "val": [{"x": str(x), "reference": {c: np.asarray(t, float).tolist() for c, t in ref.items()}}
                                for x, ref in val_items],
                        "stats": str(stats.save(out_dir / "training_stats")) if stats is not None else None,
                        # helpers never register: this process does, once they are done (else each would
                        # wait for the other's run to end before registering, registered_elsewhere)
                        "study_name": study_name, "storage": storage, "budget": int(budget), "register": False,
                        "stage": stage, "architectures": list(architectures), "config": dataclasses.asdict(config),
                        "pruner_startup_trials": startup, "pruner_warmup_epochs": pruner_warmup_epochs,
                        # nested under this sweep's run: one top-level run per sweep, its helpers' trials below
                        "run_name": "sweep helper", "parent_run_id": parent.info.run_id,
                        "run_params": run_params or {},
                        "init_path": str(init_path) if init_path is not None else None}
                helpers = start_helpers(min(n_workers, missing) - 1, spec, out_dir, log)
            try:
                with warnings.catch_warnings():  # constant_liar: "experimental"
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    run_budget(study, rdb, objective, int(budget), int(n_trials), log, sampler_for=lambda n: (
                        optuna.samplers.TPESampler(seed=config.seed + n, constant_liar=True)))
            finally:
                finish_helpers(helpers, log)
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not complete:
            raise RuntimeError(f"study {study_name!r} has no complete trial")
        best = study.best_trial
        model_path = best.user_attrs.get("model_path")
        if not model_path or not Path(model_path).is_file():
            raise RuntimeError(f"study {study_name!r}: the checkpoint of best trial {best.number} is missing "
                               f"({model_path})")
        records = trial_records(study)
        mlflow.log_params({"best.trial": best.number, "best.architecture": best.user_attrs["architecture"],
                           **{f"best.{k}": v for k, v in best.user_attrs["params"].items()}})
        mlflow.log_metric("best_val_f", float(best.value))
        mlflow.log_text(trials_markdown(records), "trials.md")
        result = SweepResult(study_name=study_name, storage=masked(storage), n_trials=len(study.trials),
                             best_trial=best.number, best_value=float(best.value),
                             architecture=best.user_attrs["architecture"], params=dict(best.user_attrs["params"]),
                             model_path=model_path, history=list(best.user_attrs.get("history", [])),
                             run_id=parent.info.run_id, trial_run_ids=trial_run_ids, trials=records,
                             per_architecture={a: {"trial": t.number, "val_f": float(t.value),
                                                   "params": dict(t.user_attrs["params"]),
                                                   "model_path": t.user_attrs["model_path"]}
                                               for a, t in best_per_architecture(study).items()})
        if register and not registered_elsewhere(best, trial_run_ids, parent.info.start_time, log):
            trained_on = ", ".join(f"{k} {v}" for k, v in (run_params or {}).items()
                                   if k in ("train_sets", "profile", "feature_type")) or \
                f"the shards {', '.join(str(d) for d in train_dirs)}"
            trained_on += f"; validated on {len(val_items)} tracks"
            from adt.frame.reproduce import check_tags
            from adt.frame.shipped import score_shipped

            model = load_model(model_path)
            shipped = result.shipped = score_shipped(val_items, config.peak_picking, model.feature_type,
                                                     *model.io_dims)
            if shipped:
                mlflow.log_metric("shipped_val_f", shipped["shipped_val_f"])
            if init_path is not None:
                trained_on += f"; fine-tuned from {Path(init_path).name}"
            result.model_uri = register_champion(model, evaluation_key(val_items, config), log,
                                                 source=f"optuna:{study_name}/trial-{best.number}",
                                                 trained_on=trained_on,
                                                 extra_tags={**shipped, **check_tags(model, val_items)})
        if register:
            result.champion_uri = tracking.champion_uri()
    return result


def local_workers(architectures: Sequence[str], config: TrainConfig, budget: int) -> int:
    """Sweep processes to run on this machine: as many trials as the cores hold (:func:`adt.parallel.jobs`:
    ``ADT_JOBS``, else cores // the trials' torch threads; FrameCRNN trains on one,
    :data:`adt.cpu.TRAINING_THREADS`), at most the budget.

    On 2 cores a FrameCRNN sweep runs its trials two at a time. Results do not depend on it while no trial
    can be pruned (each trial's parameters are drawn from its own number's seed, :func:`run_budget`); past
    the pruner's startup trials, which trials are pruned depends on what the other process finished by then.

    Raises:
        ValueError: ``ADT_JOBS`` is not a positive integer.
    """
    from adt.cpu import training_threads
    from adt.parallel import jobs

    return max(1, min(int(budget), jobs(max(config.num_threads or training_threads(a) for a in architectures))))


def start_helpers(n: int, spec: dict, out_dir: Path, log: Callable[[str], None]) -> list:
    """Start ``n`` helper processes ``python -m adt.frame.sweep_worker`` on ``spec`` (this process's sweep:
    same study, budget and ``out_dir``; :mod:`adt.frame.sweep_worker`), each logging to
    ``<out_dir>/helper-<k>.log``. They share this process's data-folder lock (:mod:`adt.lock`: its descendants).

    Returns:
        ``[(process, log path)]`` for :func:`finish_helpers`.
    """
    import subprocess
    import sys

    from adt.atomic import write_json

    if n < 1:
        return []
    spec_path = write_json(out_dir / "helper-spec.json", {**spec, "workers": 1, "parent_pid": os.getpid()})
    root = str(Path(__file__).resolve().parents[2])  # this adt, first on the helpers' path
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    helpers = []
    for k in range(1, n + 1):
        path = out_dir / f"helper-{k}.log"
        with open(path, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "adt.frame.sweep_worker", str(spec_path)], env=env,
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        helpers.append((proc, path))
        log(f"sweep helper {k} started (pid {proc.pid}; log {path})")
    return helpers


def finish_helpers(helpers: list, log: Callable[[str], None]) -> None:
    """Wait for the helpers of :func:`start_helpers`; kill them when this process is failing.

    Raises:
        RuntimeError: a helper failed (its exit status and the end of its log).
    """
    import sys

    failing = sys.exc_info()[0] is not None
    errors = []
    for k, (proc, path) in enumerate(helpers, 1):
        if failing:
            proc.kill()
        status = proc.wait()
        text = path.read_text(errors="replace") if path.exists() else ""
        result = next((line[7:] for line in text.splitlines() if line.startswith("RESULT ")), None)
        if result is not None:
            log(f"sweep helper {k}: ran {json.loads(result)['ran_here']} trial(s)")
        elif not failing:
            errors.append(f"sweep helper {k} (pid {proc.pid}) exited with {status}; {path} ends:\n{text[-2000:]}")
    if errors:
        raise RuntimeError("\n".join(errors))


def registered_elsewhere(best: Any, own_run_ids: Sequence[str], since_ms: int, log: Callable[[str], None]) -> bool:
    """Whether another sweep worker, running at the same time as this call (started at ``since_ms``),
    registered or registers the study's ``best`` trial: the worker that trained it does (a study shared by
    N workers registers its best model once, and no two workers promote at the same time). A running
    owner is waited for (up to :data:`REGISTER_WAIT_S`), then its run is looked up in the registry.
    False when this call ran the best trial, when an earlier call (ended before this one started) ran it
    (a resumed or continued study registers its best model again, as before), or when the owner ended
    without registering it."""
    import socket

    import mlflow

    from adt import tracking
    from adt.atomic import process_alive

    run_id = best.user_attrs.get("mlflow_run_id")
    if not run_id or run_id in own_run_ids:
        return False
    client = mlflow.MlflowClient()
    try:
        owner = client.get_run(run_id).data.tags["mlflow.parentRunId"]
        deadline = time.monotonic() + REGISTER_WAIT_S
        while (r := client.get_run(owner)).info.status == "RUNNING" and time.monotonic() < deadline:
            if r.data.tags.get(tracking.HOST_TAG) == socket.gethostname() and not process_alive(
                    int(r.data.tags.get(tracking.PID_TAG, "0") or 0)):
                break  # its process died (on this machine): it registers nothing
            time.sleep(POLL_S)  # the owner's run ends after its registration
        if (client.get_run(owner).info.end_time or 0) < since_ms:
            return False
        versions = client.search_model_versions(f"run_id = '{owner}'")
    except (mlflow.exceptions.MlflowException, KeyError):
        return False
    if versions:
        log(f"best trial {best.number} was trained and registered by the sweep worker of run {owner} "
            f"(version {versions[0].version})")
    return bool(versions)


def evaluation_key(val_items: list[tuple[Path, dict]], config) -> str:
    """What a validation F-measure was measured on: the validation feature files and the peak picking
    (scores with the same key compare; :func:`adt.tracking.promote`)."""
    from adt.cache import cache_key

    return cache_key("evaluation", sorted(str(p) for p, _ in val_items), str(config.peak_picking))


#: Description of the registered model :data:`adt.tracking.MODEL_NAME` (``MlflowClient.update_registered_model``).
MODEL_DESCRIPTION = (
    "Frame-level drum transcriber: log-spectrogram frames (batch, frames at 100 fps, bands) -> onset logits "
    "(batch, frames, 5 classes BD SD TT HH CY), then madmom peak picking with the version's tag peak_picking. "
    "Alias champion: the version adt transcribe uses (the best validation micro F on the same validation data); "
    "challenger: the newest that did not beat it; lite: the optimal trimmed network (adt.trimming). "
    "Each version is a weights-only checkpoint (checkpoint.pt + MLmodel; load with adt.registry.load, "
    "torch.load(weights_only=True)), never a pickle.")


def describe_transcriber(model: Any, source: str, trained_on: str) -> str:
    """A registered transcriber version's description: architecture and size, input, what it was trained on,
    its validation micro F-measure (50 ms) and what made it."""
    from adt.frame.recipe import model_input

    dims = getattr(model, "io_dims", None) or (model.config["n_features"], model.config["n_classes"])
    n_params = sum(p.numel() for p in model.parameters())
    trimmed = getattr(model, "trimmed", None)
    val_f = getattr(model, "best_val_f", None)
    score = "no validation score" if val_f is None else f"validation micro F-measure (50 ms) {float(val_f):.4f}"
    if getattr(model, "best_epoch", None) is not None:
        score += f" at epoch {model.best_epoch}"
    if getattr(model, "tuned_val_f", None) is not None:
        score += f", {float(model.tuned_val_f):.4f} with the peak picking tuned on validation"
    return (f"{getattr(model, 'architecture', 'frame_crnn')} drum transcriber"
            f"{' (trimmed: ' + json.dumps(trimmed) + ')' if trimmed else ''}, {n_params} parameters: "
            f"{getattr(model, 'feature_type', 'log_mel')} features, {int(dims[0])} bands -> {int(dims[1])} onset "
            f"classes; hears {model_input(model)} audio. Trained on {trained_on}. {score[0].upper() + score[1:]}. "
            f"Made by {source}. Weights only (checkpoint.pt, adt.frame.recipe.save_model).")


def register_champion(model: Any, evaluation: str, log: Callable[[str], None] = print, *,
                      source: str | None = None, trained_on: str = "(not recorded)",
                      extra_tags: dict | None = None) -> str:
    """Register ``model`` as a version of ``tracking.MODEL_NAME`` (weights only, :func:`adt.registry.register`,
    in the active MLflow run) and promote it to ``champion`` unless the champion scored higher on the same
    validation data (:func:`adt.tracking.promote`, with ``model.best_val_f`` and ``evaluation``).

    Idempotent per ``source`` (e.g. ``optuna:<study>/trial-<n>``; default: the active run) and checkpoint
    content: a re-run after a crash reuses the version and finishes its tags and alias. The version gets its
    tags (``transcriber_input``, ``peak_picking``, ``val_f``, ``evaluation``, and ``extra_tags``: e.g. the
    shipped transcriber's F on the same data, :func:`adt.frame.shipped.score_shipped`), a description
    (:func:`describe_transcriber`) and a signature when it is created; the alias is set last.

    Returns:
        ``models:/<name>/<version>``.

    Raises:
        RuntimeError: no active MLflow run.
    """
    import mlflow

    from adt import registry, tracking
    from adt.frame.recipe import model_input, model_peak_picking

    source = source or f"run:{mlflow.active_run().info.run_id if mlflow.active_run() else 'none'}"
    score = float(model.best_val_f)
    tags = {"transcriber_input": model_input(model), "peak_picking": json.dumps(model_peak_picking(model)),
            "val_f": f"{score:.6f}", "evaluation": evaluation,
            **{k: f"{v:.6f}" if isinstance(v, float) else str(v) for k, v in (extra_tags or {}).items()}}
    outcome = {}

    def promote(version: str) -> None:
        outcome["moved"], outcome["why"] = tracking.promote(version, score, evaluation)

    version = registry.register(model, name=tracking.MODEL_NAME, kind="transcriber", source=source,
                                description=describe_transcriber(model, source, trained_on),
                                model_description=MODEL_DESCRIPTION, tags=tags, alias=promote)
    log(f"{tracking.MODEL_NAME} version {version}: {'champion' if outcome['moved'] else 'challenger'} "
        f"({outcome['why']})")
    return f"models:/{tracking.MODEL_NAME}/{version}"
