"""Drum scores and the drum-score language models (tatum paper Sec. III-C, IV-C)."""

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from adt.atomic import atomic_path
from adt.cache import StageCache, cache_key
from adt.config import data_dir
from adt.vocab import CLASS_INDEX, CLASSES_5, INDEX_3_IN_5
from pipelines.assets.common import read_onsets, read_tracks, safe_name
from pipelines.assets.ingest import raw_dataset, raw_pointer
from pipelines.resources import AdtSettings

GRU_LM_NAME = "adt-gru-lm"


@dg.asset(group_name="language_model", code_version="2", deps=[raw_dataset],
          description="Tatum-level binary drum scores Y (K drums x M tatums, K = 5 and 3) on the ground-truth "
                      "tatum grid, per split: every annotated track (demo, MDB) plus every Groove MIDI file as a "
                      "symbolic score (official split: each performance in one split; sessions are spread over splits).")
def drum_scores(context: dg.AssetExecutionContext, settings: AdtSettings, tracks: dict, onsets: dict,
                tatums: dict) -> dg.Output[dict]:
    from adt.lm.scores import drum_score

    profile = settings.get_profile()
    df = read_tracks(tracks).set_index("track_id")
    ons = read_onsets(onsets)
    tat = pd.read_parquet(tatums["path"])
    tat = tat[tat.source == "ground_truth"]
    groove = json.loads(raw_pointer("groove").read_text()) if raw_pointer("groove").is_file() else None
    key = cache_key("drum_scores", "2", tatums["key"], onsets["key"], groove and groove["key"],
                    profile.lm_corpus_limit)
    cache = StageCache("drum_scores", key)
    manifest = cache.load()
    if manifest is None:
        entries, skipped = [], []  # (source, track_id, split, y5)
        for tid, grid in tat.groupby("track_id"):
            if df.loc[tid, "dataset"] == "groove" and groove is not None:
                continue  # the symbolic Groove corpus below holds the whole performance
            o = ons[ons.track_id == tid]
            if o.empty:
                skipped.append({"track_id": tid, "reason": "no onsets"})
                continue
            y = drum_score(o.time_s.to_numpy(), np.array([CLASS_INDEX[d] for d in o.drum], dtype=int),
                           grid.time_s.to_numpy(), k=len(CLASSES_5))
            entries.append((df.loc[tid, "dataset"], tid, df.loc[tid, "split"], y))
        if groove is not None:
            from adt.lm.corpus import groove_corpus

            scores, bad = groove_corpus(Path(groove["path"]), k=5, subdivisions=tatums["subdivisions"],
                                        limit_per_split=profile.lm_corpus_limit)
            entries += [("groove", s["track_id"], s["split"], s["y"]) for s in scores]
            skipped += bad
        paths: dict = {"k5": {}, "k3": {}}
        for split in sorted({e[2] for e in entries}):
            chosen = [e for e in entries if e[2] == split]
            for k, rows in (("k5", slice(None)), ("k3", list(INDEX_3_IN_5))):
                path = cache.dir / f"{split}.{k}.npz"
                with atomic_path(path, suffix=".npz") as tmp:
                    np.savez_compressed(tmp, **{safe_name(tid): y[rows] for _, tid, _, y in chosen})
                paths[k][split] = str(path)
        index = pd.DataFrame([(src, tid, split, y.shape[1]) for src, tid, split, y in entries],
                             columns=["dataset", "track_id", "split", "tatums"])
        with atomic_path(cache.dir / "index.parquet") as tmp:
            index.to_parquet(tmp, index=False)
        counts = index.groupby(["dataset", "split"]).agg(scores=("track_id", "size"), tatums=("tatums", "sum"))
        manifest = cache.save({"paths": paths, "index": str(cache.dir / "index.parquet"), "skipped": skipped,
                               "counts": counts.reset_index().to_dict("records")})
    counts_md = pd.DataFrame(manifest["counts"]).to_markdown(index=False)
    return dg.Output(manifest, data_version=dg.DataVersion(key),
                     metadata={"counts": dg.MetadataValue.md(counts_md), "classes": list(CLASSES_5),
                               "skipped": len(manifest["skipped"]),
                               "skipped_ids": [f"{s['track_id']}: {s['reason']}" for s in manifest["skipped"][:50]]})


def load_scores(path: str) -> list[np.ndarray]:
    with np.load(path) as z:
        return [z[k] for k in z.files]


def _test_scores_by_dataset(drum_scores: dict, k: str) -> dict[str, list[np.ndarray]]:
    index = pd.read_parquet(drum_scores["index"])
    out = {}
    path = drum_scores["paths"][k].get("test")
    if path is None:
        return out
    with np.load(path) as z:
        for ds, group in index[index.split == "test"].groupby("dataset"):
            out[ds] = [z[safe_name(t)] for t in group.track_id if safe_name(t) in z.files]
    return out


@dg.asset(group_name="language_model", code_version="2",
          description="Skip-type bigram drum-score LM (tatum paper Eq. 3) fitted on the training scores; "
                      "perplexity per drum and tatum on each test set (chance = 2; paper on RWC: 1.51).")
def lm_bigram(context: dg.AssetExecutionContext, drum_scores: dict) -> dg.Output[dict]:
    import mlflow

    from adt import tracking
    from adt.lm.bigram import SkipBigramLM

    key = cache_key("lm_bigram", "2", drum_scores["key"])
    cache = StageCache("lm_bigram", key)
    manifest = cache.load()
    if manifest is None:
        result = {}
        with tracking.run("language_model", "skip-bigram", params={"skip": 16, "smoothing": "add-one"}) as run:
            for k in ("k5", "k3"):
                paths = drum_scores["paths"][k]
                if "train" not in paths:
                    raise dg.Failure("no training drum scores")
                lm = SkipBigramLM().fit(load_scores(paths["train"]))
                lm.save(cache.dir / f"bigram.{k}.json")
                ppl = {f"{split}": float(lm.perplexity(load_scores(p))) for split, p in paths.items()}
                ppl.update({f"test.{ds}": float(lm.perplexity(s))
                            for ds, s in _test_scores_by_dataset(drum_scores, k).items()})
                mlflow.log_metrics({f"perplexity.{k}.{s}": v for s, v in ppl.items()})
                mlflow.log_artifact(str(cache.dir / f"bigram.{k}.json"))
                result[k] = ppl
        manifest = cache.save({"path": str(cache.dir / "bigram.k5.json"), "path_k3": str(cache.dir / "bigram.k3.json"),
                               "perplexity": result, "run_id": run.info.run_id})
    return dg.Output(manifest, data_version=dg.DataVersion(key),
                     metadata={"perplexity": manifest["perplexity"], "mlflow_run_id": manifest["run_id"]})


@dg.asset(group_name="language_model", code_version="2", tags={"adt/stage": "training"},
          description="GRU drum-score LM (tatum paper Eq. 2: p(Y[:,m] | Y[:,1:m-1]) over all 2^K drum "
                      "combinations), layers and hidden size tuned with Optuna by k-fold cross validation on "
                      "the training scores (each trial a nested MLflow run), retrained on train with validation "
                      "early selection; perplexity per test set; registered as adt-gru-lm. A 3-class LM (BD, SD, "
                      "HH) with the same hyperparameters for the tatum study.")
def lm_gru(context: dg.AssetExecutionContext, settings: AdtSettings, drum_scores: dict) -> dg.Output[dict]:
    import mlflow
    import torch

    from adt import tracking
    from adt.lm import gru as gru_lm

    profile = settings.get_profile()
    paths = drum_scores["paths"]["k5"]
    key = cache_key("lm_gru", "2", drum_scores["key"], profile.lm_trials, profile.lm_folds, profile.lm_epochs,
                    profile.lm_final_epochs, profile.seed)
    cache = StageCache("lm_gru", key)
    manifest = cache.load()
    if manifest is None:
        torch.set_num_threads(2)
        train = load_scores(paths["train"])
        val = load_scores(paths["validation"]) if "validation" in paths else train[-max(1, len(train) // 10):]
        storage = settings.optuna_storage or f"sqlite:///{data_dir() / 'optuna.db'}"
        with tracking.run("language_model", "gru-lm", params={"trials": profile.lm_trials, "folds": profile.lm_folds,
                                                             "epochs": profile.lm_epochs, "storage": storage,
                                                             "study": f"gru_lm-{key}"}) as run:
            def on_trial(trial, value, params):
                # nested runs need the parent's experiment, else MLflow files them under Default
                with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True,
                                      experiment_id=run.info.experiment_id):
                    mlflow.log_params(params)
                    mlflow.log_metric("cv_perplexity", value)

            study = gru_lm.tune_gru_lm(train, n_trials=profile.lm_trials, folds=profile.lm_folds,
                                       epochs=profile.lm_epochs, storage=storage, study_name=f"gru_lm-{key}",
                                       seed=profile.seed, on_trial=on_trial)
            best = study.best_params
            mlflow.log_params({f"best.{k}": v for k, v in best.items()})
            model, history = gru_lm.train_gru_lm(
                train, val, hidden=best["hidden"], layers=best["layers"], epochs=profile.lm_final_epochs,
                seed=profile.seed, on_epoch=lambda e, m: mlflow.log_metrics(m, step=e))
            ppl = {"validation": float(model.perplexity(val))}
            if "test" in paths:
                ppl["test"] = float(model.perplexity(load_scores(paths["test"])))
            ppl.update({f"test.{ds}": float(model.perplexity(s))
                        for ds, s in _test_scores_by_dataset(drum_scores, "k5").items()})
            mlflow.log_metrics({f"perplexity.{s}": v for s, v in ppl.items()})
            gru_lm.save(model, cache.dir / "gru_lm.pt")
            # the 3-class LM (BD, SD, HH; the tatum paper's K) with the same hyperparameters
            paths3 = drum_scores["paths"]["k3"]
            train3 = load_scores(paths3["train"])
            val3 = load_scores(paths3["validation"]) if "validation" in paths3 else train3[-max(1, len(train3) // 10):]
            model3, _ = gru_lm.train_gru_lm(train3, val3, hidden=best["hidden"], layers=best["layers"],
                                            epochs=profile.lm_final_epochs, seed=profile.seed)
            ppl3 = {"validation": float(model3.perplexity(val3))}
            if "test" in paths3:
                ppl3["test"] = float(model3.perplexity(load_scores(paths3["test"])))
            mlflow.log_metrics({f"perplexity_k3.{s}": v for s, v in ppl3.items()})
            gru_lm.save(model3, cache.dir / "gru_lm_k3.pt")
            info = mlflow.pytorch.log_model(model, name="model", registered_model_name=GRU_LM_NAME,
                                            pip_requirements=["torch==2.13.0"], serialization_format="pickle")
        manifest = cache.save({"path": str(cache.dir / "gru_lm.pt"), "path_k3": str(cache.dir / "gru_lm_k3.pt"),
                               "perplexity_k3": ppl3, "best_params": best, "perplexity": ppl,
                               "run_id": run.info.run_id, "history": history,
                               "model_uri": f"models:/{GRU_LM_NAME}/{info.registered_model_version}",
                               "trials": len(study.trials)})
    return dg.Output(manifest, data_version=dg.DataVersion(key),
                     metadata={"perplexity": manifest["perplexity"], "perplexity_k3": manifest["perplexity_k3"],
                               "best_params": manifest["best_params"],
                               "mlflow_run_id": manifest["run_id"], "model_uri": manifest["model_uri"],
                               "trials": manifest["trials"]})
