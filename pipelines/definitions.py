"""The Dagster code location: every stage of the ADT flow as an asset, generated from the stage registry
(:data:`adt.stages.STAGES`, :mod:`pipelines.assets`; docs/architecture.md maps each to its library package and
paper section), with the checks of :mod:`pipelines.checks`.

ingest (kit_catalogue; raw_dataset and dataset_tables partitioned by dataset; tracks, onsets) -> separation
(drum_stems) -> rhythm (beats, tatums, quantization_stats + checks) -> language_model
(groove_scores, drum_scores, lm_bigram, lm_gru) -> features -> models (transcriber,
architecture_study, trimmed_transcriber: lottery trimming, tatum_study: Table II) -> evaluation (zero_shot_matrix).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import dagster as dg

from adt.stages import STAGES
from pipelines.assets import STAGE_ASSETS
from pipelines.automation import SCHEDULES, SENSORS
from pipelines.checks import ALL_CHECKS
from pipelines.console import adt_console
from pipelines.pg_io_manager import io_manager_from_env
from pipelines.resources import AdtSettings, DataStoreResource

#: What each group's assets are made of and with (Dagster shows kinds as badges; at most three each).
KINDS = {"ingest": {"parquet", "soundfile"}, "separation": {"pytorch", "museval"}, "rhythm": {"madmom", "parquet"},
         "language_model": {"pytorch", "optuna"}, "features": {"numpy", "torchaudio"},
         "models": {"pytorch", "optuna", "mlflow"}, "evaluation": {"mir_eval", "mlflow"}}
#: Who answers for the assets (Dagster owners: a team).
OWNERS = ["team:adt"]

ALL_ASSETS = list(dg.map_asset_specs(
    lambda spec: spec.merge_attributes(owners=OWNERS, kinds=KINDS.get(spec.group_name, set())), STAGE_ASSETS))

#: One dataset (a partition): fetch or place it, unify it.
raw_job = dg.define_asset_job("adt_raw_datasets", selection=["raw_dataset", "dataset_tables"])
#: The kit catalogue (unpartitioned; run before the rendered datasets).
kits_job = dg.define_asset_job("adt_kit_catalogue", selection=["kit_catalogue"])
#: Everything downstream of the raw datasets (unpartitioned): one run materializes it.
downstream_job = dg.define_asset_job(
    "adt_downstream",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets("kit_catalogue", "raw_dataset", "dataset_tables"),
    tags={"adt/stage": "training"})
#: Retraining only (transcriber, architecture study, trimming, matrix, tatum study); the run queue admits one
#: training run at a time.
training_job = dg.define_asset_job(
    "adt_training", selection=[s.name for s in STAGES if s.group in ("models", "evaluation")],
    tags={"adt/stage": "training"})

#: The executors' settings files (``execution.config``), in this checkout: Celery's, shared with the workers
#: (``ADT_CELERY_CONFIG`` to name another), and dagster-k8s's (``ADT_K8S_CONFIG``).
DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
CELERY_CONFIG = Path(os.environ.get("ADT_CELERY_CONFIG") or DEPLOY / "celery.yaml")
K8S_CONFIG = Path(os.environ.get("ADT_K8S_CONFIG") or DEPLOY / "k8s" / "config" / "executor.yaml")


def execution_config(path: Path, kind: str) -> dict:
    """The ``execution.config`` mapping of the YAML file ``path`` (the executor ``kind``'s settings).

    Raises:
        ValueError: the file cannot be read or has no such mapping (named).
    """
    import yaml

    try:
        config = ((yaml.safe_load(path.read_text()) or {}).get("execution") or {}).get("config")
    except OSError as exc:
        raise ValueError(f"ADT_EXECUTOR={kind}: cannot read its configuration {path} ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"ADT_EXECUTOR={kind}: {path} has no execution.config mapping")
    return config


def executor_from_env() -> dg.ExecutorDefinition:
    """How a run executes its steps, from ``ADT_EXECUTOR``: ``in_process`` (default: one after another in the
    run's process), ``multiprocess`` (a process per step, ``ADT_MAX_CONCURRENT`` of them at a time, default 2: the
    target's cores), ``celery`` (each step a task for the Celery workers: dagster-celery's executor configured by
    :data:`CELERY_CONFIG`, broker and result backend from ``ADT_CELERY_BROKER`` and ``ADT_CELERY_BACKEND``; workers:
    ``python -m pipelines.celery_workers``) or ``k8s`` (each step a Kubernetes Job: dagster-k8s's
    ``k8s_job_executor`` configured by :data:`K8S_CONFIG`; deploy/k8s/). docs/scale-out.md.

    Raises:
        ValueError: another ``ADT_EXECUTOR``, its package not installed (dagster-celery: ``.[cluster]``;
            dagster-k8s: ``.[k8s]``), or its configuration file missing or without ``execution.config`` (named).
    """
    kind = os.environ.get("ADT_EXECUTOR", "in_process")
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "multiprocess":
        return dg.multiprocess_executor.configured({"max_concurrent": int(os.environ.get("ADT_MAX_CONCURRENT", "2"))})
    if kind in ("celery", "k8s"):
        try:
            if kind == "celery":
                from dagster_celery import celery_executor as executor
            else:
                from dagster_k8s import k8s_job_executor as executor
        except ImportError as exc:
            extra = "cluster" if kind == "celery" else "k8s"
            raise ValueError(f"ADT_EXECUTOR={kind} needs {exc.name or exc}: pip install -e '.[{extra}]'") from None
        if kind == "celery":  # dagster-celery makes its task anew for each step it submits: Celery 5.7 warns each time
            warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")
        return executor.configured(execution_config(CELERY_CONFIG if kind == "celery" else K8S_CONFIG, kind),
                                   name=kind)
    raise ValueError(f"ADT_EXECUTOR={kind!r}: expected in_process, multiprocess, celery or k8s")


EXECUTOR = executor_from_env()

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[kits_job, raw_job, downstream_job, training_job],
    schedules=SCHEDULES,
    sensors=SENSORS,
    # asset values as JSON, never pickles: files under DAGSTER_HOME/storage (pipelines.io_manager), or rows in
    # PostgreSQL with ADT_IO_PG_URL set (pipelines.pg_io_manager: steps on workers that share no storage folder)
    # and the data folder through an artifact store with ADT_DATA_STORE set (pipelines.resources.DataStoreResource)
    resources={"settings": AdtSettings(), "io_manager": io_manager_from_env(), "data_store": DataStoreResource()},
    # one line per step on the console; Dagster's DEBUG events stay in each run's event log
    loggers={"adt_console": adt_console},
    executor=EXECUTOR,
)
