"""The language-model stage: fit, score and register the drum-score LMs (tatum paper Secs. III-C, IV-C).

:func:`fit_bigram` (asset ``lm_bigram``): the skip-type bigram LM (Eq. 3) on the training
scores, perplexity per split and test set. :func:`fit_gru` (asset ``lm_gru``): the GRU LM
(Eq. 2), layers and hidden size tuned with Optuna by k-fold cross-validation, retrained,
registered as :data:`GRU_LM_NAME`; a 3-class GRU LM with the same hyperparameters for the
tatum study. Both cached per drum-score corpus and logged to MLflow ``adt/language_model``; the GRU LM
registered weights only (:func:`register_gru_lm`, :mod:`adt.registry`) with the alias ``champion``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from adt.cache import stage_cache
from adt.config import Profile, data_dir
from adt.lm.corpus import load_scores, scores_by_test_set

#: Version of the LM stages (``lm_bigram``, ``lm_gru`` assets).
VERSION = "2"
#: Registered model name of the GRU LM.
GRU_LM_NAME = "adt-gru-lm"
#: Its alias: the latest fitted version (:func:`register_gru_lm`).
GRU_LM_ALIAS = "champion"
#: Description of the registered model :data:`GRU_LM_NAME`.
GRU_LM_DESCRIPTION = (
    "GRU drum-score language model (tatum paper Eq. 2): drum scores (batch, K = 5 drums BD SD TT HH CY, "
    "M tatums) -> log-probabilities (batch, M, 2^K) of every drum combination at each tatum given the previous "
    "ones, in nats. Alias champion: the latest fitted version. Each version is a weights-only checkpoint "
    "(checkpoint.pt: config + state dict, adt.lm.gru.save; load with adt.registry.load(uri, kind='gru_lm')), "
    "never a pickle.")


def fit_bigram(drum_scores: dict) -> dict:
    """The skip-bigram LMs (K = 5 and 3) of a drum-score corpus.

    Returns:
        manifest: ``path`` (5-class JSON), ``path_k3``, ``perplexity`` {k5|k3: {split or
        test.<dataset>: perplexity per drum and tatum}}, ``run_id``.

    Raises:
        ValueError: the corpus has no training scores.
    """
    import mlflow

    from adt import tracking
    from adt.lm.bigram import SkipBigramLM

    cache = stage_cache("lm_bigram", VERSION, drum_scores["key"])

    def fit(folder: Path) -> dict:
        result = {}
        with tracking.run("language_model", "skip-bigram", params={"skip": 16, "smoothing": "add-one"}) as run:
            for k in ("k5", "k3"):
                paths = drum_scores["paths"][k]
                if "train" not in paths:
                    raise ValueError("no training drum scores: the corpus has no training split")
                lm = SkipBigramLM().fit(load_scores(paths["train"]))
                lm.save(folder / f"bigram.{k}.json")
                ppl = {split: float(lm.perplexity(load_scores(p))) for split, p in paths.items()}
                ppl.update({f"test.{ds}": float(lm.perplexity(s))
                            for ds, s in scores_by_test_set(drum_scores, k).items()})
                mlflow.log_metrics({f"perplexity.{k}.{s}": v for s, v in ppl.items()})
                mlflow.log_artifact(str(folder / f"bigram.{k}.json"))
                result[k] = ppl
        return {"path": str(folder / "bigram.k5.json"), "path_k3": str(folder / "bigram.k3.json"),
                "perplexity": result, "run_id": run.info.run_id}

    return cache.get_or_compute(fit)


def register_gru_lm(model, *, source: str, trained_on: str, perplexity: dict[str, float]) -> str:
    """Register the GRU LM ``model`` as a version of :data:`GRU_LM_NAME` (weights only, in the active MLflow
    run: :func:`adt.registry.register`) and point :data:`GRU_LM_ALIAS` at it, last.

    The alias goes to the *latest fitted* version, not the best perplexity: perplexities of different
    drum-score corpora (profiles, data) do not compare, and the newest fit is the one of the current corpus.
    Idempotent per ``source`` and checkpoint content (a re-run after a crash reuses the version). Tags
    ``hidden``, ``layers``, ``k`` and ``perplexity.<split>``; a description (``trained_on``, perplexities) and
    a signature (scores float32 (-1, K, -1) -> log-probabilities (-1, -1, 2^K)).

    Returns:
        the version (string).

    Raises:
        RuntimeError: no active MLflow run.
    """
    from adt import registry

    tags = {"k": str(model.k), "hidden": str(model.hidden), "layers": str(model.layers),
            **{f"perplexity.{s}": f"{v:.6f}" for s, v in perplexity.items()}}
    ppl = ", ".join(f"{s} {v:.4f}" for s, v in perplexity.items()) or "not measured"
    description = (f"GRU drum-score LM, K = {model.k} drums, {model.layers} x {model.hidden} GRU "
                   f"({sum(p.numel() for p in model.parameters())} parameters). Trained on {trained_on}. "
                   f"Perplexity per drum and tatum: {ppl}. Made by {source}. Weights only (checkpoint.pt).")
    return registry.register(model, name=GRU_LM_NAME, kind="gru_lm", source=source, description=description,
                             model_description=GRU_LM_DESCRIPTION, tags=tags, alias=GRU_LM_ALIAS)


def _train_val(paths: dict) -> tuple[list, list]:
    train = load_scores(paths["train"])
    val = load_scores(paths["validation"]) if "validation" in paths else train[-max(1, len(train) // 10):]
    return train, val


def fit_gru(drum_scores: dict, profile: Profile, storage: str | None = None,
            log: Callable[[str], None] = print) -> dict:
    """Tune, train and register the GRU LM (K = 5), and a 3-class one with the same hyperparameters.

    Args:
        drum_scores: the corpus manifest (:func:`adt.lm.corpus.build_drum_scores`).
        profile: trials, folds, epochs and seed (``lm_*`` fields).
        storage: Optuna storage URL; None: ``sqlite:///<data>/optuna.db``.

    Returns:
        manifest: ``path``, ``path_k3``, ``perplexity``, ``perplexity_k3``, ``best_params``,
        ``run_id``, ``history``, ``model_uri`` (``models:/adt-gru-lm/<version>``), ``trials``.
    """
    import mlflow

    from adt import tracking
    from adt.cpu import DEFAULT_THREADS, torch_threads
    from adt.lm import gru

    paths = drum_scores["paths"]["k5"]
    cache = stage_cache("lm_gru", VERSION, drum_scores["key"], profile.lm_trials, profile.lm_folds, profile.lm_epochs,
                        profile.lm_final_epochs, profile.seed)
    storage = storage or f"sqlite:///{data_dir() / 'optuna.db'}"

    def fit(folder: Path) -> dict:
        train, val = _train_val(paths)
        with tracking.run("language_model", "gru-lm", params={"trials": profile.lm_trials, "folds": profile.lm_folds,
                                                             "epochs": profile.lm_epochs, "storage": storage,
                                                             "study": f"gru_lm-{cache.key}"}) as run:
            def on_trial(trial, value, params):
                # nested runs need the parent's experiment, else MLflow files them under Default
                with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True,
                                      experiment_id=run.info.experiment_id):
                    mlflow.set_tags(tracking.provenance("language_model", f"GRU LM trial {trial.number}"))
                    mlflow.log_params(params)
                    mlflow.log_metric("cv_perplexity", value)

            study = gru.tune_gru_lm(train, n_trials=profile.lm_trials, folds=profile.lm_folds, epochs=profile.lm_epochs,
                                    storage=storage, study_name=f"gru_lm-{cache.key}", seed=profile.seed,
                                    on_trial=on_trial)
            best = study.best_params
            mlflow.log_params({f"best.{k}": v for k, v in best.items()})
            model, history = gru.train_gru_lm(train, val, hidden=best["hidden"], layers=best["layers"],
                                              epochs=profile.lm_final_epochs, seed=profile.seed,
                                              on_epoch=lambda e, m: mlflow.log_metrics(m, step=e))
            ppl = {"validation": float(model.perplexity(val))}
            if "test" in paths:
                ppl["test"] = float(model.perplexity(load_scores(paths["test"])))
            ppl.update({f"test.{ds}": float(model.perplexity(s))
                        for ds, s in scores_by_test_set(drum_scores, "k5").items()})
            mlflow.log_metrics({f"perplexity.{s}": v for s, v in ppl.items()})
            gru.save(model, folder / "gru_lm.pt")
            # the 3-class LM (BD, SD, HH; the tatum paper's K) with the same hyperparameters
            paths3 = drum_scores["paths"]["k3"]
            train3, val3 = _train_val(paths3)
            model3, _ = gru.train_gru_lm(train3, val3, hidden=best["hidden"], layers=best["layers"],
                                         epochs=profile.lm_final_epochs, seed=profile.seed)
            ppl3 = {"validation": float(model3.perplexity(val3))}
            if "test" in paths3:
                ppl3["test"] = float(model3.perplexity(load_scores(paths3["test"])))
            mlflow.log_metrics({f"perplexity_k3.{s}": v for s, v in ppl3.items()})
            gru.save(model3, folder / "gru_lm_k3.pt")
            version = register_gru_lm(model, source=f"optuna:gru_lm-{cache.key}",
                                      trained_on=f"the drum-score corpus {drum_scores['key']} (profile {profile.name}, "
                                                 f"{len(train)} training scores, {profile.lm_final_epochs} epochs)",
                                      perplexity=ppl)
        log(f"GRU LM: best {best}, perplexity {tracking.figures(ppl)}")
        return {"path": str(folder / "gru_lm.pt"), "path_k3": str(folder / "gru_lm_k3.pt"), "perplexity_k3": ppl3,
                "best_params": best, "perplexity": ppl, "run_id": run.info.run_id, "history": history,
                "model_uri": f"models:/{GRU_LM_NAME}/{version}", "trials": len(study.trials)}

    with torch_threads(DEFAULT_THREADS):
        return cache.get_or_compute(fit)
