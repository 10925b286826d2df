"""A trained transcriber as a file, and what inference needs of it: no training code.

:func:`save_model` writes a weights-only checkpoint (:func:`checkpoint_state`: tensors and plain Python values),
:func:`load_model` reads it back with ``torch.load(weights_only=True)`` and rebuilds the architecture from its
config (:func:`model_from_state`, :func:`build_model`; trimmed networks with their widths). The model carries
what inference must know: what it heard of mixtures (:func:`model_input`) and the peak picking it was selected
with (:func:`model_peak_picking`). :func:`predict_activations`, :func:`transcribe_features` and :func:`evaluate`
run it on feature frames (the validation of training, the studies' test figures, the registered versions'
checks).

Training is :mod:`adt.frame.recipe` (optimizer, loss, loop); ``adt transcribe`` imports this module, never that one.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from adt.atomic import atomic_path
from adt.frame import architectures
from adt.frame.architectures import FrameCRNN
from adt.frame.peaks import peak_picking_params, pick_peaks
from adt.frame.units import resize, split_recurrent
from adt.pretrained import verify
from adt.vocab import CLASSES_5

#: Architecture name of :class:`adt.frame.architectures.FrameCRNN` (the tatum paper's frame baseline).
FRAME_CRNN = "frame_crnn"
#: Optimizer hyperparameters inside a ``params`` dict (the rest are the architecture's).
OPTIMIZER_PARAMS = ("lr", "weight_decay")


def build_model(architecture: str, params: dict, n_features: int, n_classes: int) -> torch.nn.Module:
    """A fresh model: (B, T, F) features -> (B, T, K) onset logits.

    Args:
        architecture: ``"frame_crnn"`` (:class:`adt.frame.architectures.FrameCRNN`), a name in
            ``adt.frame.architectures.ARCHITECTURES`` (thesis ch. 3) or ``OTHER_ARCHITECTURES``
            (``"lottery_drum_cnn"``, the lottery paper's drum model; params: its constructor kwargs).
        params: the architecture's hyperparameters, keyed ``"<architecture>.<kwarg>"`` as
            ``adt.frame.architectures.suggest`` returns them (``frame_crnn`` also takes bare kwargs);
            ``lr`` and ``weight_decay`` are ignored.

    Raises:
        ValueError: an unknown architecture (from ``adt.frame.architectures.build``).
    """
    arch_params = {k: v for k, v in params.items() if k not in OPTIMIZER_PARAMS}
    if architecture == FRAME_CRNN:
        arch_params = {k.removeprefix(f"{FRAME_CRNN}."): v for k, v in arch_params.items()}
        arch_params["channels"] = tuple(arch_params["channels"])
        return FrameCRNN(n_features=n_features, n_classes=n_classes, **arch_params)
    if architecture in architectures.OTHER_ARCHITECTURES:
        kwargs = {k.removeprefix(f"{architecture}."): v for k, v in arch_params.items()}
        return architectures.OTHER_ARCHITECTURES[architecture](n_features=n_features, n_classes=n_classes, **kwargs)
    return architectures.build(architecture, arch_params, n_features, n_classes)


def predict_activations(model: torch.nn.Module, features: np.ndarray) -> np.ndarray:
    """Onset activation function of one track: (T, F) features -> (T, K) probabilities."""
    # np.array copies: mmaps are read-only
    return model.activations(torch.from_numpy(np.array(features, dtype=np.float32))).numpy()


def model_peak_picking(model: torch.nn.Module) -> str | dict:
    """The peak picking a model was selected with, or tuned for on validation (``model.peak_picking``:
    a :data:`adt.frame.peaks.PEAK_PICKING` name or keyword arguments; ``"paper"`` for older models)."""
    return getattr(model, "peak_picking", None) or "paper"


def model_input(model: torch.nn.Module) -> str:
    """What ``model`` heard of mixtures in training (``adt.config.TRANSCRIBER_INPUTS``; older models:
    ``"separated"``): a ``"separated"`` model wants the drum stem of a mixture, the others any audio as is."""
    return getattr(model, "transcriber_input", None) or "separated"


def transcribe_features(model: torch.nn.Module, features: np.ndarray,
                        peak_picking: str | dict | None = None) -> dict[str, np.ndarray]:
    """Onset times (seconds) per drum class from feature frames (T, F), via peak picking
    (default: the model's own, :func:`model_peak_picking`)."""
    params = peak_picking_params(peak_picking or model_peak_picking(model))
    return pick_peaks(predict_activations(model, features), **params)


def evaluate(model: torch.nn.Module, items: list[tuple[Path, dict[str, np.ndarray]]],
             classes: tuple[str, ...] = CLASSES_5, peak_picking: str | dict | None = None) -> dict:
    """Micro F-measure (50 ms) of ``model`` on tracks given as (features .npy, reference onsets);
    see :func:`adt.metrics.micro_f_measure` for the keys."""
    refs, ests = [], []
    for feat_path, ref in items:
        ests.append(transcribe_features(model, np.load(feat_path, mmap_mode="r"), peak_picking))
        refs.append(ref)
    # adt.metrics imports mir_eval: 0.8-1.1 s at import after torch (python -X importtime), which
    # `adt transcribe` never needs
    from adt.metrics import micro_f_measure

    return micro_f_measure(refs, ests, classes=classes)


def _plain(value):
    """A NumPy scalar as a Python one (checkpoints load with ``weights_only=True``)."""
    return value.item() if isinstance(value, np.generic) else value


def checkpoint_state(model: torch.nn.Module) -> dict:
    """A trained model as tensors and plain Python values (what :func:`save_model` writes): architecture,
    hyperparameters, config, weights (CPU), feature type, peak picking, scores, input, the input level
    inference normalizes to (``input_level_db``, dBFS, or None: :func:`adt.audio.normalize_level`), and for a trimmed
    network its units per layer (``model.trimmed``); rebuilt by :func:`model_from_state`."""
    dims = getattr(model, "io_dims", None) or (model.config["n_features"], model.config["n_classes"])
    state = {"architecture": getattr(model, "architecture", FRAME_CRNN), "hparams": getattr(model, "hparams", {}),
             "config": model.config, "n_features": int(dims[0]), "n_classes": int(dims[1]),
             "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "feature_type": getattr(model, "feature_type", "log_mel"), "peak_picking": model_peak_picking(model),
             "best_epoch": _plain(getattr(model, "best_epoch", None)),
             "best_val_f": _plain(getattr(model, "best_val_f", None)),
             "tuned_val_f": _plain(getattr(model, "tuned_val_f", None)),
             "transcriber_input": model_input(model),
             "input_level_db": _plain(getattr(model, "input_level_db", None))}
    if getattr(model, "trimmed", None):
        state["trimmed"] = dict(model.trimmed)
    return state


def save_model(model: torch.nn.Module, path: str | Path) -> Path:
    """Write a trained model's checkpoint (:func:`checkpoint_state`) atomically; read it with :func:`load_model`."""
    state = checkpoint_state(model)
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    return Path(path)


def model_from_state(state: dict, what: str = "checkpoint") -> torch.nn.Module:
    """The model of a :func:`checkpoint_state` dict (or an older ``{"config", "state_dict"}`` FrameCRNN one),
    in eval mode on CPU: the architecture rebuilt from its config (trimmed widths applied), then the weights.

    Raises:
        ValueError: not a transcriber checkpoint (``what`` names it in the message).
    """
    if not isinstance(state, dict) or "state_dict" not in state or "config" not in state:
        raise ValueError(f"{what}: not a transcriber checkpoint (expected keys config, state_dict)")
    arch = state.get("architecture", FRAME_CRNN)
    if arch == FRAME_CRNN:
        model = FrameCRNN(**state["config"])
    else:
        model = build_model(arch, state["hparams"], state["n_features"], state["n_classes"])
    if state.get("trimmed"):  # a trimmed network (adt.trimming): the architecture with fewer units per layer
        resize(split_recurrent(model), state["trimmed"])
        model.trimmed = dict(state["trimmed"])
    model.load_state_dict(state["state_dict"])
    model.feature_type = state.get("feature_type", "log_mel")
    model.architecture, model.hparams = arch, state.get("hparams", {})
    model.io_dims = (state.get("n_features", state["config"].get("n_features")),
                     state.get("n_classes", state["config"].get("n_classes")))
    model.peak_picking = state.get("peak_picking", "paper")
    model.best_epoch, model.best_val_f = state.get("best_epoch"), state.get("best_val_f")
    model.tuned_val_f, model.transcriber_input = state.get("tuned_val_f"), state.get("transcriber_input", "separated")
    model.input_level_db = state.get("input_level_db")
    return model.eval()


def load_model(path: str | Path) -> torch.nn.Module:
    """A model written by :func:`save_model` (or an older ``{"config", "state_dict"}``
    FrameCRNN checkpoint), in eval mode on CPU (:func:`model_from_state`).

    Loaded with ``torch.load(weights_only=True)``: tensors and plain Python values only, so a
    checkpoint from elsewhere cannot run code.

    Raises:
        FileNotFoundError: no such file. ValueError: corrupt, not a transcriber checkpoint, or one
        holding objects other than tensors and plain values; a shipped file (``adt/pretrained/``) whose
        SHA-256 differs from the one kept in code (:class:`adt.pretrained.ShippedWeightsError`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model checkpoint")
    verify(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: not a plain transcriber checkpoint (it holds Python objects, which are "
                         f"not loaded: {str(exc).splitlines()[0]})") from exc
    except (RuntimeError, EOFError) as exc:  # truncated or not a torch file at all
        raise ValueError(f"{path}: corrupt or not a torch checkpoint ({str(exc).splitlines()[0]})") from exc
    return model_from_state(state, str(path))
