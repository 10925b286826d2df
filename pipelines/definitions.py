"""The Dagster code location: every stage of the ADT flow as an asset (docs/architecture.md maps
each asset to its library package and paper section).

ingest (kit_catalogue; raw_dataset and dataset_tables partitioned by dataset; tracks, onsets) -> separation
(drum_stems) -> rhythm (beats, tatums, quantization_stats + checks) -> language_model
(groove_scores, drum_scores, lm_bigram, lm_gru) -> features -> models (transcriber,
architecture_study, trimmed_transcriber: lottery trimming, tatum_study: Table II) -> evaluation (zero_shot_matrix).
"""

from __future__ import annotations

import os

import dagster as dg

from pipelines.assets import (evaluation, features, ingest, language_models, models, registry_checks, rhythm, separation,
                             tatum_study)
from pipelines.automation import SCHEDULES, SENSORS
from pipelines.console import adt_console
from pipelines.io_manager import JsonIOManager
from pipelines.resources import AdtSettings

#: What each group's assets are made of and with (Dagster shows kinds as badges; at most three each).
KINDS = {"ingest": {"parquet", "soundfile"}, "separation": {"pytorch", "museval"}, "rhythm": {"madmom", "parquet"},
         "language_model": {"pytorch", "optuna"}, "features": {"numpy", "torchaudio"},
         "models": {"pytorch", "optuna", "mlflow"}, "evaluation": {"mir_eval", "mlflow"}}
#: Who answers for the assets (Dagster owners: a team).
OWNERS = ["team:adt"]

_ASSETS = [ingest.kit_catalogue, ingest.raw_dataset, ingest.dataset_tables, ingest.unified_tables,
           separation.drum_stems, rhythm.beats, rhythm.tatums, rhythm.quantization_stats,
           language_models.groove_scores, language_models.drum_scores, language_models.lm_bigram,
           language_models.lm_gru, features.features, models.transcriber, models.architecture_study,
           models.trimmed_transcriber, evaluation.zero_shot_matrix, tatum_study.tatum_study]
ALL_ASSETS = list(dg.map_asset_specs(
    lambda spec: spec.merge_attributes(owners=OWNERS, kinds=KINDS.get(spec.group_name, set())), _ASSETS))
ALL_CHECKS = [rhythm.quantization_within_threshold, separation.separator_beats_the_mixture,
              models.transcriber_not_worse_than_shipped, models.trimming_reference_transcribes,
              registry_checks.champion_reproduces, registry_checks.lite_reproduces,
              tatum_study.lm_regularization_helps_somewhere,
              language_models.gru_lm_beats_bigram]

#: One dataset (a partition): fetch or place it, unify it.
raw_job = dg.define_asset_job("adt_raw_datasets", selection=[ingest.raw_dataset, ingest.dataset_tables])
#: The kit catalogue (unpartitioned; run before the rendered datasets).
kits_job = dg.define_asset_job("adt_kit_catalogue", selection=[ingest.kit_catalogue])
#: Everything downstream of the raw datasets (unpartitioned): one run materializes it.
downstream_job = dg.define_asset_job(
    "adt_downstream",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(ingest.kit_catalogue, ingest.raw_dataset,
                                                                 ingest.dataset_tables),
    tags={"adt/stage": "training"})
#: Retraining only (transcriber, architecture study, trimming, matrix, tatum study); the run queue admits one
#: training run at a time.
training_job = dg.define_asset_job(
    "adt_training", selection=[models.transcriber, models.architecture_study, models.trimmed_transcriber,
                               evaluation.zero_shot_matrix, tatum_study.tatum_study],
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
