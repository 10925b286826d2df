"""What a registered transcriber records so that its validation figure can be reproduced (issue 29): the
champion and ``lite`` are never trusted on their registry entry alone.

At registration (:func:`adt.frame.champion.register_champion`, :func:`adt.trimming.study.register_lite`) the
version is tagged with one validation track (its features and targets files) and the model's micro F-measure on
it (:func:`check_tags`: 5 classes, 50 ms, the version's own peak picking; reference onsets: the target frames
equal to 1, at 100 fps). The asset checks and ``make demo``'s summary load the version as ``adt transcribe`` does
and score that track again (:func:`adt.evaluation.registered.reproduces`, with :func:`track_f`): a truncated or
altered checkpoint either does not load or gives another figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adt.features.spectrogram import FPS
from adt.frame.checkpoint import evaluate
from adt.vocab import CLASSES_5

#: Version tags: the validation track's features and targets files and the F-measure recorded on it.
TRACK_X_TAG, TRACK_Y_TAG, TRACK_F_TAG = "check_track_x", "check_track_y", "check_track_f"
#: How far a reproduced F may be from the recorded one (same data and weights: equal but for the tag's 6 decimals).
TOLERANCE = 2e-6


def targets_file(x_path: str | Path) -> Path | None:
    """The frame-targets file beside a features file (``.x.npy`` -> ``.y.npy``, or ``.yw.npy`` when widened)."""
    x_path = Path(x_path)
    for suffix in (".y.npy", ".yw.npy"):
        y = x_path.with_name(x_path.name.removesuffix(".x.npy") + suffix)
        if y.is_file():
            return y
    return None


def track_f(model, x_path: str | Path, y_path: str | Path) -> float:
    """Micro F-measure (5 classes, 50 ms, the model's peak picking) of ``model`` on one track's features, against
    the onsets of its frame targets (frames equal to 1; 0.5 marks widened neighbours, not onsets)."""
    y = np.load(y_path)
    refs = {c: np.flatnonzero(y[:, i] >= 1.0) / FPS for i, c in enumerate(CLASSES_5)}
    return float(evaluate(model, [(Path(x_path), refs)])["f"])


def check_tags(model, val_items: list) -> dict[str, str]:
    """The version tags that let the check reproduce a figure: the first validation track with a targets file
    (``val_items``: (features .npy, reference onsets)), and the model's F on it; {} without one."""
    for x_path, _ in val_items:
        y_path = targets_file(x_path)
        if y_path is not None:
            return {TRACK_X_TAG: str(x_path), TRACK_Y_TAG: str(y_path), TRACK_F_TAG: f"{track_f(model, x_path, y_path):.6f}"}
    return {}
