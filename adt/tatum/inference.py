"""Using a trained frame-to-tatum CRNN: tatum-level probabilities of a track, saving and loading."""

from __future__ import annotations

import numpy as np
import torch

from adt.atomic import atomic_path
from adt.tatum.model import TatumCRNN
from adt.tatum.tracks import TatumTrack, collate, cut_segment, segment_starts


@torch.no_grad()
def predict_tatums(model: TatumCRNN, track: TatumTrack, chunk_tatums: int = 512) -> np.ndarray:
    """Tatum-level onset probabilities phi of one track, (M, K), in windows of ``chunk_tatums`` tatums."""
    was = model.training
    model.eval()
    out = []
    for start in segment_starts(track.n_tatums, chunk_tatums):
        batch = collate([cut_segment(track, start, chunk_tatums)])
        out.append(torch.sigmoid(model(batch["x"], batch["owner"], batch["n_tatums"]))[0].numpy())
    model.train(was)
    return np.concatenate(out)


def save_model(model: TatumCRNN, path) -> None:
    """torch.save ``{"config", "state_dict"}`` atomically."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save({"config": model.config, "state_dict": model.state_dict()}, tmp)


def load_model(path) -> TatumCRNN:
    """A model written by :func:`save_model` (eval mode, CPU)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = TatumCRNN(**state["config"])
    model.load_state_dict(state["state_dict"])
    return model.eval()
