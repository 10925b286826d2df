"""Issue 28's asset checks on degenerate results: each fails on a hand-made degenerate result and passes on a
good one (the Dagster checks are called as Dagster would, with the asset's value)."""

from __future__ import annotations

import pandas as pd
import pytest

from adt.frame.study import TranscriberResult
from adt.tatum.study import TatumStudyResult
from adt.trimming.study import TrimmedTranscriberResult
from pipelines import checks


def _trimmed(rounds: list[dict], optimal: dict | None = None) -> TrimmedTranscriberResult:
    return TrimmedTranscriberResult(key="t", path="", rounds=rounds, table1="", curves="", figure="", optimal=optimal,
                                    lite_path=None, model_uri=None, run_id="")


def _transcriber(best_val_f: float, shipped: dict | None = None) -> TranscriberResult:
    return TranscriberResult(key="s", train_sets=["demo"], architecture="frame_crnn", best_params={},
                             best_val_f=best_val_f, model_path="", study_name="", n_trials=0, trials=[], run_id="",
                             shipped=shipped or {})


def _rounds(val_error: float, test_error: float) -> list[dict]:
    """A trimming study's rounds: two seeds' references (round 0) and a trimmed round."""
    return [{"round": 0, "seed": s, "val_error": val_error, "test_error": test_error, "line": "trim/magnitude/local"}
            for s in (1, 2)] + [{"round": 1, "seed": 1, "val_error": 0.5, "test_error": 0.5,
                                 "line": "trim/magnitude/local"}]


def test_a_trimming_reference_that_finds_no_onset_fails():
    from adt.trimming.study import REFERENCE_F_FLOOR, reference_transcribes

    # the demo's reference trained from scratch: test error 0.98-0.99
    passed, meta = reference_transcribes(_rounds(0.985, 0.99))
    assert not passed and meta["reference_val_f"] == pytest.approx(0.015) and meta["floor"] == REFERENCE_F_FLOOR
    assert reference_transcribes(_rounds(0.2, 0.25))[0]
    assert not checks.trimming_reference_transcribes(trimmed_transcriber=_trimmed(_rounds(0.985, 0.99))).passed
    assert checks.trimming_reference_transcribes(trimmed_transcriber=_trimmed(_rounds(0.2, 0.25))).passed
    # a reference that transcribes, but every trimmed round collapsed: the lite network finds nothing (issue 30)
    collapsed = _trimmed(_rounds(0.2, 0.25), optimal={"val_error": 0.99, "test_error": 0.99})
    assert not checks.trimming_reference_transcribes(trimmed_transcriber=collapsed).passed
    assert reference_transcribes(_rounds(0.2, 0.25), lite={"val_error": 0.3})[1]["lite_val_f"] == pytest.approx(0.7)


def test_a_transcriber_worse_than_the_shipped_one_fails():
    from adt.frame.study import not_worse_than_shipped

    shipped = {"shipped_val_f": 0.80, "shipped_sha256": "0" * 64}
    worse = _transcriber(0.62, shipped)
    passed, meta = not_worse_than_shipped(worse)
    assert not passed and meta == {"val_f": 0.62, "shipped_val_f": 0.8, "started_from": "scratch"}
    assert not_worse_than_shipped(_transcriber(0.85, shipped))[0]
    assert not_worse_than_shipped(_transcriber(0.3))[0]  # nothing shipped to compare with
    nothing = not_worse_than_shipped(_transcriber(0.0))  # finds no onset: degenerate, shipped scored or not
    assert not nothing[0] and "degenerate" in nothing[1]["why"]
    assert not not_worse_than_shipped(_transcriber(0.0, shipped))[0]
    assert not checks.transcriber_not_worse_than_shipped(transcriber=worse).passed


def _table_ii(bigram: float, gru: float) -> pd.DataFrame:
    """Table II summaries: the unregularized tatum CRNN at 0.74 everywhere, the regularized ones ``+ delta``."""
    rows = []
    for test_set in ("demo", "groove", "mdb"):
        for tatums in ("estimated", "ground_truth"):
            for method, f in (("frame_crnn", 0.70), ("tatum_crnn", 0.74), ("tatum_bigram", 0.74 + bigram),
                              ("tatum_gru", 0.74 + gru)):
                rows.append({"method": method, "match": "grid", "class": "all", "test_set": test_set,
                             "tatums": tatums, "f": f})
                rows.append({"method": method, "match": "time", "class": "all", "test_set": test_set,
                             "tatums": tatums, "f": 0.1})
    return pd.DataFrame(rows)


def test_lm_regularization_worse_everywhere_warns(tmp_path):
    import dagster as dg

    from adt.tatum.evaluate import regularization_findings

    passed, meta = regularization_findings(_table_ii(+0.01, -0.05))  # the demo's: GRU-regularized lower everywhere
    assert not passed and meta["tatum_gru"].startswith("0 of 6 sets") and meta["tatum_bigram"].startswith("6 of 6")
    assert regularization_findings(_table_ii(+0.01, +0.02))[0]
    path = tmp_path / "results.parquet"
    _table_ii(-0.02, -0.05).to_parquet(path)
    study = TatumStudyResult(key="t", results=str(path), per_track="", models={}, fig3=None, markdown={},
                             histories={}, best_val_f={}, train_sets=[], train_tracks=0, val_tracks=0, test_sets=[],
                             gru_lm="", weights={}, weight_trials=0, frame_model=None, skipped=[], run_id="",
                             train_seconds={})
    from pipelines.resources import DataStoreResource

    context = dg.build_asset_check_context(resources={"data_store": DataStoreResource(uri="")})  # no store: no pull
    result = checks.lm_regularization_helps_somewhere(context, tatum_study=study)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
