"""Rhythm (library: adt.rhythm): beats, tatums and the quantization statistics (Table I)."""

import dagster as dg
import pandas as pd

from adt.data.datasets import DATASETS
from adt.rhythm import beats as beat_stage
from adt.rhythm import quantization, tatums as tatum_stage
from pipelines.metadata import mlflow_run, skipped_table, table_entries
from pipelines.resources import AdtSettings


@dg.asset(group_name="rhythm", code_version=beat_stage.VERSION,
          description="Beats per track with their bar position: madmom RNN beat activations + DBN tracking at "
                      "100 fps, bar positions from madmom's downbeat tracker, on the mixture or its separated drum "
                      "stem (AdtSettings.beat_input) or the drum-only recording, cached per audio file (keyed by "
                      "its samples) and tracked in worker processes (ADT_JOBS); plus ground-truth beats. The "
                      "tracker is scored against ground truth per dataset with mir_eval.")
def beats(context: dg.AssetExecutionContext, settings: AdtSettings, tracks: dict, drum_stems: dict) -> dg.Output[dict]:
    value = beat_stage.beat_table(tracks, drum_stems, settings.settings().beat_input, context.log.info)
    scores = pd.DataFrame(value["scores"]).round(4)
    return dg.Output(value, data_version=dg.DataVersion(value["key"]),
                     metadata={**(table_entries("beat_scores", scores) if not scores.empty
                                  else {"beat_scores": "no reference beats"}),
                               **mlflow_run(value.get("run_id")), **skipped_table(value["skipped"]),
                               "input": value["input"], "path": dg.MetadataValue.path(value["path"])})


@dg.asset(group_name="rhythm", code_version=tatum_stage.VERSION,
          description="Tatum grid per track and beat source (adt.rhythm.tatums, the grid adt transcribe uses): "
                      "AdtSettings.tatum_subdivisions (4 default; 3 or 6 for triplet feels) per beat, the beats "
                      "extended to cover the whole track, pickup tatums before the first beat.")
def tatums(context: dg.AssetExecutionContext, settings: AdtSettings, tracks: dict, beats: dict) -> dg.Output[dict]:
    value = tatum_stage.build_tatums(beats, tracks, settings.settings().tatum_subdivisions)
    if value["skipped"]:
        context.log.warning(f"no tatum grid for {len(value['skipped'])} track/source pairs")
    return dg.Output(value, data_version=dg.DataVersion(value["key"]),
                     metadata={"rows": value["rows"], "subdivisions": value["subdivisions"],
                               **skipped_table(value["skipped"]), "path": dg.MetadataValue.path(value["path"])})


@dg.asset(group_name="rhythm", code_version=quantization.VERSION,
          description="Tatum paper Table I: share of onsets lost to conflict and far, per dataset and beat source, "
                      "on the paper's 3 classes (BD, SD, HH; 5-class and per-drum tables beside it).")
def quantization_stats(context: dg.AssetExecutionContext, tracks: dict, onsets: dict, tatums: dict) -> dg.Output[dict]:
    value = quantization.table_one(tracks, onsets, tatums)
    per_drum = pd.read_parquet(value["per_drum"])
    return dg.Output(value, data_version=dg.DataVersion(value["key"]),
                     metadata={**table_entries("table1", pd.DataFrame(value["table"]).round(4)),
                               **table_entries("table1_5class", pd.DataFrame(value["table_5class"]).round(4)),
                               **table_entries("per_drum_ground_truth",
                                               per_drum[per_drum.source == "ground_truth"].round(4)),
                               **mlflow_run(value.get("run_id")), **skipped_table(value["skipped"])})


#: Every dataset's quantization is checked (one check each).
CHECKED_DATASETS = tuple(DATASETS)


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(f"conflict_far_{d}", asset=quantization_stats,
                             description=f"{d}: share of onsets (BD, SD, HH) lost to conflict or far stays below the "
                                         "dataset's threshold (AdtSettings.quantization_thresholds), on ground-truth "
                                         "beats, or madmom's where the dataset has none (ENST, ADTOF-YT).")
           for d in CHECKED_DATASETS],
    can_subset=True)
def quantization_within_threshold(settings: AdtSettings, quantization_stats: dict):
    """One check per dataset, ``conflict_far_<dataset>`` (Table I union ratio; ground-truth beats, else madmom's).
    A dataset absent from this run's tables yields no result: its check shows as not executed, not as passed
    (``make demo`` does not select it: :func:`pipelines.materialize.checks_of_absent_datasets`)."""
    table = pd.DataFrame(quantization_stats["table"])
    config = settings.settings()
    for dataset in CHECKED_DATASETS:
        rows = table[table.dataset == dataset].set_index("source").union.to_dict()
        source = "ground_truth" if "ground_truth" in rows else "madmom"
        if source not in rows:
            continue
        limit = config.quantization_threshold(dataset)
        yield dg.AssetCheckResult(check_name=f"conflict_far_{dataset}",
                                  passed=bool(rows[source] <= limit),
                                  metadata={"union_ratio": round(float(rows[source]), 4), "threshold": limit,
                                            "beats": source})
