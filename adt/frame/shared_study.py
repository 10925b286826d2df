"""Sweep workers sharing one Optuna study: its trial budget, the helper processes, who registers its best model.

A study (:func:`adt.frame.sweep.run_sweep`) may be shared by several worker processes, on one machine (this
process and its helpers ``python -m adt.frame.sweep_worker``, :func:`start_helpers`, as many as the cores hold,
:func:`local_workers`) or on several (docs/scale-out.md). With a trial ``budget`` they finish exactly that many
trials together (:func:`run_budget`: a lock-free admission by trial number, :func:`admitted`; a dead worker's
trial is failed once its heartbeat is :data:`GRACE_S` old and retried, one that never had a heartbeat by
:func:`fail_orphans`), and the study's best model is registered once, by the worker that trained it
(:func:`registered_elsewhere`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from adt import tracking
from adt.atomic import process_alive, write_json
from adt.cpu import training_threads
from adt.frame.recipe import TrainConfig
from adt.parallel import jobs

#: Optuna heartbeat of a running trial, and how long without one before it counts as dead (seconds).
HEARTBEAT_S, GRACE_S = 60, 180

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


def trial_states(names: Sequence[str]) -> tuple:
    """The Optuna trial states of these names (:data:`FINISHED`, :data:`LIVE`)."""
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
    before = [t for t in storage.get_all_trials(study_id, deepcopy=False, states=trial_states(LIVE))
              if t.number < trial.number]
    return len(before) < budget


#: User attribute of every trial this release starts: the worker, ``host:pid``.
WORKER_ATTR = "adt.worker"


def fail_orphans(storage: Any, study_id: int) -> list[int]:
    """Mark FAILED the RUNNING trials that never had a heartbeat and started more than the storage's grace period
    (seconds; :data:`GRACE_S` where it has none) ago.

    Optuna's :func:`optuna.storages.fail_stale_trials` only sees trials with a heartbeat; a trial left RUNNING
    by a process of a release without heartbeats (no :data:`WORKER_ATTR`) would otherwise hold a place of the
    budget for good, and the workers would wait for it forever. Returns the trial numbers marked.
    """
    now, marked = datetime.datetime.now(), []  # Optuna stores naive local start times
    grace = getattr(storage, "grace_period", None) or GRACE_S
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if WORKER_ATTR in t.user_attrs or t.datetime_start is None:
            continue
        if (now - t.datetime_start).total_seconds() > grace:
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
    study_id = storage.get_study_id_from_name(study.study_name)

    def count(names: Sequence[str]) -> int:
        return len(storage.get_all_trials(study_id, deepcopy=False, states=trial_states(names)))

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
    return max(1, min(int(budget), jobs(max(config.num_threads or training_threads(a) for a in architectures))))


def start_helpers(n: int, spec: dict, out_dir: Path, log: Callable[[str], None]) -> list:
    """Start ``n`` helper processes ``python -m adt.frame.sweep_worker`` on ``spec`` (this process's sweep:
    same study, budget and ``out_dir``; :mod:`adt.frame.sweep_worker`), each logging to
    ``<out_dir>/helper-<k>.log``. They share this process's data-folder lock (:mod:`adt.lock`: its descendants).

    Returns:
        ``[(process, log path)]`` for :func:`finish_helpers`.
    """
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
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY

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


def helper_spec(setup: Any, budget: int, parent_run_id: str) -> dict:
    """The spec of a helper process joining a sweep (``setup``: its :class:`adt.frame.sweep.SweepSetup`;
    :mod:`adt.frame.sweep_worker`): same study, budget, data and settings; its runs nested under
    ``parent_run_id``. Writes the training statistics beside the trials. Paths absolute (a relative one in a spec
    is read under the data folder)."""
    return {"train_dirs": [str(Path(d).absolute()) for d in setup.train_dirs],
            "out_dir": str(setup.out_dir.absolute()),
            "val": [{"x": str(Path(x).absolute()), "reference": {c: np.asarray(t, float).tolist()
                                                                 for c, t in ref.items()}}
                    for x, ref in setup.val_items],
            "stats": (str(setup.stats.save(setup.out_dir / "training_stats").absolute()) if setup.stats is not None
                      else None),
            # helpers never register: this process does, once they are done (else each would
            # wait for the other's run to end before registering, registered_elsewhere)
            "study_name": setup.study_name, "storage": setup.storage, "budget": int(budget), "register": False,
            "stage": setup.stage, "architectures": list(setup.architectures),
            "config": dataclasses.asdict(setup.config),
            "pruner_startup_trials": setup.startup, "pruner_warmup_epochs": setup.pruner_warmup_epochs,
            # nested under this sweep's run: one top-level run per sweep, its helpers' trials below
            "run_name": "sweep helper", "parent_run_id": parent_run_id,
            "run_params": setup.run_params or {}, "inputs_key": setup.inputs_key,
            "heartbeat": list(setup.heartbeat) if setup.heartbeat else None,
            "init_path": str(Path(setup.init_path).absolute()) if setup.init_path is not None else None}


def run_with_helpers(study: Any, rdb: Any, objective: Callable, setup: Any, budget: int, n_trials: int,
                     workers: int | None, parent_run_id: str) -> None:
    """Finish the study's trial ``budget`` of a sweep (``setup``, ``objective``: :func:`adt.frame.sweep.run_sweep`'s;
    at most ``n_trials`` here, :func:`run_budget`), with ``workers - 1`` helper processes on this machine while
    more than one trial is missing (None: :func:`local_workers`); each trial's TPE sampler is seeded with the
    config's seed + its number, with a constant liar for the trials running elsewhere."""
    n_workers = local_workers(setup.architectures, setup.config, budget) if workers is None else int(workers)
    finished = study.get_trials(deepcopy=False, states=trial_states(FINISHED))
    missing = budget - len(finished)
    helpers = []
    if min(n_workers, missing) > 1:
        helpers = start_helpers(min(n_workers, missing) - 1, helper_spec(setup, budget, parent_run_id),
                                setup.out_dir, setup.log)
    try:
        with warnings.catch_warnings():  # constant_liar: "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            run_budget(study, rdb, objective, budget, n_trials, setup.log, sampler_for=lambda n: (
                optuna.samplers.TPESampler(seed=setup.config.seed + n, constant_liar=True)))
    finally:
        finish_helpers(helpers, setup.log)
