"""Separation (library: adt.separation): the separation study and the drum stems of every mixture."""

import dagster as dg

from adt.separation import stems
from pipelines.resources import AdtSettings


@dg.asset(group_name="separation", code_version=stems.VERSION, tags={"adt/stage": "training"},
          description="Drum stems of every mixture, separated with the separator of the separation study with the "
                      "best validation drums SDR: shared-encoder U-Nets trained independent / simultaneous / "
                      "interleaved / interleaved-acc (interleaved multitask paper), Open-Unmix trained on the same "
                      "renders, pretrained umxl when it loads. Metadata: the paper's Tables 2 and 3, measured.")
def drum_stems(context: dg.AssetExecutionContext, settings: AdtSettings, tracks: dict) -> dg.Output[dict]:
    value = stems.separate_mixtures(tracks, settings.get_profile(), context.log.info)
    model, study = value["model"], value["study"]
    tables = study["tables"]
    return dg.Output(value, data_version=dg.DataVersion(value["key"]),
                     metadata={"mixtures": len(value["stems"]), "model": str(model["model"]),
                               "procedure": str(model["procedure"]),
                               "val_sdr_db": round(float(model.get("val_sdr_db") or float("nan")), 2),
                               "table_2_procedures": dg.MetadataValue.md(tables["table2"]),
                               "table_3_encoder": dg.MetadataValue.md(tables["table3"]),
                               "models": dg.MetadataValue.md(tables["models"]),
                               "transferable_encoder": dg.MetadataValue.md(tables["transfer"]),
                               "path": dg.MetadataValue.path(value["dir"])})
