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

import dagster as dg

from adt.stages import STAGES
from pipelines.assets import STAGE_ASSETS
from pipelines.automation import SCHEDULES, SENSORS
from pipelines.checks import ALL_CHECKS
from pipelines.console import adt_console
from pipelines.io_manager import JsonIOManager
from pipelines.resources import AdtSettings

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

#: How a run executes its steps: ADT_EXECUTOR=in_process (default: one after another in the run's process)
#: or multiprocess (a process per step, ADT_MAX_CONCURRENT of them at a time, default 2: the target's cores).
EXECUTOR = (dg.multiprocess_executor.configured({"max_concurrent": int(os.environ.get("ADT_MAX_CONCURRENT", "2"))})
            if os.environ.get("ADT_EXECUTOR", "in_process") == "multiprocess" else dg.in_process_executor)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[kits_job, raw_job, downstream_job, training_job],
    schedules=SCHEDULES,
    sensors=SENSORS,
    # asset values as JSON files under DAGSTER_HOME/storage, never pickles (pipelines.io_manager)
    resources={"settings": AdtSettings(), "io_manager": JsonIOManager()},
    # one line per step on the console; Dagster's DEBUG events stay in each run's event log
    loggers={"adt_console": adt_console},
    executor=EXECUTOR,
)
