"""The transcriber shipped with the package as a starting point and as the yardstick of trained ones.

Issue 28's rule: the default model is never worse than what is shipped. A sweep that registers its best
model also scores the shipped transcriber (``adt/pretrained/frame_crnn_standard.pt``,
:func:`pretrained_path`) on the same validation tracks with the same peak
picking (:func:`adt.frame.checkpoint.evaluate`, micro F 50 ms, 5 classes) and tags the registered version
with it (:data:`SHIPPED_F_TAG`, :data:`SHIPPED_SHA_TAG`); ``adt transcribe`` then uses whichever scored
higher (:func:`adt.transcribe.models.load_transcriber`). With ``Profile.start_from_shipped`` (the demo)
the sweep fine-tunes the shipped weights (:func:`adt.frame.sweep.run_sweep`, ``init_path``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adt import PRETRAINED_DIR
from adt.data.download import sha256sum
from adt.frame.checkpoint import evaluate, load_model
#: Registered-version tags: the shipped transcriber's validation F on the version's validation data, and
#: the SHA-256 of the shipped checkpoint that scored it.
SHIPPED_F_TAG = "shipped_val_f"
SHIPPED_SHA_TAG = "shipped_sha256"


#: The transcriber shipped with the package: ``adt/pretrained/<name>.pt`` (weights only) and its
#: model card ``<name>.md`` (which states the checkpoint's SHA-256).
PRETRAINED_MODEL = "frame_crnn_standard"
#: The shipped trimmed transcriber (``adt transcribe --model lite`` without a registered one; made by
#: :mod:`adt.trimming.lite`, whose ``NAME`` it is).
LITE_MODEL = "frame_crnn_lite"


def pretrained_path(name: str = PRETRAINED_MODEL) -> Path:
    """The shipped checkpoint ``adt/pretrained/<name>.pt`` (it may be missing in a source checkout)."""
    return PRETRAINED_DIR / f"{name}.pt"


def shipped_path() -> Path:
    """``adt/pretrained/frame_crnn_standard.pt`` (it may be missing in a source checkout)."""
    return pretrained_path()


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (:func:`adt.data.download.sha256sum`)."""
    return sha256sum(path)


def fits(model, feature_type: str, n_features: int, n_classes: int) -> str | None:
    """Why ``model`` cannot be trained or scored on features of this kind (None when it can)."""
    if getattr(model, "feature_type", None) != feature_type:
        return f"it hears {getattr(model, 'feature_type', None)}, the features are {feature_type}"
    dims = tuple(getattr(model, "io_dims", ()) or ())
    if dims and dims != (n_features, n_classes):
        return f"its input/output widths {dims} differ from the features' {(n_features, n_classes)}"
    return None


def load_fitting(feature_type: str, n_features: int, n_classes: int):
    """The shipped transcriber when it fits the features, else ``(None, reason)``.

    Returns:
        ``(model in eval mode, path)`` or ``(None, reason in words)``.
    """
    path = shipped_path()
    if not path.is_file():
        return None, f"no shipped transcriber at {path}"
    try:
        model = load_model(path)
    except (OSError, ValueError) as exc:
        return None, str(exc)
    why = fits(model, feature_type, n_features, n_classes)
    return (None, f"{path.name}: {why}") if why else (model, path)


def score_shipped(val_items: list[tuple[Path, dict[str, np.ndarray]]], peak_picking, feature_type: str,
                  n_features: int, n_classes: int) -> dict:
    """The shipped transcriber's validation micro F on ``val_items`` with ``peak_picking`` (the sweep's
    selection measure, so it compares with ``best_val_f``).

    Returns:
        ``{SHIPPED_F_TAG: F, SHIPPED_SHA_TAG: hex}``, or ``{}`` when it is missing or does not fit.
    """
    model, path = load_fitting(feature_type, n_features, n_classes)
    if model is None or not val_items:
        return {}
    f = float(evaluate(model, val_items, peak_picking=peak_picking)["f"])
    return {SHIPPED_F_TAG: f, SHIPPED_SHA_TAG: sha256(path)}


def not_worse(own_f: float, shipped: dict) -> tuple[bool, dict]:
    """Issue 28's rule for a sweep's best model: its validation micro F ``own_f`` is above 0 (a model that finds no
    onset is degenerate) and at least the shipped transcriber's on the same validation data (``shipped``: the tags
    of :func:`score_shipped`; ``{}`` when it was not scored: missing, or other features, nothing to compare).

    Returns:
        (passed, metadata: both F-measures, or why there is no comparison or why it failed).
    """
    meta: dict = {"val_f": round(float(own_f), 4)}
    if own_f <= 0:
        return False, {**meta, "why": "finds no onset on the validation tracks (degenerate)"}
    if shipped.get(SHIPPED_F_TAG) is None:
        return True, {**meta, SHIPPED_F_TAG: "not scored (missing, or other features)"}
    return own_f >= shipped[SHIPPED_F_TAG], {**meta, SHIPPED_F_TAG: round(float(shipped[SHIPPED_F_TAG]), 4)}
