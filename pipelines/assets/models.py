"""Frame-level transcription models (library: adt.frame.study; thesis chs. 5-6): the transcriber
sweep and the architecture study (thesis Table 6.1); the trimmed transcriber (adt.trimming, lottery paper)."""

import dagster as dg
import pandas as pd

from adt.features.index import FeatureIndex
from adt.frame import study
from adt.trimming.study import VERSION as TRIMMING_VERSION
from adt.metrics import reference_onsets
from pipelines.metadata import figure, mapping_table, markdown_tables, mlflow_run, registered_model, rounded
from pipelines.resources import AdtSettings


@dg.asset(group_name="models", code_version=study.VERSION, tags={"adt/stage": "training"},
          description="Transcriber sweep (thesis ch. 5: AdamW, clipping at norm 2, LR / 5 on plateau, early "
                      "stopping, selection on validation micro F; Optuna TPE + median pruning, each trial a "
                      "nested MLflow run) on every training split; the best model registered as adt-frame-crnn "
                      "with alias champion unless the champion scored higher on the same validation data.")
def transcriber(context: dg.AssetExecutionContext, settings: AdtSettings, features: FeatureIndex,
                onsets: dict) -> dg.Output[dict]:
    from adt.frame.sweep import trials_markdown

    config = settings.settings()
    try:
        main = study.transcriber_sweep(features, reference_onsets(pd.read_parquet(onsets["path"])),
                                       config.get_profile(), config.loss_weighting, config.optuna_storage or None,
                                       context.log.info)
    except ValueError as exc:
        raise dg.Failure(str(exc)) from None
    return dg.Output(main, data_version=dg.DataVersion(main["key"]),
                     metadata={**mlflow_run(main["run_id"]), **registered_model(main["model_uri"]),
                               **registered_model(main["champion_uri"], name="champion"),
                               "train_sets": "+".join(main["train_sets"]), "architecture": main["architecture"],
                               **mapping_table("best_params", main["best_params"] or {}, key="parameter"),
                               "best_val_f": rounded(main["best_val_f"]), "study": main["study_name"],
                               "started_from": main.get("started_from", "scratch"),
                               "shipped_val_f": rounded((main.get("shipped") or {}).get("shipped_val_f", "not scored")),
                               "n_trials": main["n_trials"],
                               **markdown_tables("trials", trials_markdown(main["trials"]))})


@dg.asset(group_name="models", code_version=study.VERSION, tags={"adt/stage": "training"},
          description="Thesis Table 6.1: a sweep over the profile's architectures per training dataset, each "
                      "architecture's best model scored on that dataset's test split (micro F, 5 classes, 50 ms). "
                      "Profiles with one architecture (demo) have no study.")
def architecture_study(context: dg.AssetExecutionContext, settings: AdtSettings, features: FeatureIndex,
                       onsets: dict, transcriber: dict) -> dg.Output[dict]:
    config = settings.settings()
    value = study.architecture_study(features, reference_onsets(pd.read_parquet(onsets["path"])),
                                     config.get_profile(), transcriber, config.loss_weighting,
                                     config.optuna_storage or None, context.log.info)
    return dg.Output(value, data_version=dg.DataVersion(value["key"]),
                     metadata={**markdown_tables("table_6_1", value["markdown"]),
                               "table_6_1_about": "micro F (5 classes, 50 ms) on each training set's test split",
                               **mlflow_run(value["run_id"])})


@dg.asset(group_name="models", tags={"adt/stage": "training"},
          code_version=f"{study.VERSION}-trimming{TRIMMING_VERSION}",
          description="Lottery-ticket trimming of the champion (lottery paper): whole units removed 20% of the weights "
                      "per round, rewound to half of training and retrained (plus the fine-tuning and masking "
                      "baselines, each criterion and selection of the profile, several seeds); Table 1 and Figure 2, "
                      "one MLflow run per line and seed in adt/trimming; the optimal smaller network (the fewest "
                      "parameters within 1.1x the reference's validation error) registered as adt-frame-crnn@lite.")
def trimmed_transcriber(context: dg.AssetExecutionContext, settings: AdtSettings, features: FeatureIndex,
                        onsets: dict, transcriber: dict) -> dg.Output[dict]:
    from adt.trimming.study import trimming_study

    config = settings.settings()
    try:
        value = trimming_study(features, reference_onsets(pd.read_parquet(onsets["path"])), transcriber,
                               config.get_profile(), config.loss_weighting, context.log.info)
    except ValueError as exc:
        raise dg.Failure(str(exc)) from None
    best = value["optimal"] or {}
    return dg.Output(value, data_version=dg.DataVersion(value["key"]),
                     metadata={**markdown_tables("table1", value["table1"]),
                               **markdown_tables("figure2_points", value["curves"]),
                               **figure("figure2", value["figure"], value["run_id"],
                                        "Figure 2: test error by share of weights removed"),
                               **registered_model(value["model_uri"], name="lite"), **mlflow_run(value["run_id"]),
                               "reference_from": value.get("reference_from", "fresh weights"),
                               "optimal_params": int(best.get("params", 0)),
                               "optimal_removed": rounded(float(best.get("removed", 0.0)))})


@dg.asset_check(asset=transcriber, name="not_worse_than_shipped",
                description="The sweep's best model is not worse than the transcriber shipped with the package on "
                            "the same validation tracks and peak picking (issue 28; adt transcribe falls back to "
                            "the shipped model when it is).")
def transcriber_not_worse_than_shipped(transcriber: dict) -> dg.AssetCheckResult:
    from adt.frame.shipped import not_worse_than_shipped

    passed, meta = not_worse_than_shipped(transcriber)
    return dg.AssetCheckResult(passed=passed, metadata=meta)


@dg.asset_check(asset=trimmed_transcriber, name="reference_transcribes",
                description="The trimming reference transcribes: its validation micro F (3 classes, mean over "
                            "seeds) is at least the floor adt.trimming.study.REFERENCE_F_FLOOR; below it Table 1 "
                            "and Figure 2 measure a network that finds almost no onset; the lite network's "
                            "validation F is above it too.")
def trimming_reference_transcribes(trimmed_transcriber: dict) -> dg.AssetCheckResult:
    from adt.trimming.study import reference_transcribes

    passed, meta = reference_transcribes(trimmed_transcriber["rounds"], lite=trimmed_transcriber.get("optimal"))
    return dg.AssetCheckResult(passed=passed, metadata=meta)



