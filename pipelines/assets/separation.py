"""Separation (library: adt.separation): Open-Unmix drum stems of every mixture."""

import dagster as dg

from adt.separation import stems
from pipelines.resources import AdtSettings


@dg.asset(group_name="separation", code_version=stems.VERSION, tags={"adt/stage": "training"},
          description="Drum stems separated from every mixture with Open-Unmix: pretrained umxl drums "
                      "when it loads, else a drums model trained here on the demo corpus's rendered stems.")
def drum_stems(context: dg.AssetExecutionContext, settings: AdtSettings, tracks: dict) -> dg.Output[dict]:
    value = stems.separate_mixtures(tracks, settings.get_profile(), context.log.info)
    model = value["model"]
    return dg.Output(value, data_version=dg.DataVersion(value["key"]),
                     metadata={"mixtures": len(value["stems"]), "model": str(model["model"]),
                               "val_sdr_db": float(model.get("val_sdr_db", float("nan"))),
                               "path": dg.MetadataValue.path(value["dir"])})
