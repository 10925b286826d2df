"""What the sweep workers of one study exchange through MLflow, so that they share no folder.

Workers on several machines (:mod:`adt.frame.sweep_worker`) need only the stores' URLs: the Optuna study in
PostgreSQL and an MLflow tracking server with proxied artifact storage (``mlflow server
--artifacts-destination``: a folder or an S3-compatible store on the server's side; the workers upload and
download through ``MLFLOW_TRACKING_URI=http://host:port``, :func:`adt.tracking.server`). Each trial's MLflow run
holds:

* ``model/trial-NNNN.pt``: the trial's checkpoint (:func:`adt.frame.sweep.train_trial`). A worker that needs a
  trial it did not train (the study's best, to register or return it) downloads it into its own ``out_dir``
  (:func:`local_checkpoint`).
* ``resume/epochs-<key>.pt``: the trial's latest per-epoch checkpoint (:class:`EpochCheckpoints`), uploaded after
  every epoch when the run's artifacts live off this machine (:func:`off_machine`), its epoch in the run tag
  :data:`RESUME_TAG` (set after the upload); removed when the trial ends. A trial whose worker died is failed
  once its Optuna heartbeat is stale and retried with the same parameters
  (``optuna.storages.RetryHeartbeatStaleTrialCallback``, :func:`adt.frame.sweep.open_study`); the retry, on
  whichever worker takes it, downloads the dead try's checkpoint and resumes after its epoch
  (:meth:`EpochCheckpoints.fetch`; :func:`adt.frame.recipe.train_model` resumes only a checkpoint of the same
  fingerprint: the same inputs, named alike on every machine by ``inputs_key``).

Inputs (training shards, validation features, statistics) are not exchanged: each worker builds them in its own
data folder from the mirror (deterministic, content-keyed).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from adt.frame.shipped import sha256

#: Artifact folder of a trial's run holding its checkpoint (``trial-NNNN.pt``).
MODEL_DIR = "model"
#: Artifact folder of a trial's run holding its latest per-epoch checkpoint, and the run tag naming that epoch.
RESUME_DIR, RESUME_TAG = "resume", "adt.resume_epoch"
#: Trial user attribute (and run tag ``adt.<it>``) of a retry that resumed a dead try: the epoch it resumed after.
RESUMED_ATTR = "resumed_after_epoch"
#: Run tag saying why a run was closed by another process.
CLOSED_TAG = "adt.closed"
#: Trial user attribute: the SHA-256 (hex) of the trial's checkpoint file (:func:`local_checkpoint` checks it).
SHA256_ATTR = "model_sha256"

Log = Callable[[str], None]


def off_machine(artifact_uri: str) -> bool:
    """Whether artifacts at ``artifact_uri`` live off this machine (``mlflow-artifacts:``, ``s3:``, ``http:``...),
    where another machine can fetch them; a local folder (``file:`` or a plain path) cannot be."""
    return urlparse(str(artifact_uri)).scheme not in ("", "file")


def reason(exc: BaseException) -> str:
    """The first line of an exception's message (or its repr)."""
    return str(exc).splitlines()[0] if str(exc) else repr(exc)


def fetch(run_id: str, artifact_path: str, dest: Path) -> Path:
    """Download the file ``artifact_path`` of run ``run_id`` to ``dest``, atomically (into a temporary folder
    beside it, then renamed).

    Raises:
        mlflow.exceptions.MlflowException, OSError: no such run or artifact, or the server unreachable.
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as tmp:
        got = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=tmp)
        if not Path(got).is_file():
            raise OSError(f"artifact {artifact_path} of run {run_id} is not a file")
        os.replace(got, dest)
    return dest


def local_checkpoint(trial: Any, out_dir: Path, log: Log) -> str:
    """A complete trial's checkpoint as a file of this worker (``trial``: an ``optuna.trial.FrozenTrial`` of
    :func:`adt.frame.sweep.train_trial`, user attributes ``model_path``, ``mlflow_run_id`` and :data:`SHA256_ATTR`):
    where it was saved when that is in ``out_dir`` (this worker's, or shared with the worker that trained it on this
    machine) with the recorded SHA-256 (one spec on several machines names the same ``out_dir`` on each: a file
    there may be another study's), else downloaded from the trial's run (``model/trial-NNNN.pt``) into ``out_dir``
    and checked. Another worker's folder is never read.

    Raises:
        RuntimeError: not in ``out_dir`` and not fetchable, or fetched with another SHA-256 (the reason in the
            message).
    """
    saved, expected = trial.user_attrs.get("model_path"), trial.user_attrs.get(SHA256_ATTR)
    name = Path(saved).name if saved else f"trial-{trial.number:04d}.pt"
    local = Path(out_dir) / name
    if (saved and local.is_file() and Path(saved).resolve() == local.resolve()
            and (expected is None or sha256(local) == expected)):
        return saved
    run_id = trial.user_attrs.get("mlflow_run_id")
    if not run_id:
        raise RuntimeError(f"trial {trial.number}: its checkpoint is not in {out_dir} and it has no MLflow run")
    try:
        fetch(run_id, f"{MODEL_DIR}/{name}", local)
    except Exception as exc:  # MlflowException, OSError, requests' errors
        raise RuntimeError(f"trial {trial.number}: its checkpoint is not in {out_dir} and cannot be fetched from "
                           f"its MLflow run {run_id} ({reason(exc)})") from exc
    if expected is not None and sha256(local) != expected:
        local.unlink()
        raise RuntimeError(f"trial {trial.number}: the checkpoint in its MLflow run {run_id} is not the one it saved "
                           f"(SHA-256 differs from {expected})")
    log(f"trial {trial.number}: checkpoint fetched from its MLflow run {run_id} into {local}")
    return str(local)


class EpochCheckpoints:
    """A trial's per-epoch checkpoint (module docstring): the file ``path`` that
    :func:`adt.frame.recipe.train_model` writes, copied into the active (the trial's) MLflow run when that run's
    artifacts live off this machine (:meth:`store`), fetched by a retry from the runs of the tries it retries
    (:meth:`fetch`), removed from both when the trial ends (:meth:`drop`). Made inside the trial's run."""

    def __init__(self, path: str | Path, log: Log):
        import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY

        active = mlflow.active_run()
        if active is None:
            raise RuntimeError("EpochCheckpoints needs the trial's active MLflow run")
        self.path, self.log, self.run_id = Path(path), log, active.info.run_id
        self.remote, self.stored, self.first = off_machine(active.info.artifact_uri), False, None
        self.fetched_from: str | None = None

    def store(self, epoch: int) -> None:
        """``on_checkpoint`` of :func:`adt.frame.recipe.train_model`: upload the file (``resume/<name>``, replacing
        the last), then set :data:`RESUME_TAG` to ``epoch``. Nothing when the run's artifacts are on this machine.
        A failed upload is logged, not raised: the trial goes on, resumable from the last epoch stored."""
        if not self.remote:
            return
        import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY

        client = mlflow.MlflowClient()
        try:
            client.log_artifact(self.run_id, str(self.path), RESUME_DIR)
            client.set_tag(self.run_id, RESUME_TAG, str(epoch))
            self.stored = True
        except Exception as exc:  # the server unreachable for a moment: not worth the trial
            self.log(f"epoch {epoch} checkpoint not stored in run {self.run_id}: {reason(exc)}")

    def fetch(self, trial: Any) -> str | None:
        """For a retried trial (``optuna.Trial``) whose file is not here: download the latest stored checkpoint of
        the tries it retries (``RetryHeartbeatStaleTrialCallback.retry_history``, newest first; their runs: user
        attribute ``mlflow_run_id``) to ``path``. Those tries' runs that are still RUNNING, and the sweep runs they
        are nested in, are closed FAILED (:data:`CLOSED_TAG`): their heartbeat stopped, their process is gone on
        whatever machine it ran. Returns the run fetched from, or None (not a retry, or nothing stored)."""
        if self.path.is_file():
            return None
        import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY
        import optuna

        trials = {t.number: t for t in trial.study.get_trials(deepcopy=False)}
        with warnings.catch_warnings():  # "experimental" in Optuna 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            history = optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history(trials[trial.number])
        tries = [(n, trials[n].user_attrs.get("mlflow_run_id")) for n in reversed(history) if n in trials]
        client = mlflow.MlflowClient()
        for number, run_id in tries:
            if not run_id:
                continue
            try:
                run = client.get_run(run_id)
                close_dead(client, run, f"its trial {number} stopped sending heartbeats: retried as trial "
                                        f"{trial.number}")
                epoch = run.data.tags.get(RESUME_TAG)
                if epoch is None:
                    continue
                fetch(run_id, f"{RESUME_DIR}/{self.path.name}", self.path)
            except Exception as exc:  # MlflowException, OSError: try an older one, else start over
                self.log(f"trial {trial.number}: no checkpoint of trial {number} from run {run_id}: {reason(exc)}")
                continue
            self.log(f"trial {trial.number} retries trial {number}: its epoch {epoch} checkpoint fetched from run "
                     f"{run_id}")
            self.fetched_from = run_id
            return run_id
        return None

    def seen(self, trial: Any, epoch: int) -> None:
        """Call from ``on_epoch``: its first call says where training started. After epoch 1 (a resumed try), the
        epoch before is recorded as the trial's user attribute :data:`RESUMED_ATTR` and the run tag
        ``adt.resumed_after_epoch``. A fetched checkpoint that training did not resume (written for other inputs
        or settings: another fingerprint, :func:`adt.frame.recipe.train_model`) is logged."""
        if self.first is not None:
            return
        self.first = epoch
        if epoch == 1 and self.fetched_from:
            self.log(f"trial {trial.number}: the checkpoint fetched from run {self.fetched_from} was written for other "
                     "inputs or settings (its fingerprint differs): trained from epoch 1")
        if epoch > 1:
            import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY

            trial.set_user_attr(RESUMED_ATTR, epoch - 1)
            mlflow.MlflowClient().set_tag(self.run_id, f"adt.{RESUMED_ATTR}", str(epoch - 1))
            self.log(f"trial {trial.number}: resumed after epoch {epoch - 1}")

    def drop(self) -> None:
        """The trial ended (complete or pruned): remove the file, and the stored copy with its tag (a failure to
        remove the copy is logged: it only takes room)."""
        self.path.unlink(missing_ok=True)
        if not self.stored:
            return
        import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        client = mlflow.MlflowClient()
        try:
            get_artifact_repository(client.get_run(self.run_id).info.artifact_uri).delete_artifacts(RESUME_DIR)
            client.delete_tag(self.run_id, RESUME_TAG)
        except Exception as exc:  # MlflowException, requests' errors, a store that cannot delete
            self.log(f"the per-epoch checkpoint of run {self.run_id} was not removed: {reason(exc)}")


def close_dead(client: Any, run: Any, why: str) -> None:
    """Close ``run`` (an ``mlflow.entities.Run`` of a trial known dead) FAILED with :data:`CLOSED_TAG` ``why``
    when it is still RUNNING, and the run it is nested in (its worker's sweep run) likewise: a worker on another
    machine would otherwise wait for that run to register the study's best model
    (:func:`adt.frame.shared_study.registered_elsewhere`)."""
    parent = run.data.tags.get("mlflow.parentRunId")
    for run_, because in ((run, why), (client.get_run(parent) if parent else None, f"a trial of it: {why}")):
        if run_ is not None and run_.info.status == "RUNNING":
            client.set_tag(run_.info.run_id, CLOSED_TAG, because)
            client.set_terminated(run_.info.run_id, "FAILED")
