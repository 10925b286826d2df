"""Registered models as weights, never pickles: one place that logs, registers and loads them.

Every version of the transcriber (``adt-frame-crnn``: the sweep's champion, the trimming study's
``lite``) and of the GRU language model (``adt-gru-lm``) is a small MLflow model folder::

    MLmodel         YAML (MLflow's ``mlflow.models.Model``): the signature and the flavor ``adt_weights``
                    (``kind``, ``checkpoint``, ``format``, ``sha256``)
    checkpoint.pt   a weights-only checkpoint: tensors and plain values, read with
                    ``torch.load(weights_only=True)`` (:func:`adt.frame.checkpoint.save_model` /
                    :func:`adt.frame.checkpoint.load_model`, :func:`adt.lm.gru.save` / :func:`adt.lm.gru.load`)

so ``models:/adt-frame-crnn@champion`` resolves as MLflow users expect (``mlflow.artifacts.download_artifacts``,
``mlflow.models.get_model_info`` for the signature) while our loading (:func:`load`) rebuilds the
architecture from the checkpoint's config and loads its weights: no code is ever unpickled. A version
logged by an older release with ``mlflow.pytorch`` (a pickle) is refused (:class:`LegacyPickleError`).

Who does what: MLflow stores the folder (run artifacts), the version (``MlflowClient.create_model_version``),
its tags, description and aliases; PyTorch writes and reads the checkpoint; this module decides the layout.

Registration (:func:`register`) is idempotent per source: each version carries the tag
:data:`SOURCE_KEY_TAG` (what made it, e.g. ``optuna:<study>/trial-3``, plus the checkpoint's content
hash); a re-run after a crash finds that version and finishes it (tags, description, alias) instead of
registering a duplicate. All tags are written when the version is created, the alias last: the alias is
the commit point, so a reader never sees an aliased version without its tags.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pickle
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adt import tracking

#: MLmodel flavor of our weights-only folders.
FLAVOR = "adt_weights"
#: Layout version of the folder (the flavor's ``format``).
FORMAT = 1
#: The checkpoint inside the folder.
CHECKPOINT = "checkpoint.pt"
#: Run artifact path of a registered model's folder.
ARTIFACT_PATH = "registered_model"
#: Model version tag: what made the version (:func:`register`).
SOURCE_KEY_TAG = "adt.source_key"
#: kind -> (writer, reader) of its weights-only checkpoint, as ``"module:function"``.
KINDS = {"transcriber": ("adt.frame.checkpoint:save_model", "adt.frame.checkpoint:load_model"),
         "gru_lm": ("adt.lm.gru:save", "adt.lm.gru:load")}


class RegistryError(ValueError):
    """A model folder or registered version that cannot be loaded (missing, not ours, corrupt)."""


class LegacyPickleError(RegistryError):
    """A version logged by an older release as a pickled ``mlflow.pytorch`` model: not loaded."""


def _function(spec: str) -> Callable:
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def _kind(kind: str) -> tuple[Callable, Callable]:
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; one of {sorted(KINDS)}")
    save, load = KINDS[kind]
    return _function(save), _function(load)


def content_hash(path: str | Path) -> str:
    """SHA-256 (hex) of a weights-only checkpoint's contents: every tensor's name, dtype, shape and bytes
    and every other value as JSON, in key order. Unlike the file's bytes it does not change when the
    same model is saved again (``torch.save`` archives differ between saves).

    Raises:
        RegistryError: the file does not load with ``torch.load(weights_only=True)``.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise RegistryError(f"{path}: not a weights-only checkpoint ({str(exc).splitlines()[0]})") from exc
    digest = hashlib.sha256()

    def feed(value: Any, key: str) -> None:
        if torch.is_tensor(value):
            t = value.detach().cpu().contiguous()
            digest.update(f"{key}:{t.dtype}:{tuple(t.shape)}:".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(value, Mapping):
            for k in sorted(value, key=str):
                feed(value[k], f"{key}/{k}")
        else:
            digest.update(f"{key}={json.dumps(value, sort_keys=True, default=str)};".encode())

    feed(state, "")
    return digest.hexdigest()


def save_dir(model: Any, folder: str | Path, kind: str = "transcriber", signature: Any = None) -> Path:
    """Write ``model`` as a weights-only MLflow model folder (module docstring) at ``folder`` (created).

    Args:
        kind: a key of :data:`KINDS` (``"transcriber"``: any architecture :func:`adt.frame.checkpoint.save_model`
            writes, trimmed ones with their widths; ``"gru_lm"``: :class:`adt.lm.gru.GRUDrumLM`).
        signature: an ``mlflow.models.ModelSignature`` (default: :func:`signature_of`).

    Returns:
        the folder.
    """
    # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.2 s at adt transcribe
    from mlflow.models import Model

    save, _ = _kind(kind)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save(model, folder / CHECKPOINT)
    meta = Model(signature=signature if signature is not None else signature_of(model, kind))
    meta.add_flavor(FLAVOR, kind=kind, checkpoint=CHECKPOINT, format=FORMAT,
                    sha256=content_hash(folder / CHECKPOINT), loader="adt.registry.load")
    meta.save(str(folder / "MLmodel"))
    return folder


def signature_of(model: Any, kind: str) -> Any:
    """The MLflow signature of what the model takes and gives, as tensors (``mlflow.types.TensorSpec``).

    ``transcriber``: input ``features`` float32 (batch, frames, bands) -> output ``onset_logits`` float32
    (batch, frames, classes), batch and frames free (-1; 100 frames per second). ``gru_lm``: input ``scores``
    float32 (batch, K drums, M tatums) in [0, 1] -> output ``log_probs`` float32 (batch, M, 2^K) in nats.
    """
    # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    f32 = np.dtype(np.float32)
    if kind == "gru_lm":
        return ModelSignature(inputs=Schema([TensorSpec(f32, (-1, int(model.k), -1), "scores")]),
                              outputs=Schema([TensorSpec(f32, (-1, -1, 2 ** int(model.k)), "log_probs")]))
    dims = getattr(model, "io_dims", None) or (model.config["n_features"], model.config["n_classes"])
    return ModelSignature(inputs=Schema([TensorSpec(f32, (-1, -1, int(dims[0])), "features")]),
                          outputs=Schema([TensorSpec(f32, (-1, -1, int(dims[1])), "onset_logits")]))


def load_dir(folder: str | Path, kind: str | None = "transcriber", what: str | None = None) -> Any:
    """The model of a folder written by :func:`save_dir`, on CPU in eval mode, loaded weights-only.

    Args:
        kind: the kind expected (None: any).
        what: how to name the model in errors (default: the folder).

    Raises:
        LegacyPickleError: a pickled ``mlflow.pytorch`` model (older releases): never unpickled.
        RegistryError: no MLmodel, another flavor or kind, a checkpoint that is missing, corrupt, holds
            Python objects other than tensors and plain values, or whose content hash differs from the
            MLmodel's.
    """
    # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.2 s at adt transcribe
    from mlflow.models import Model

    folder, what = Path(folder), what or str(folder)
    if not (folder / "MLmodel").is_file():
        raise RegistryError(f"{what}: no MLmodel file in {folder}")
    meta = Model.load(str(folder / "MLmodel"))  # YAML, read with yaml.safe_load
    flavor = meta.flavors.get(FLAVOR)
    if flavor is None:
        if "pytorch" in meta.flavors:
            raise LegacyPickleError(f"{what} is a pickled mlflow.pytorch model from an older release: not loaded "
                                    "(a pickle can run code); re-run the sweep (or the trimming study, the LM fit) "
                                    "to register a weights-only version")
        raise RegistryError(f"{what}: not an adt weights-only model (flavors {sorted(meta.flavors)})")
    if kind is not None and flavor.get("kind") != kind:
        raise RegistryError(f"{what}: a {flavor.get('kind')!r} model, not a {kind!r} one")
    _, load = _kind(flavor["kind"])
    path = folder / flavor.get("checkpoint", CHECKPOINT)
    expected = flavor.get("sha256")
    if expected and content_hash(path) != expected:  # content_hash loads weights-only: refuses pickles too
        raise RegistryError(f"{what}: {path.name} does not match the content hash in its MLmodel")
    try:
        return load(path)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as exc:
        raise RegistryError(f"{what}: {str(exc).splitlines()[0]}") from exc


def resolve_version(uri: str) -> tuple[str, str] | None:
    """(name, version) of a ``models:/<name>/<version>`` or ``models:/<name>@<alias>`` URI, else None
    (another URI, or an alias that is not set)."""
    if not uri.startswith("models:/"):
        return None
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    rest = uri.removeprefix("models:/")
    try:
        if "@" in rest:
            name, alias = rest.split("@", 1)
            return name, str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
        name, version = rest.rsplit("/", 1)
        return name, version
    except (ValueError, mlflow.exceptions.MlflowException):
        return None


def load(uri: str | Path, kind: str | None = "transcriber") -> Any:
    """A registered (or logged, or local) model, loaded weights-only (:func:`load_dir`).

    Args:
        uri: ``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``runs:/<id>/<path>``, any artifact
            URI MLflow resolves (``mlflow.artifacts.download_artifacts``: only files are fetched, nothing is
            unpickled), or a local model folder.

    Raises:
        LegacyPickleError: the version is a pickle from an older release (the message names it).
        RegistryError: it cannot be found or fetched, or is not one of ours.
    """
    local = Path(uri)
    if local.is_dir():
        return load_dir(local, kind)
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    tracking.setup()
    version = resolve_version(str(uri))
    what = f"version {version[1]} of {version[0]} ({uri})" if version else str(uri)
    try:
        folder = mlflow.artifacts.download_artifacts(artifact_uri=str(uri))
    except Exception as exc:  # MlflowException, OSError: a missing version, alias or artifact
        reason = str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise RegistryError(f"{what}: cannot fetch its files ({reason})") from exc
    return load_dir(folder, kind, what)


def ensure_registered_model(name: str, description: str) -> None:
    """Create the registered model ``name`` if needed and set its description
    (``MlflowClient.create_registered_model`` / ``update_registered_model``)."""
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    client = mlflow.MlflowClient()
    try:
        current = client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        try:
            client.create_registered_model(name, description=description)
            return
        except mlflow.exceptions.MlflowException:  # created meanwhile by another process
            current = client.get_registered_model(name)
    if current.description != description:
        client.update_registered_model(name, description=description)


def find_version(name: str, source_key: str) -> Any | None:
    """The (lowest) version of ``name`` tagged :data:`SOURCE_KEY_TAG` = ``source_key``, or None."""
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    found = [v for v in mlflow.MlflowClient().search_model_versions(f"name='{name}'")
             if v.tags.get(SOURCE_KEY_TAG) == source_key]
    return min(found, key=lambda v: int(v.version)) if found else None


def register(model: Any, *, name: str, kind: str, source: str, description: str,
             model_description: str, tags: Mapping[str, str] | None = None,
             alias: str | Callable[[str], Any] | None = None, signature: Any = None) -> str:
    """Register ``model`` as a version of ``name``, once per source (module docstring), in the active run.

    Steps, each safe to repeat: write the folder (:func:`save_dir`) and hash its checkpoint; the source key
    is ``<source>#<first 16 hex of the content hash>``; reuse the version with that key, or log the folder
    as artifacts of the active MLflow run (:data:`ARTIFACT_PATH`) and create the version with its description
    and every tag at once; set the tags again on a reused version; then the alias, last.

    Args:
        source: what made the model, e.g. ``optuna:<study>/trial-<n>`` (no quotes needed: it is a tag value).
        description: the version's (what it is, what it was trained on, its validation score).
        model_description: the registered model's.
        tags: version tags (strings).
        alias: an alias to point at the version, or a function of the version that does it (e.g.
            :func:`adt.frame.champion.promote`); None: no alias (:func:`set_alias`).

    Returns:
        the version (string).

    Raises:
        RuntimeError: no active MLflow run. RegistryError: the model's checkpoint does not load weights-only.
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("register needs an active MLflow run (tracking.run) to log the model's files into")
    client = mlflow.MlflowClient()
    ensure_registered_model(name, model_description)
    with tempfile.TemporaryDirectory(prefix="adt-register-") as tmp:
        folder = save_dir(model, Path(tmp) / "model", kind, signature)
        key = f"{source}#{content_hash(folder / CHECKPOINT)[:16]}"
        all_tags = {**{k: str(v) for k, v in (tags or {}).items()}, SOURCE_KEY_TAG: key}
        existing = find_version(name, key)
        if existing is None:
            path = f"{ARTIFACT_PATH}/{name}"
            mlflow.log_artifacts(str(folder), path)
            version = str(client.create_model_version(name, f"{active.info.artifact_uri}/{path}",
                                                      run_id=active.info.run_id, tags=all_tags,
                                                      description=description).version)
        else:  # a re-run after a crash: finish that version
            version = str(existing.version)
            for k, v in all_tags.items():
                if existing.tags.get(k) != v:
                    client.set_model_version_tag(name, version, k, v)
            if existing.description != description:
                client.update_model_version(name, version, description=description)
    if callable(alias):
        alias(version)
    elif alias:
        set_alias(version, name, alias)
    return version


def set_alias(version: int | str, name: str, alias: str) -> None:
    """Point the registry alias ``alias`` of model ``name`` at ``version``
    (``MlflowClient.set_registered_model_alias``)."""
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 1.1 s at adt transcribe

    tracking.setup()
    mlflow.MlflowClient().set_registered_model_alias(name, alias, str(version))
