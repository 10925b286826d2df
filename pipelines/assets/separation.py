"""Separation (library: adt.separation): the separation study and the drum stems of every mixture."""

import dagster as dg

from adt.separation import stems
from pipelines.metadata import markdown_tables, mlflow_run
from pipelines.resources import AdtSettings


@dg.asset(group_name="separation", code_version=stems.VERSION, tags={"adt/stage": "training"},
          description="Drum stems of every mixture, separated with the separator of the separation study with the "
                      "best validation drums SDR (on real validation songs among the models that never heard them, "
                      "never worse on the validation renders than the shipped separator): shared-encoder U-Nets "
                      "trained independent / simultaneous / interleaved / interleaved-acc (interleaved multitask "
                      "paper) on renders and real stems (the profile's separation_models; with start_from_shipped "
                      "the shipped architecture fine-tuned from the shipped weights), Open-Unmix trained on the same "
                      "data, pretrained umxl when it loads, the shipped separator. Metadata: the paper's Tables 2 "
                      "and 3, the real-song table, which models started from the shipped weights and which heard "
                      "the real songs (their real-song figures are development figures).")
def drum_stems(context: dg.AssetExecutionContext, settings: AdtSettings, tracks: dict) -> dg.Output[dict]:
    value = stems.separate_mixtures(tracks, settings.get_profile(), context.log.info)
    model, study = value["model"], value["study"]
    tables = study["tables"]
    return dg.Output(value, data_version=dg.DataVersion(value["key"]),
                     metadata={"mixtures": len(value["stems"]), "model": str(model["model"]),
                               "procedure": str(model["procedure"]),
                               "val_sdr_db": round(float(model.get("val_sdr_db") or float("nan")), 2),
                               "choice": str(study.get("choice", "")),
                               "started_from_shipped": ", ".join(study.get("started_from_shipped", [])) or "none",
                               "heard_real_songs": ", ".join(study.get("heard_real_songs", [])) or "none",
                               "chosen_heard_real_songs": bool(model.get("heard_real_songs", False)),
                               **mlflow_run(study.get("run_id")),
                               **{k: v for name, md in (("table_2_procedures", tables["table2"]),
                                                        ("table_3_encoder", tables["table3"]),
                                                        ("real_songs", tables["real"]), ("models", tables["models"]),
                                                        ("transferable_encoder", tables["transfer"]))
                                  for k, v in markdown_tables(name, md).items()},
                               "path": dg.MetadataValue.path(value["dir"])})


@dg.asset_check(asset=drum_stems, name="better_than_mixture",
                description="The chosen separator is not degenerate: its drums SDR beats the mixture itself as the "
                            "estimate and no source's estimate is silent, on the real validation songs (the "
                            "validation renders without real songs, or when the chosen separator heard the real "
                            "songs: the shipped one, or one fine-tuned from it).")
def separator_beats_the_mixture(drum_stems: dict) -> dg.AssetCheckResult:
    from adt.separation.study import degenerate

    results = drum_stems["study"]["results"]
    chosen = drum_stems["study"]["chosen"]
    heard = bool(chosen.get("heard_real_songs"))
    split = "real_val" if "sdr.drums.real_val" in chosen and not heard else "val"
    key = f"sdr.drums.{split}"
    floor = results.get("mixture", {}).get(key, float("-inf"))
    value = chosen.get(key, float("nan"))
    silent = degenerate(chosen, split)
    real_val = {"real_val_drums_sdr_db": round(float(chosen["sdr.drums.real_val"]), 2),
                "real_val_mixture_sdr_db": round(float(results.get("mixture", {}).get("sdr.drums.real_val",
                                                                                       float("nan"))), 2)
                } if heard and "sdr.drums.real_val" in chosen else {}
    return dg.AssetCheckResult(passed=bool(value > floor) and not silent,
                               metadata={"chosen": chosen["name"], "set": key, "drums_sdr_db": round(float(value), 2),
                                         "mixture_sdr_db": round(float(floor), 2),
                                         "silent_sources": ", ".join(silent) or "none",
                                         "chosen_heard_real_songs": heard,
                                         # a model that heard the real songs: its real_val figure is a development one
                                         **real_val})
