"""Evaluation (library: adt.evaluation): the zero-shot matrix (thesis ch. 7)."""

import dagster as dg
import pandas as pd

from adt.evaluation import zero_shot
from adt.evaluation.zero_shot import matrix_table
from adt.features.index import FeatureIndex
from adt.frame.study import VERSION
from adt.metrics import reference_onsets
from pipelines.metadata import figure, mlflow_run, table
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
    text = ("**5-class micro F (50 ms)**\n\n" + manifest["markdown"]["f_5class"] +
            "\n\n**3-class (BD, SD, HH) micro F (50 ms)**\n\n" + manifest["markdown"]["f_3class"] +
            "\n\n`*` in-domain: the row's training sets include the column's dataset.")
    return dg.Output(manifest, data_version=dg.DataVersion(manifest["key"]),
                     metadata={"matrix_3class": table(matrix_table(manifest["cells"], "f_3class"), index="train"),
                               "matrix": dg.MetadataValue.md(text), **mlflow_run(manifest["run_id"]),
                               **figure("heatmap_3class", f"{manifest['path']}/zero_shot_f_3class.png",
                                        manifest["run_id"], "3-class micro F heatmap"),
                               **figure("heatmap_5class", f"{manifest['path']}/zero_shot_f_5class.png",
                                        manifest["run_id"], "5-class micro F heatmap"),
                               "path": dg.MetadataValue.path(manifest["path"])})
