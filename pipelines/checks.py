"""The asset checks: a degenerate result (a separator worse than the mixture, a transcriber worse than the
shipped one, a trimming reference that finds nothing, an LM worse than its baseline, quantization past its
threshold) fails here, never as a table row without comment. Each check calls one library decision; one that reads
files of the data folder pulls them first where a data store is configured
(:class:`pipelines.resources.DataStoreResource`)."""


import dagster as dg
import pandas as pd

from adt.data.datasets import DATASETS
from adt.frame.study import TranscriberResult
from adt.lm.fit import LmBigramResult, LmGruResult, gru_beats_bigram
from adt.rhythm.table_one import QuantizationStatsResult
from adt.separation.stems import DrumStemsResult
from adt.tatum.study import TatumStudyResult
from adt.trimming.study import TrimmedTranscriberResult
from pipelines.metadata import table_entries

#: Every dataset's quantization is checked (one check each).
CHECKED_DATASETS = tuple(DATASETS)


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(f"conflict_far_{d}", asset="quantization_stats",
                             description=f"{d}: share of onsets (BD, SD, HH) lost to conflict or far stays below the "
                                         "dataset's threshold (AdtSettings.quantization_thresholds), on ground-truth "
                                         "beats, or madmom's where the dataset has none (ENST, ADTOF-YT).")
           for d in CHECKED_DATASETS],
    can_subset=True, required_resource_keys={"settings"})
def quantization_within_threshold(context: dg.AssetCheckExecutionContext,
                                  quantization_stats: QuantizationStatsResult):
    """One check per dataset, ``conflict_far_<dataset>`` (Table I union ratio; ground-truth beats, else madmom's).
    A dataset absent from this run's tables yields no result: its check shows as not executed, not as passed
    (``make demo`` does not select it: :func:`pipelines.materialize.checks_of_absent_datasets`)."""
    table = pd.DataFrame(quantization_stats.table)
    config = context.resources.settings.settings()
    for dataset in CHECKED_DATASETS:
        rows = table[table.dataset == dataset].set_index("source").union.to_dict()
        source = "ground_truth" if "ground_truth" in rows else "madmom"
        if source not in rows:
            continue
        limit = config.quantization_threshold(dataset)
        yield dg.AssetCheckResult(check_name=f"conflict_far_{dataset}", asset_key="quantization_stats",
                                  passed=bool(rows[source] <= limit),
                                  metadata={"union_ratio": round(float(rows[source]), 4), "threshold": limit,
                                            "beats": source})


@dg.asset_check(asset="drum_stems", name="better_than_mixture",
                description="The chosen separator is not degenerate: its drums SDR beats the mixture itself as the "
                            "estimate and no source's estimate is silent, on the real validation songs (the "
                            "validation renders without real songs, or when the chosen separator heard the real "
                            "songs: the shipped one, or one fine-tuned from it).")
def separator_beats_the_mixture(drum_stems: DrumStemsResult) -> dg.AssetCheckResult:
    from adt.separation.study_choice import beats_the_mixture

    passed, meta = beats_the_mixture(drum_stems.study)
    return dg.AssetCheckResult(passed=passed, metadata=meta)


@dg.asset_check(asset="transcriber", name="not_worse_than_shipped",
                description="The sweep's best model is not worse than the transcriber shipped with the package on "
                            "the same validation tracks and peak picking (issue 28; adt transcribe falls back to "
                            "the shipped model when it is).")
def transcriber_not_worse_than_shipped(transcriber: TranscriberResult) -> dg.AssetCheckResult:
    from adt.frame.study import not_worse_than_shipped

    passed, meta = not_worse_than_shipped(transcriber)
    return dg.AssetCheckResult(passed=passed, metadata=meta)


@dg.asset_check(asset="trimmed_transcriber", name="reference_transcribes",
                description="The trimming reference transcribes: its validation micro F (3 classes, mean over "
                            "seeds) is at least the floor adt.trimming.study.REFERENCE_F_FLOOR; below it Table 1 "
                            "and Figure 2 measure a network that finds almost no onset; the lite network's "
                            "validation F is above it too.")
def trimming_reference_transcribes(trimmed_transcriber: TrimmedTranscriberResult) -> dg.AssetCheckResult:
    from adt.trimming.study import reference_transcribes

    passed, meta = reference_transcribes(trimmed_transcriber.rounds, lite=trimmed_transcriber.optimal)
    return dg.AssetCheckResult(passed=passed, metadata=meta)


@dg.asset_check(asset="lm_gru", name="gru_beats_bigram", additional_ins={"lm_bigram": dg.AssetIn("lm_bigram")},
                description="The GRU LMs are worth their cost: their perplexity per drum and tatum on the test scores "
                            "is below the skip-bigram's on the same scores, for K = 5 and K = 3 (the tatum paper's "
                            "Sec. IV-C finding, K = 3: GRU 1.44 < bigram 1.51); guards against an under-trained or "
                            "degenerate GRU LM regularizing the tatum study.")
def gru_lm_beats_bigram(lm_gru: LmGruResult, lm_bigram: LmBigramResult) -> dg.AssetCheckResult:
    passed, rows = gru_beats_bigram(lm_gru, lm_bigram)
    return dg.AssetCheckResult(passed=passed, metadata={
        **{f"{r['k']}.{who}": round(r[who], 4) for r in rows if r["set"] == "test" for who in ("gru", "bigram")},
        **(table_entries("perplexities", pd.DataFrame(rows).round(4)) if rows
           else {"perplexities": "no test figures"})})


@dg.asset_check(asset="tatum_study", name="lm_helps_somewhere",
                description="Table II's finding holds at least somewhere: no LM-regularized tatum model (bi-gram, "
                            "GRU) is worse than the unregularized one on every test set and tatum source (all "
                            "drums, grid match). A warning: a reversed finding is a result, not a crash.",
                required_resource_keys={"data_store"})
def lm_regularization_helps_somewhere(context: dg.AssetCheckExecutionContext,
                                      tatum_study: TatumStudyResult) -> dg.AssetCheckResult:
    from adt.tatum.evaluate import regularization_findings

    context.resources.data_store.pull("tatum_study", context.log.info, upstream=False)  # its results table
    passed, meta = regularization_findings(pd.read_parquet(tatum_study.results))
    return dg.AssetCheckResult(passed=passed, severity=dg.AssetCheckSeverity.WARN, metadata=meta)


def _reproduces(asset: str, alias: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name=f"{alias}_reproduces",
                    description=f"The registry's {alias} loads (weights only) and gives the F-measure recorded at its "
                                "registration on one validation track (adt.evaluation.registered): a truncated or altered "
                                "checkpoint fails here, not later in adt transcribe.",
                    required_resource_keys={"data_store"})
    def check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        from adt.evaluation.registered import alias_reproduces

        # its validation track: a features file and its targets (the features stage's folders alone)
        context.resources.data_store.pull("features", context.log.info, upstream=False)
        passed, meta = alias_reproduces(alias)
        return dg.AssetCheckResult(passed=passed, metadata=meta)
    return check


#: Every check, for the code location.
ALL_CHECKS = [quantization_within_threshold, separator_beats_the_mixture, transcriber_not_worse_than_shipped,
              trimming_reference_transcribes, _reproduces("transcriber", "champion"),
              _reproduces("trimmed_transcriber", "lite"), lm_regularization_helps_somewhere, gru_lm_beats_bigram]
