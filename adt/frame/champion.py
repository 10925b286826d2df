"""The registered transcriber to use: registration, the champion and challenger aliases (MLflow's pattern).

Every trained transcriber worth keeping is a version of :data:`adt.tracking.MODEL_NAME` in the MLflow model
registry, weights only (:func:`adt.registry.register`: the folder, the idempotent version, its tags, the alias
last). :func:`register_champion` registers one with its tags (what it hears, its peak picking, its validation
F and what that was measured on, :func:`evaluation_key`; the figure a check reproduces,
:func:`adt.frame.reproduce.check_tags`) and description (:func:`describe_transcriber`), then :func:`promote`
makes it the :data:`CHAMPION_ALIAS` (the version ``adt transcribe`` uses, :func:`champion_uri`) unless the
champion scored higher on the same validation data; it is then the :data:`CHALLENGER_ALIAS`.
:func:`register_trial` does that for a sweep's best checkpoint (:func:`adt.frame.sweep.run_sweep`), scored
against the shipped transcriber on the same data first (:func:`adt.frame.shipped.score_shipped`).

Imports no training code: ``adt transcribe`` reads :func:`champion_uri` from here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adt import registry, tracking
from adt.cache import cache_key
from adt.frame.checkpoint import load_model, model_input, model_peak_picking
from adt.frame.reproduce import check_tags
from adt.frame.shipped import score_shipped
from adt.tracking import MODEL_NAME

#: Registry alias of the transcriber to use (see :func:`promote`).
CHAMPION_ALIAS = "champion"
#: Registry alias of the newest version that was registered but did not beat the champion.
CHALLENGER_ALIAS = "challenger"

#: Description of the registered model :data:`adt.tracking.MODEL_NAME` (``MlflowClient.update_registered_model``).
MODEL_DESCRIPTION = (
    "Frame-level drum transcriber: log-spectrogram frames (batch, frames at 100 fps, bands) -> onset logits "
    "(batch, frames, 5 classes BD SD TT HH CY), then madmom peak picking with the version's tag peak_picking. "
    "Alias champion: the version adt transcribe uses (the best validation micro F on the same validation data); "
    "challenger: the newest that did not beat it; lite: the optimal trimmed network (adt.trimming). "
    "Each version is a weights-only checkpoint (checkpoint.pt + MLmodel; load with adt.registry.load, "
    "torch.load(weights_only=True)), never a pickle.")


def promote(version: int | str, score: float, evaluation: str, name: str = MODEL_NAME) -> tuple[bool, str]:
    """Make ``version`` the champion unless the champion scored higher on the same evaluation.

    The version is tagged with ``score`` (validation micro F) and ``evaluation`` (a key of the
    validation tracks and peak picking). It becomes :data:`CHAMPION_ALIAS` when there is no
    champion, when the champion was scored on another evaluation (other data: the scores do not
    compare, the newer wins), or when ``score`` >= the champion's; otherwise it becomes
    :data:`CHALLENGER_ALIAS` and the champion stays.

    Returns:
        (whether the champion alias moved, the reason in words).
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    tracking.setup()
    client = mlflow.MlflowClient()
    client.set_model_version_tag(name, str(version), "val_f", f"{score:.6f}")
    client.set_model_version_tag(name, str(version), "evaluation", evaluation)
    try:
        champ = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except mlflow.exceptions.MlflowException:
        champ = None
    if champ is None:
        moved, why = True, "no champion yet"
    elif champ.tags.get("evaluation") != evaluation or "val_f" not in champ.tags:
        moved, why = True, f"version {champ.version} was scored on other validation data"
    elif score >= float(champ.tags["val_f"]):
        moved, why = True, f"validation F {score:.4f} >= version {champ.version}'s {float(champ.tags['val_f']):.4f}"
    else:
        moved, why = False, f"validation F {score:.4f} < version {champ.version}'s {float(champ.tags['val_f']):.4f}"
    registry.set_alias(version, name, CHAMPION_ALIAS if moved else CHALLENGER_ALIAS)
    return moved, why


def champion_uri(name: str = MODEL_NAME, alias: str = CHAMPION_ALIAS) -> str | None:
    """``models:/<name>@<alias>`` when that alias exists in the registry, else None."""
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    tracking.setup()
    try:
        mlflow.MlflowClient().get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None
    return f"models:/{name}@{alias}"


def evaluation_key(val_items: list[tuple[Path, dict]], config) -> str:
    """What a validation F-measure was measured on: the validation feature files and the peak picking
    (scores with the same key compare; :func:`promote`)."""
    return cache_key("evaluation", sorted(str(p) for p, _ in val_items), str(config.peak_picking))


def describe_transcriber(model: Any, source: str, trained_on: str) -> str:
    """A registered transcriber version's description: architecture and size, input, what it was trained on,
    its validation micro F-measure (50 ms) and what made it."""
    dims = getattr(model, "io_dims", None) or (model.config["n_features"], model.config["n_classes"])
    n_params = sum(p.numel() for p in model.parameters())
    trimmed = getattr(model, "trimmed", None)
    val_f = getattr(model, "best_val_f", None)
    score = "no validation score" if val_f is None else f"validation micro F-measure (50 ms) {float(val_f):.4f}"
    if getattr(model, "best_epoch", None) is not None:
        score += f" at epoch {model.best_epoch}"
    if getattr(model, "tuned_val_f", None) is not None:
        score += f", {float(model.tuned_val_f):.4f} with the peak picking tuned on validation"
    return (f"{getattr(model, 'architecture', 'frame_crnn')} drum transcriber"
            f"{' (trimmed: ' + json.dumps(trimmed) + ')' if trimmed else ''}, {n_params} parameters: "
            f"{getattr(model, 'feature_type', 'log_mel')} features, {int(dims[0])} bands -> {int(dims[1])} onset "
            f"classes; hears {model_input(model)} audio. Trained on {trained_on}. {score[0].upper() + score[1:]}. "
            f"Made by {source}. Weights only (checkpoint.pt, adt.frame.checkpoint.save_model).")


def register_champion(model: Any, evaluation: str, log: Callable[[str], None] = print, *,
                      source: str | None = None, trained_on: str = "(not recorded)",
                      extra_tags: dict | None = None) -> str:
    """Register ``model`` as a version of ``tracking.MODEL_NAME`` (weights only, :func:`adt.registry.register`,
    in the active MLflow run) and promote it to ``champion`` unless the champion scored higher on the same
    validation data (:func:`promote`, with ``model.best_val_f`` and ``evaluation``).

    Idempotent per ``source`` (e.g. ``optuna:<study>/trial-<n>``; default: the active run) and checkpoint
    content: a re-run after a crash reuses the version and finishes its tags and alias. The version gets its
    tags (``transcriber_input``, ``peak_picking``, ``val_f``, ``evaluation``, and ``extra_tags``: e.g. the
    shipped transcriber's F on the same data, :func:`adt.frame.shipped.score_shipped`), a description
    (:func:`describe_transcriber`) and a signature when it is created; the alias is set last.

    Returns:
        ``models:/<name>/<version>``.

    Raises:
        RuntimeError: no active MLflow run.
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    source = source or f"run:{mlflow.active_run().info.run_id if mlflow.active_run() else 'none'}"
    score = float(model.best_val_f)
    tags = {"transcriber_input": model_input(model), "peak_picking": json.dumps(model_peak_picking(model)),
            "val_f": f"{score:.6f}", "evaluation": evaluation,
            **{k: f"{v:.6f}" if isinstance(v, float) else str(v) for k, v in (extra_tags or {}).items()}}
    outcome = {}

    def promote_version(version: str) -> None:
        outcome["moved"], outcome["why"] = promote(version, score, evaluation)

    version = registry.register(model, name=MODEL_NAME, kind="transcriber", source=source,
                                description=describe_transcriber(model, source, trained_on),
                                model_description=MODEL_DESCRIPTION, tags=tags, alias=promote_version)
    log(f"{MODEL_NAME} version {version}: {'champion' if outcome['moved'] else 'challenger'} "
        f"({outcome['why']})")
    return f"models:/{MODEL_NAME}/{version}"


def register_trial(model_path: str | Path, val_items: list[tuple[Path, dict]], config, source: str,
                   trained_on: str, log: Callable[[str], None] = print) -> tuple[str, dict]:
    """Register a sweep's best checkpoint (:func:`register_champion`, in the active MLflow run) after scoring the
    shipped transcriber on the same validation tracks with the same peak picking (``config.peak_picking``;
    :func:`adt.frame.shipped.score_shipped`, logged as the run's metric ``shipped_val_f``): the version is tagged
    with that score, and with the figure its check reproduces (:func:`adt.frame.reproduce.check_tags`).

    Returns:
        (``models:/<name>/<version>``, the shipped transcriber's score tags, ``{}`` when it was not scored).
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    model = load_model(model_path)
    shipped = score_shipped(val_items, config.peak_picking, model.feature_type, *model.io_dims)
    if shipped:
        mlflow.log_metric("shipped_val_f", shipped["shipped_val_f"])
    uri = register_champion(model, evaluation_key(val_items, config), log, source=source, trained_on=trained_on,
                            extra_tags={**shipped, **check_tags(model, val_items)})
    return uri, shipped
