"""Drum scores and the drum-score language models (library: adt.lm; tatum paper Sec. III-C, IV-C)."""

import dagster as dg
import pandas as pd

from adt.lm import corpus, fit
from pipelines.metadata import mapping_table, mlflow_run, registered_model, skipped_table, table_entries
from pipelines.resources import AdtSettings


@dg.asset(group_name="language_model", code_version=corpus.VERSION,
          ins={"groove_raw": dg.AssetIn("raw_dataset",
                                        partition_mapping=dg.SpecificPartitionsPartitionMapping(["groove"]),
                                        metadata={"allow_missing_partitions": True})},
          description="Every Groove MIDI performance (beats and fills, official split) as a tatum-level drum "
                      "score on its MIDI beat grid (K = 5); empty when Groove is not in place.")
def groove_scores(context: dg.AssetExecutionContext, settings: AdtSettings, groove_raw: dict | None
                  ) -> dg.Output[dict]:
    """``groove_raw``: raw_dataset[groove], or None when that partition was never materialized."""
    config = settings.settings()
    value = corpus.build_groove_scores(groove_raw, config.tatum_subdivisions,
                                       config.get_profile().lm_corpus_limit)
    return dg.Output(value, data_version=dg.DataVersion(value["key"]),
                     metadata={"scores": len(value["index"]), "skipped": len(value["skipped"]),
                               "splits": ", ".join(sorted(value["paths"]))})


@dg.asset(group_name="language_model", code_version=corpus.VERSION,
          description="Tatum-level binary drum scores Y (K drums x M tatums, K = 5 and 3) on the ground-truth "
                      "tatum grid, per split: every annotated track (demo, MDB) plus every Groove MIDI file as a "
                      "symbolic score (official split: each performance in one split; sessions are spread over splits).")
def drum_scores(context: dg.AssetExecutionContext, tracks: dict, onsets: dict, tatums: dict,
                groove_scores: dict) -> dg.Output[dict]:
    manifest = corpus.build_drum_scores(tracks, onsets, tatums, groove_scores)
    return dg.Output(manifest, data_version=dg.DataVersion(manifest["key"]),
                     metadata={**table_entries("counts", pd.DataFrame(manifest["counts"])),
                               **skipped_table(manifest["skipped"])})


@dg.asset(group_name="language_model", code_version=fit.VERSION,
          description="Skip-type bigram drum-score LM (tatum paper Eq. 3) fitted on the training scores; "
                      "perplexity per drum and tatum on each test set (chance = 2; paper on RWC: 1.51).")
def lm_bigram(context: dg.AssetExecutionContext, drum_scores: dict) -> dg.Output[dict]:
    try:
        manifest = fit.fit_bigram(drum_scores)
    except ValueError as exc:
        raise dg.Failure(str(exc)) from None
    return dg.Output(manifest, data_version=dg.DataVersion(manifest["key"]),
                     metadata={**mapping_table("perplexity", manifest["perplexity"], key="K"),
                               **mlflow_run(manifest["run_id"])})


@dg.asset(group_name="language_model", code_version=fit.VERSION, tags={"adt/stage": "training"},
          description="GRU drum-score LM (tatum paper Eq. 2: p(Y[:,m] | Y[:,1:m-1]) over all 2^K drum "
                      "combinations), layers and hidden size tuned with Optuna by k-fold cross validation on "
                      "the training scores (each trial a nested MLflow run), retrained on train with validation "
                      "early selection; or, with the profile's start_from_shipped (demo), the shipped 3 x 64 LM "
                      "(adt/pretrained/gru_lm_groove.md) fine-tuned. The shipped LM is kept whenever it is at least "
                      "as good on the validation scores. Perplexity per test set; registered as adt-gru-lm. A "
                      "3-class LM (BD, SD, HH) with the same hyperparameters for the tatum study.")
def lm_gru(context: dg.AssetExecutionContext, settings: AdtSettings, drum_scores: dict) -> dg.Output[dict]:
    config = settings.settings()
    manifest = fit.fit_gru(drum_scores, config.get_profile(), config.optuna_storage or None, context.log.info)
    return dg.Output(manifest, data_version=dg.DataVersion(manifest["key"]),
                     metadata={**mapping_table("perplexity", {"k5": manifest["perplexity"],
                                                            "k3": manifest["perplexity_k3"]}, key="K"),
                               **mapping_table("best_params", manifest["best_params"] or {}, key="parameter"),
                               **mlflow_run(manifest["run_id"]), **registered_model(manifest["model_uri"]),
                               "trials": manifest["trials"],
                               **table_entries("chosen", pd.DataFrame([{"K": k, "chosen": c, "started_from":
                                                              manifest["started_from"].get(k, ""),
                                                              "why": manifest["chosen_reason"].get(k, "")}
                                                             for k, c in manifest["chosen"].items()]))})


@dg.asset_check(asset=lm_gru, name="gru_beats_bigram", additional_ins={"lm_bigram": dg.AssetIn("lm_bigram")},
                description="The GRU LMs are worth their cost: their perplexity per drum and tatum on the test scores "
                            "is below the skip-bigram's on the same scores, for K = 5 and K = 3 (the tatum paper's "
                            "Sec. IV-C finding, K = 3: GRU 1.44 < bigram 1.51); guards against an under-trained or "
                            "degenerate GRU LM regularizing the tatum study.")
def gru_lm_beats_bigram(lm_gru: dict, lm_bigram: dict) -> dg.AssetCheckResult:
    passed, rows = fit.gru_beats_bigram(lm_gru, lm_bigram)
    return dg.AssetCheckResult(passed=passed, metadata={
        **{f"{r['k']}.{who}": round(r[who], 4) for r in rows if r["set"] == "test" for who in ("gru", "bigram")},
        **(table_entries("perplexities", pd.DataFrame(rows).round(4)) if rows
           else {"perplexities": "no test figures"})})
