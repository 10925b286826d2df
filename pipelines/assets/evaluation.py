"""Evaluation (library: adt.evaluation): the zero-shot matrix (thesis ch. 7)."""

import dagster as dg
import pandas as pd

from adt.evaluation import zero_shot
from adt.evaluation.zero_shot import matrix_table
from adt.features.index import FeatureIndex
from adt.frame.study import VERSION
from adt.metrics import reference_onsets
from pipelines.metadata import figure_link, mlflow_run, table_entries
from pipelines.resources import AdtSettings


@dg.asset(group_name="evaluation", code_version=VERSION, tags={"adt/stage": "training"},
          description="Zero-shot matrix (thesis ch. 7): the sweep's best architecture and hyperparameters trained "
                      "on each training-set combination (rows), and the model shipped with adt (last row), tested "
                      "on every dataset's test split (columns); "
                      "cells = micro F-measure (50 ms, mir_eval), 5-class and 3-class.")
def zero_shot_matrix(context: dg.AssetExecutionContext, settings: AdtSettings, features: FeatureIndex, onsets: dict,
                     transcriber: dict) -> dg.Output[dict]:
    config = settings.settings()
    manifest = zero_shot.zero_shot_matrix(features, reference_onsets(pd.read_parquet(onsets["path"])), transcriber,
                                          config.get_profile(), config.loss_weighting, context.log.info,
                                          tracks_path=f"{onsets['dir']}/tracks.parquet")
    # each matrix once, as a table (rows: training sets; `*` in-domain); the heatmaps of the same figures are links
    return dg.Output(manifest, data_version=dg.DataVersion(manifest["key"]),
                     metadata={**{k: v for n in ("3class", "5class") for k, v in table_entries(
                                   f"matrix_{n}", matrix_table(manifest["cells"], f"f_{n}"), index="train").items()},
                               "about": "micro F-measure (50 ms, mir_eval); * in-domain: the row's training sets "
                                        "include the column's dataset",
                               **mlflow_run(manifest["run_id"]),
                               **figure_link("heatmap_3class", "zero_shot_f_3class.png", manifest["run_id"]),
                               **figure_link("heatmap_5class", "zero_shot_f_5class.png", manifest["run_id"]),
                               "path": dg.MetadataValue.path(manifest["path"])})
