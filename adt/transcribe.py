"""Audio in, drum MIDI out, with a registered transcriber.

The model comes from the MLflow model registry (default: the latest version of
``adt-frame-crnn``) or any MLflow model URI (``runs:/<id>/model``,
``models:/adt-frame-crnn/3``). Pipeline: log mel (adt.features) -> frame-level CRNN
onset activations -> madmom peak picking (threshold 0.2) -> GM drum MIDI
(BD 36, SD 38, TT 47, HH 42, CY 49).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from adt.audio import read_audio
from adt.evaluate import pick_peaks
from adt.features import model_features
from adt.midi import write_drum_midi
from adt.tracking import MODEL_NAME


class NoModelError(RuntimeError):
    """No transcriber is registered (or the given URI does not resolve)."""


def load_registered_model(uri: str | None = None):
    """Load a transcriber from MLflow (default: latest version of ``adt-frame-crnn``).

    Raises:
        NoModelError: nothing registered under that name, or the URI cannot be loaded.
    """
    import mlflow
    import mlflow.pytorch

    from adt import tracking

    tracking.setup()
    if uri is None:
        client = mlflow.MlflowClient()
        try:
            versions = client.search_model_versions(f"name='{MODEL_NAME}'")
        except mlflow.exceptions.MlflowException:
            versions = []
        if not versions:
            raise NoModelError(f"no model registered as {MODEL_NAME!r} in {tracking.tracking_uri()}: "
                               "run `make demo` first or pass --model URI")
        uri = f"models:/{MODEL_NAME}/{max(int(v.version) for v in versions)}"
    try:
        model = mlflow.pytorch.load_model(uri, map_location="cpu")
    except Exception as exc:
        raise NoModelError(f"cannot load model {uri}: {exc}") from exc
    return model.eval(), uri


def transcribe_file(audio_path: str | os.PathLike, midi_path: str | os.PathLike, model=None,
                    threshold: float = 0.2, progress: bool = True) -> dict[str, np.ndarray]:
    """Transcribe one audio file into a GM drum MIDI file.

    Returns:
        class name -> onset times in seconds.

    Raises:
        adt.audio.AudioReadError: missing or unreadable audio (names the file).
        NoModelError: no model given and none registered.
    """
    import torch

    torch.set_num_threads(2)
    steps = tqdm(total=4, desc=Path(audio_path).name, disable=not progress, unit="step")
    audio, sr = read_audio(audio_path, mono=True)
    steps.update()
    if model is None:
        model, _ = load_registered_model()
    features = model_features(model, audio, sr)
    steps.update()
    act = model.activations(torch.from_numpy(features)).numpy()
    steps.update()
    onsets = pick_peaks(act, threshold=threshold)
    write_drum_midi(midi_path, onsets)
    steps.update()
    steps.close()
    return onsets
