"""The language-model stage: fit, score and register the drum-score LMs (tatum paper Secs. III-C, IV-C).

:func:`fit_bigram` (asset ``lm_bigram``): the skip-type bigram LM (Eq. 3) on the training
scores, perplexity per split and test set. :func:`fit_gru` (asset ``lm_gru``): the GRU LM
(Eq. 2), layers and hidden size tuned with Optuna by k-fold cross-validation and retrained, or
(``Profile.start_from_shipped``) the shipped LM (:mod:`adt.lm.shipped`) fine-tuned; the shipped LM
instead whenever it is at least as good on validation; registered as :data:`GRU_LM_NAME`; a 3-class
GRU LM with the same hyperparameters for the tatum study. Both cached per drum-score corpus and logged
to MLflow ``adt/language_model``; the GRU LM registered weights only (:func:`register_gru_lm`,
:mod:`adt.registry`) with the alias ``champion``. :func:`gru_beats_bigram`: the asset check's decision.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from adt import registry, tracking
from adt.atomic import atomic_path
from adt.cache import stage_cache
from adt.config import LmSettings, Settings, data_dir
from adt.cpu import DEFAULT_THREADS, torch_threads
from adt.lm import gru, shipped
from adt.lm.bigram import SkipBigramLM
from adt.lm.corpus import DrumScoresResult, load_scores, scores_by_test_set
from adt.results import Mapping, ModelLink, RunLink, StageResult, Table

#: Version of the LM stages (``lm_bigram``, ``lm_gru`` assets).
VERSION = "3"  # 3: lm_gru compared with / fine-tuned from the shipped LMs (adt.lm.shipped)
#: Adam learning rate when fine-tuning the shipped LM (trained at 1e-3: at that rate the demo's first
#: fine-tuning epoch already raised the validation perplexity, 1.2677 -> 1.273).
FINETUNE_LR = 1e-4
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


@dataclass(frozen=True)
class LmBigramResult(StageResult):
    """The skip-bigram LMs (asset ``lm_bigram``): ``path`` (5-class JSON), ``path_k3``, ``perplexity`` {k5|k3:
    {split or test.<dataset>: perplexity per drum and tatum}}, ``run_id`` their MLflow run."""

    path: str
    path_k3: str
    perplexity: dict
    run_id: str | None = None

    def metadata(self) -> dict:
        return {"perplexity": Mapping(self.perplexity, key="K"), "mlflow_run": RunLink(self.run_id)}


@dataclass(frozen=True)
class LmGruResult(StageResult):
    """The GRU LMs (asset ``lm_gru``; :func:`fit_gru`).

    Attributes:
        path, path_k3: the chosen LMs' weights (K = 5, K = 3), in the stage folder.
        perplexity, perplexity_k3: {validation, test, test.<dataset>: perplexity per drum and tatum}.
        best_params: layers and hidden size; trials: the sweep's trials (0 without one).
        history: per-epoch figures (K = 5); model_uri: ``models:/adt-gru-lm/<version>``; run_id: its MLflow run.
        started_from, chosen, chosen_reason, shipped_validation: per K ("k5", "k3"): "scratch" or "shipped
            adt/pretrained/<file> (sha256 <hex>)"; "fitted", "fine-tuned" or "shipped"; why; the shipped LM's
            validation perplexity.
    """

    path: str
    path_k3: str
    perplexity: dict
    perplexity_k3: dict
    best_params: dict
    history: list
    model_uri: str
    trials: int
    started_from: dict
    chosen: dict
    chosen_reason: dict
    shipped_validation: dict
    run_id: str | None = None

    def metadata(self) -> dict:
        return {"perplexity": Mapping({"k5": self.perplexity, "k3": self.perplexity_k3}, key="K"),
                "best_params": Mapping(self.best_params or {}, key="parameter"), "mlflow_run": RunLink(self.run_id),
                "model": ModelLink(self.model_uri), "trials": self.trials,
                "chosen": Table(pd.DataFrame([{"K": k, "chosen": c, "started_from": self.started_from.get(k, ""),
                                               "why": self.chosen_reason.get(k, "")}
                                              for k, c in self.chosen.items()]))}


def run_bigram(settings: Settings, drum_scores: DrumScoresResult) -> LmBigramResult:
    """Stage ``lm_bigram``: :func:`fit_bigram`."""
    return fit_bigram(drum_scores)


def run_gru(settings: Settings, drum_scores: DrumScoresResult, log: Callable[[str], None] = print) -> LmGruResult:
    """Stage ``lm_gru``: :func:`fit_gru` with the profile's LM section and the settings' Optuna storage."""
    return fit_gru(drum_scores, settings.get_profile().lm, settings.optuna_storage or None, log)


def fit_bigram(drum_scores: DrumScoresResult) -> LmBigramResult:
    """The skip-bigram LMs (K = 5 and 3) of a drum-score corpus.

    Raises:
        ValueError: the corpus has no training scores.
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

    cache = stage_cache("lm_bigram", VERSION, drum_scores.key)

    def fit(folder: Path) -> dict:
        result = {}
        with tracking.run("language_model", "skip-bigram", params={"skip": 16, "smoothing": "add-one"}) as run:
            for k in ("k5", "k3"):
                paths = drum_scores.paths[k]
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

    return LmBigramResult.from_manifest(cache.get_or_compute(fit))


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


def _perplexities(model, drum_scores: DrumScoresResult, k: str, val: list) -> dict[str, float]:
    """Perplexity per drum and tatum of ``model`` on ``val``, the test split and each test set ``test.<dataset>``."""
    paths = drum_scores.paths[k]
    ppl = {"validation": float(model.perplexity(val))}
    if "test" in paths:
        ppl["test"] = float(model.perplexity(load_scores(paths["test"])))
    ppl.update({f"test.{ds}": float(model.perplexity(s)) for ds, s in scores_by_test_set(drum_scores, k).items()})
    return ppl


def _fit_k(k: str, drum_scores: dict, lm: LmSettings, best: dict, folder: Path,
           on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """One K's GRU LM (``k``: "k5" or "k3"): trained with ``best`` (hidden, layers) from scratch, or fine-tuned from
    the shipped LM when ``lm.start_from_shipped``; then the shipped LM instead when it is at least as good on
    the same validation scores ("the default model is never worse than what is shipped").

    Args:
        k: "k5" or "k3" (the corpus's scores of that K, :func:`adt.lm.corpus.build_drum_scores`).
        best: ``hidden`` and ``layers`` (the shipped LM's when fine-tuning).
        folder: the stage folder the chosen weights are written (or the shipped file copied) to.
        on_epoch: as :func:`adt.lm.gru.train_gru_lm`'s.

    Returns:
        ``{"model", "path" (in folder), "perplexity" (:func:`_perplexities` of the chosen model), "history",
        "started_from", "chosen" ("fitted" | "fine-tuned" | "shipped"), "reason", "shipped_validation" (the shipped
        LM's validation perplexity), "n_train" (training scores)}``.

    Raises:
        FileNotFoundError, ValueError: the shipped LM is missing or does not match its card (:mod:`adt.lm.shipped`).
    """
    train, val = _train_val(drum_scores.paths[k])
    n = int(k[1:])
    ship = shipped.shipped_lm(n)
    ship_val = float(ship.perplexity(val))
    init = ship if lm.start_from_shipped else None
    model, history = gru.train_gru_lm(train, val, hidden=best["hidden"], layers=best["layers"],
                                      epochs=lm.final_epochs, seed=lm.seed, init=init, on_epoch=on_epoch,
                                      **({"lr": FINETUNE_LR} if init is not None else {}))
    fitted_val = float(model.perplexity(val))
    fitted = "fine-tuned" if init is not None else "fitted"
    if ship_val <= fitted_val:
        model, path = ship, folder / shipped.shipped_lm_path(n).name
        with atomic_path(path) as tmp:
            shutil.copyfile(shipped.shipped_lm_path(n), tmp)
        chosen, reason = "shipped", (f"the shipped LM's validation perplexity {ship_val:.4f} <= the {fitted} LM's "
                                     f"{fitted_val:.4f}" + (": no epoch improved on it" if init is not None else ""))
    else:
        path = gru.save(model, folder / ("gru_lm.pt" if k == "k5" else f"gru_lm_{k}.pt"))
        chosen, reason = fitted, f"validation perplexity {fitted_val:.4f} < the shipped LM's {ship_val:.4f}"
    return {"model": model, "path": str(path), "perplexity": _perplexities(model, drum_scores, k, val),
            "history": history, "started_from": shipped.describe(n) if init is not None else "scratch",
            "chosen": chosen, "reason": reason, "shipped_validation": ship_val, "n_train": len(train)}


def fit_gru(drum_scores: DrumScoresResult, lm: LmSettings, storage: str | None = None,
            log: Callable[[str], None] = print) -> LmGruResult:
    """Tune, train and register the GRU LM (K = 5), and a 3-class one (BD, SD, HH) with the same hyperparameters.

    From scratch (``lm.start_from_shipped`` False): layers and hidden size by an Optuna sweep
    (:func:`adt.lm.gru.tune_gru_lm`), then trained ``lm_final_epochs`` epochs. With ``start_from_shipped`` (the
    ``demo`` profile): no sweep (the shipped LM's 3 x 64, the tatum paper's choice); the shipped weights
    (:mod:`adt.lm.shipped`) are fine-tuned ``lm_final_epochs`` epochs on the training scores, the starting weights
    competing in the validation selection. In both modes, per K, the shipped LM is kept instead when its
    validation perplexity is not above the trained one's (:func:`_fit_k`).

    Args:
        drum_scores: the corpus (:func:`adt.lm.corpus.build_drum_scores`).
        lm: the profile's LM section (trials, folds, epochs, final epochs, seed, ``start_from_shipped``).
        storage: Optuna storage URL; None: ``sqlite:///<data>/optuna.db``.

    Raises:
        FileNotFoundError, ValueError: the shipped LMs are missing or do not match their model card.
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

    paths = drum_scores.paths["k5"]
    cache = stage_cache("lm_gru", VERSION, drum_scores.key, lm.trials, lm.folds, lm.epochs,
                        lm.final_epochs, lm.seed, lm.start_from_shipped,
                        shipped.stated_sha256(5), shipped.stated_sha256(3))
    storage = storage or f"sqlite:///{data_dir() / 'optuna.db'}"

    def fit(folder: Path) -> dict:
        with tracking.run("language_model", "gru-lm", params={"trials": lm.trials, "folds": lm.folds,
                                                             "epochs": lm.epochs, "storage": storage,
                                                             "study": f"gru_lm-{cache.key}",
                                                             "start_from_shipped": lm.start_from_shipped}) as run:
            def on_trial(trial, value, params):
                # nested runs need the parent's experiment, else MLflow files them under Default
                with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True,
                                      experiment_id=run.info.experiment_id):
                    mlflow.set_tags(tracking.provenance("language_model", f"GRU LM trial {trial.number}"))
                    mlflow.log_params(params)
                    mlflow.log_metric("cv_perplexity", value)

            if lm.start_from_shipped:
                ship = shipped.shipped_lm(5)
                best, trials = {"hidden": ship.hidden, "layers": ship.layers}, 0
            else:
                study = gru.tune_gru_lm(load_scores(paths["train"]), n_trials=lm.trials,
                                        folds=lm.folds, epochs=lm.epochs, storage=storage,
                                        study_name=f"gru_lm-{cache.key}", seed=lm.seed, on_trial=on_trial)
                best, trials = study.best_params, len(study.trials)
            mlflow.log_params({f"best.{k}": v for k, v in best.items()})
            fits = {k: _fit_k(k, drum_scores, lm, best, folder,
                              on_epoch=(lambda e, m: mlflow.log_metrics(m, step=e)) if k == "k5" else None)
                    for k in ("k5", "k3")}
            for k, f in fits.items():
                prefix = "perplexity" if k == "k5" else "perplexity_k3"
                mlflow.log_metrics({**{f"{prefix}.{s}": v for s, v in f["perplexity"].items()},
                                    f"{prefix}.shipped.validation": f["shipped_validation"]})
                mlflow.set_tag(f"chosen.{k}", f"{f['chosen']}: {f['reason']}")
            f5 = fits["k5"]
            if f5["chosen"] == "shipped":
                source, trained_on = f"shipped:{shipped.describe(5)}", "the Groove MIDI Dataset's train split (shipped)"
            else:
                source = f"{'finetune' if lm.start_from_shipped else 'optuna'}:gru_lm-{cache.key}"
                trained_on = (f"the drum-score corpus {drum_scores.key} (profile {lm.profile}, {f5['n_train']} "
                              f"training scores, {lm.final_epochs} epochs, from {f5['started_from']})")
            version = register_gru_lm(f5["model"], source=source, trained_on=trained_on, perplexity=f5["perplexity"])
        for k, f in fits.items():
            log(f"GRU LM {k}: {f['chosen']} ({f['reason']}), perplexity {tracking.figures(f['perplexity'])}")
        return {"path": f5["path"], "path_k3": fits["k3"]["path"], "perplexity": f5["perplexity"],
                "perplexity_k3": fits["k3"]["perplexity"], "best_params": best, "run_id": run.info.run_id,
                "history": f5["history"], "model_uri": f"models:/{GRU_LM_NAME}/{version}", "trials": trials,
                **{key: {k: f[key] for k, f in fits.items()}
                   for key in ("started_from", "chosen", "shipped_validation")},
                "chosen_reason": {k: f["reason"] for k, f in fits.items()}}

    with torch_threads(DEFAULT_THREADS):
        return LmGruResult.from_manifest(cache.get_or_compute(fit))


def gru_beats_bigram(gru: LmGruResult, bigram: LmBigramResult) -> tuple[bool, list[dict]]:
    """Whether the GRU LMs (Eq. 2) beat the skip-bigram LMs (Eq. 3) on the same test scores, for K = 5 and K = 3,
    as in the tatum paper (Sec. IV-C, K = 3 on RWC: GRU 1.44 < bigram 1.51).

    Args:
        gru: the ``lm_gru`` stage's result (``perplexity``: K = 5, ``perplexity_k3``).
        bigram: the ``lm_bigram`` stage's (``perplexity`` {"k5"|"k3": ...}).

    Returns:
        ``(passed, rows)``: passed when, for both K, the GRU's perplexity per drum and tatum on the whole test
        split (``test``) is below the bigram's; a K without test figures fails. ``rows``: one dict per K and test
        set both have (``test``, ``test.<dataset>``): ``{"k", "set", "gru", "bigram", "beats"}``; only
        ``set == "test"`` decides.
    """
    rows, passed = [], True
    for k, gru_ppl in (("k5", gru.perplexity), ("k3", gru.perplexity_k3)):
        big = bigram.perplexity.get(k, {})
        sets = sorted(s for s in gru_ppl if s.startswith("test") and s in big)
        rows += [{"k": k, "set": s, "gru": float(gru_ppl[s]), "bigram": float(big[s]),
                  "beats": bool(gru_ppl[s] < big[s])} for s in sets]
        passed &= "test" in sets and bool(gru_ppl["test"] < big["test"])
    return passed, rows
