"""Checks on the registered transcribers (issue 29): the registry's champion (what ``adt transcribe`` uses) and
``lite`` (``--model lite``) load, weights only, as ``adt transcribe`` loads them, and reproduce the F-measure
recorded at their registration on one validation track (:mod:`adt.frame.reproduce`): a truncated or altered
checkpoint either does not load or gives another figure. Asset checks ``champion_reproduces`` and
``lite_reproduces``, and ``make demo``'s summary.
"""

from __future__ import annotations

from pathlib import Path

from adt.frame.champion import champion_uri
from adt.frame.reproduce import TOLERANCE, TRACK_F_TAG, TRACK_X_TAG, TRACK_Y_TAG, track_f
from adt.registry import resolve_version
from adt.tracking import MODEL_NAME
from adt.transcribe.models import NoModelError, load_registered_model


def reproduces(uri: str) -> tuple[bool, dict]:
    """Whether the registered transcriber ``uri`` (``models:/<name>@<alias>`` or ``/<version>``) loads, weights only,
    and gives its recorded F on its validation track (:func:`adt.frame.reproduce.check_tags`).

    Returns:
        (passed, metadata: the version, the recorded and reproduced F, or why it failed: the load error naming the
        file). A version registered before the tags passes when it loads ("no figure recorded").
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY

    try:
        model, what = load_registered_model(uri)
    except NoModelError as exc:
        return False, {"model": uri, "error": f"{type(exc).__name__}: {exc}"}
    name, number = resolve_version(uri)
    tags = mlflow.MlflowClient().get_model_version(name, number).tags
    meta = {"model": f"{what}", "version": number}
    if TRACK_F_TAG not in tags:
        return True, {**meta, "figure": "no figure recorded (registered before issue 29)"}
    x_path, y_path = tags[TRACK_X_TAG], tags[TRACK_Y_TAG]
    if not (Path(x_path).is_file() and Path(y_path).is_file()):
        return True, {**meta, "figure": f"its validation track is gone ({x_path}): loads, not scored"}
    recorded, again = float(tags[TRACK_F_TAG]), track_f(model, x_path, y_path)
    meta.update({"track": Path(x_path).name, "recorded_f": round(recorded, 6), "reproduced_f": round(again, 6)})
    return abs(again - recorded) <= TOLERANCE, meta


def alias_reproduces(alias: str) -> tuple[bool, dict]:
    """:func:`reproduces` for the version the registry's ``alias`` of ``adt-frame-crnn`` points at (``champion``:
    what ``adt transcribe`` uses; ``lite``: ``--model lite``); passes with nothing to check when no version has it."""
    uri = champion_uri(alias=alias)
    if uri is None:
        return True, {"model": f"no version of {MODEL_NAME} has the alias {alias}"}
    return reproduces(uri)
