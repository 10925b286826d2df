"""Which transcriber ``adt transcribe`` uses, loaded weights-only (:func:`load_transcriber`).

The model (:func:`load_transcriber`): the MLflow model registry's when this data folder has one
(the ``champion`` alias, else the latest untrimmed version of ``adt-frame-crnn``; a champion that does
not load is an error, never replaced) unless the shipped transcriber scored higher on that version's
validation data (:func:`shipped_beats`: the default model is never worse than what is shipped), else the transcriber
shipped with the package (:data:`PRETRAINED_MODEL`, ``adt/pretrained/``; MLflow is not even
imported then); or any MLflow model URI (``runs:/<id>/registered_model/adt-frame-crnn``,
``models:/adt-frame-crnn/3``, a local model folder written by :func:`adt.registry.save_dir`) or checkpoint
file (``.pt``, :func:`adt.frame.checkpoint.save_model`). Every model loads weights-only
(``torch.load(weights_only=True)``, :mod:`adt.registry`): a registered version that is a pickle (older
releases logged ``mlflow.pytorch`` pickles) is refused with ``ModelLoadError``, never unpickled.

Inference only: models load through :mod:`adt.frame.checkpoint` and the registry's aliases come from
:mod:`adt.frame.champion`, never through the training code (``tests/test_layout.py``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from adt import registry, tracking
from adt.config import data_dir
from adt.frame import champion
from adt.frame.checkpoint import load_model
from adt.frame.shipped import LITE_MODEL, SHIPPED_F_TAG, SHIPPED_SHA_TAG, pretrained_path, sha256
from adt.tracking import MODEL_NAME

logger = logging.getLogger(__name__)

#: ``--model lite``: the registry alias of the optimal trimmed transcriber (``adt.trimming.study.LITE_ALIAS``);
#: without one, the shipped trimmed transcriber (:func:`load_lite`).
LITE = "lite"


class NoModelError(RuntimeError):
    """No transcriber is registered (or the given URI does not resolve)."""


class ModelLoadError(NoModelError):
    """A model that is registered (or named) cannot be loaded: a broken artifact, a bad URI."""


def load_checkpoint(path: str | os.PathLike, device: str = "cpu"):
    """A transcriber checkpoint file (:func:`adt.frame.checkpoint.load_model`, ``weights_only``) on ``device``.

    Raises:
        NoModelError: missing, corrupt, or not a transcriber checkpoint (the message names the file).
    """
    try:
        return load_model(path).to(device).eval()
    except (OSError, ValueError) as exc:
        raise NoModelError(str(exc)) from exc


def missing_store() -> str | None:
    """Why there is no MLflow store to read models from, or None when there is one (or one that cannot be
    told from here: a database or tracking server). Checked without importing MLflow or creating anything
    (MLflow creates a missing SQLite file or file store on first use): ``MLFLOW_TRACKING_URI`` a
    ``sqlite:///PATH`` whose file is missing or a file store (``file:PATH``, a plain path) whose folder is
    missing; unset, ``<ADT_DATA_DIR>/mlflow.db`` missing."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        path = data_dir(create=False) / "mlflow.db"
        return None if path.is_file() else f"no MLflow store at {path}"
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme == "sqlite":
        rest = uri.split("?", 1)[0].removeprefix("sqlite://")
        if rest in ("", "/", "/:memory:"):
            return None  # in memory: nothing on disk to create
        path = Path(unquote(rest[1:])).expanduser()
        return None if path.is_file() else f"MLFLOW_TRACKING_URI={uri}: no such database file {path}"
    if scheme == "file" or (not scheme and uri not in ("databricks", "databricks-uc")):
        path = Path(unquote(urlparse(uri).path) if scheme else uri).expanduser()
        return None if path.is_dir() else f"MLFLOW_TRACKING_URI={uri}: no such file store {path}"
    return None


def registry_exists() -> bool:
    """Whether there is an MLflow store to read models from (:func:`missing_store`)."""
    return missing_store() is None


def load_transcriber(model: str | None = None, device: str = "cpu"):
    """The transcriber ``adt transcribe`` uses (module docstring).

    Args:
        model: None (the registry's champion or latest version when there is an MLflow store
            (:func:`missing_store`; a missing one is not created, the model line says so) with a model in
            it, unless the shipped model scored higher on that version's validation data:
            :func:`shipped_beats`; else the shipped model), ``"lite"`` (:func:`load_lite`: the registry's
            optimal trimmed transcriber, else the shipped one), a checkpoint file (``.pt``), or an MLflow
            model URI.

    Returns:
        ``(model in eval mode on device, what was loaded: a URI or a file path)``.

    Raises:
        NoModelError: the given model cannot be loaded (``ModelLoadError``), a ``models:/``/``runs:/`` URI
            while the MLflow store is missing (:func:`missing_store`: never created by asking it),
            the registry's champion is set but does not load (``ModelLoadError``: never replaced by another
            version), or none is registered and the shipped checkpoint is missing or corrupt.
    """
    if model is not None:
        if Path(model).suffix == ".pt" or Path(model).is_file():
            return load_checkpoint(model, device), str(model)
        if model == LITE:
            return load_lite(device)
        missing = missing_store()
        if missing and model.startswith(("models:/", "runs:/")):
            raise NoModelError(f"{model}: {missing}")  # not created empty by asking it
        return load_registered_model(model, device=device)
    path = pretrained_path()
    missing = missing_store()
    if missing is None:
        try:
            registered, what = load_registered_model(None, device=device)
        except ModelLoadError:
            raise  # a registered champion that does not load: say so, do not use another model
        except NoModelError as exc:
            logger.info("%s; using the shipped model", exc)
        else:
            why = shipped_beats(what)
            if why is None:
                return registered, what
            return load_checkpoint(path, device), f"{path} (the shipped model: {why})"
    if not path.is_file():
        raise NoModelError(f"no model registered{f' ({missing})' if missing else ''} and no shipped model at "
                           f"{path}: run `make demo` first or pass --model URI")
    if missing and os.environ.get("MLFLOW_TRACKING_URI"):  # a store named but absent: say why it is not used
        return load_checkpoint(path, device), f"{path} (the shipped model: {missing}, so no registered models)"
    return load_checkpoint(path, device), str(path)


def load_lite(device: str = "cpu"):
    """``--model lite``: the registry's trimmed transcriber (alias ``lite``, :mod:`adt.trimming.study`) when an
    MLflow store has one, else the shipped trimmed transcriber (``adt/pretrained/frame_crnn_lite.pt``,
    :data:`adt.frame.shipped.LITE_MODEL`, made by :mod:`adt.trimming.lite`; its own model card), so that
    ``--model lite`` works right after installation.

    Returns:
        ``(model in eval mode on device, what was loaded)``.

    Raises:
        NoModelError: neither is there (the shipped file missing in a source checkout); ``ModelLoadError``:
            the registry's ``lite`` is set but does not load (never replaced by the shipped one).
    """
    missing = missing_store()
    if missing is None:
        import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

        tracking.setup()
        try:
            mlflow.MlflowClient().get_model_version_by_alias(MODEL_NAME, LITE)
        except mlflow.exceptions.MlflowException:
            missing = f"no {MODEL_NAME}@{LITE} in {tracking.tracking_uri()}"
        else:
            return load_registered_model(f"models:/{MODEL_NAME}@{LITE}", device=device)
    path = pretrained_path(LITE_MODEL)
    if not path.is_file():
        raise NoModelError(f"no trimmed (lite) transcriber: {missing}, and no shipped one at {path}; run the "
                           "trimming study first (`make demo`, or materialize trimmed_transcriber)")
    return load_checkpoint(path, device), f"{path} (the shipped lite model: {missing})"


def shipped_beats(what: str) -> str | None:
    """Why the shipped transcriber replaces the registry's default model ``what`` (a URI as
    :func:`load_registered_model` returns it), or None: its version's tags hold the shipped checkpoint's
    validation F on the same validation data (:mod:`adt.frame.shipped`), the checkpoint is still the one
    scored (same SHA-256) and it scored higher. Versions registered before that comparison keep the default."""
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    uri = what.split(" (version ")[0]
    name, _, ref = uri.removeprefix("models:/").partition("@")
    client = mlflow.MlflowClient()
    try:
        if ref:
            version = client.get_model_version_by_alias(name, ref)
        else:
            name, number = uri.removeprefix("models:/").rsplit("/", 1)
            version = client.get_model_version(name, number)
    except (mlflow.exceptions.MlflowException, ValueError):
        return None
    tags, path = version.tags, pretrained_path()
    if SHIPPED_F_TAG not in tags or "val_f" not in tags or not path.is_file() or \
            sha256(path) != tags.get(SHIPPED_SHA_TAG):
        return None
    shipped_f, own_f = float(tags[SHIPPED_F_TAG]), float(tags["val_f"])
    if shipped_f <= own_f:
        return None
    return (f"validation F {shipped_f:.4f} beats version {version.version}'s {own_f:.4f} on that version's "
            f"validation data")


def load_registered_model(uri: str | None = None, device: str = "cpu"):
    """Load a transcriber from MLflow, weights only (:func:`adt.registry.load`).

    Without ``uri``: the registry's ``champion`` alias (:func:`adt.frame.champion.champion_uri`) when it is
    set, else the latest version of ``adt-frame-crnn`` that is not a trimmed one (version tag
    ``trimmed``: the ``lite`` models of :mod:`adt.trimming` are only used when asked for). A champion
    that is set but does not load is an error, never replaced by another version.

    Returns:
        ``(model in eval mode on device, the URI loaded)``; an alias URI says the version it points at
        (``models:/adt-frame-crnn@champion (version 3)``).

    Raises:
        NoModelError: nothing registered under that name. ModelLoadError: the URI (or the champion)
            cannot be loaded.
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    tracking.setup()
    if uri is None:
        champion_uri = champion.champion_uri()
        if champion_uri:
            return _load(champion_uri, device), _with_version(champion_uri)
        client = mlflow.MlflowClient()
        try:
            versions = client.search_model_versions(f"name='{MODEL_NAME}'")
        except mlflow.exceptions.MlflowException:
            versions = []
        versions = [v for v in versions if v.tags.get("trimmed") != "true"]
        if not versions:
            raise NoModelError(f"no model registered as {MODEL_NAME!r} in {tracking.tracking_uri()}: "
                               "run `make demo` first or pass --model URI")
        uri = f"models:/{MODEL_NAME}/{max(int(v.version) for v in versions)}"
    model = _load(uri, device)
    return model, _with_version(uri)


def _with_version(uri: str) -> str:
    """``models:/<name>@<alias>`` -> the same with `` (version N)``: which version an alias pointed at."""
    if not uri.startswith("models:/") or "@" not in uri:
        return uri
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    name, alias = uri.removeprefix("models:/").split("@", 1)
    try:
        return f"{uri} (version {mlflow.MlflowClient().get_model_version_by_alias(name, alias).version})"
    except mlflow.exceptions.MlflowException:
        return uri


def _load(uri: str, device: str):
    """The transcriber at ``uri`` on ``device``, loaded weights-only (:func:`adt.registry.load`: the version's
    ``checkpoint.pt`` with ``torch.load(weights_only=True)``, the architecture rebuilt from its config; never
    an unpickled object).

    Raises:
        ModelLoadError: it cannot be fetched or loaded, or it is a pickled version from an older release
            (the message names the version).
    """
    try:
        model = registry.load(uri, kind="transcriber")
    except Exception as exc:
        raise ModelLoadError(f"cannot load model {uri}: {str(exc).splitlines()[0] if str(exc) else exc}") from exc
    return model.to(device).eval()
