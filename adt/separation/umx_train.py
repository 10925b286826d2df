"""Training a small Open-Unmix drums model here (a baseline of :mod:`adt.separation.study`).

:func:`train_drums_model` follows openunmix's ``scripts/train.py`` recipe (input statistics from the
training mixtures, MSE between magnitude spectrograms, Adam) on (mixture, drum stem) pairs, sized for a
CPU; :func:`adt.separation.umx.load_separator` loads the model it writes. Audio arrays are float32
``(channels, samples)``; sample rates in Hz; durations in seconds.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from adt.atomic import atomic_path
from adt.audio import read_audio, resample
from adt.cpu import flush_denormals
from adt.separation.umx import MODEL_FORMAT, TARGET, SeparationConfig, as_stereo, build_model


def _load_at(path: Path, sample_rate: int, channels: int) -> np.ndarray:
    audio, sr = read_audio(path)
    if sr != sample_rate:
        audio = resample(audio, sr, sample_rate)
    return as_stereo(audio, channels)


def _make_encoder(config: SeparationConfig, center: bool) -> torch.nn.Module:
    """openunmix STFT + magnitude: (batch, channels, samples) -> (batch, channels, bins, frames)."""
    from openunmix.transforms import ComplexNorm, make_filterbanks  # lazy: openunmix 24 ms at import pipelines

    stft, _ = make_filterbanks(n_fft=config.n_fft, n_hop=config.n_hop, center=center, sample_rate=config.sample_rate)
    return torch.nn.Sequential(stft, ComplexNorm(mono=config.nb_channels == 1))


def _input_statistics(mixes: list[np.ndarray], encoder: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and std of the mono-downmixed mixture magnitudes over all frames.

    As openunmix ``scripts/train.py::get_statistics`` (sklearn StandardScaler over the
    frames of whole training tracks, std floored at 1e-4 of its maximum).
    """
    total = None
    total_sq = None
    count = 0
    with torch.no_grad():
        for mix in mixes:
            spec = encoder(torch.from_numpy(mix)[None]).mean(1)[0].double()  # (bins, frames)
            s, s2 = spec.sum(1), (spec**2).sum(1)
            total = s if total is None else total + s
            total_sq = s2 if total_sq is None else total_sq + s2
            count += spec.shape[1]
    mean = (total / count).numpy()
    var = np.maximum((total_sq / count).numpy() - mean**2, 0.0)
    std = np.sqrt(var)
    std = np.maximum(std, 1e-4 * std.max())
    return mean.astype(np.float32), std.astype(np.float32)

def train_drums_model(
    pairs: list[tuple[Path, Path]],
    out_path: Path,
    steps: int,
    seed: int,
    config: SeparationConfig = SeparationConfig(),
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train an Open-Unmix drums model on (mixture, drum stem) pairs and save it.

    Follows openunmix's ``scripts/train.py``: an :class:`openunmix.model.OpenUnmix` for one
    target, input mean/scale from the training mixtures' magnitude spectrograms, STFT
    without centering for training, loss = MSE between ``model(|STFT(mix)|)`` and
    ``|STFT(drums)|``, Adam. Each step draws ``config.batch_size`` random
    ``config.segment_s``-second excerpts (random track, random offset, random gain,
    optional channel swap — applied identically to mixture and stem). Audio is read
    once into memory; files not at ``config.sample_rate`` are resampled, mono is
    duplicated to stereo, and mixture and stem are cropped to the shorter of the two.

    Args:
        pairs: ``(mixture wav, drum stem wav)`` paths, ideally 44100 Hz.
        out_path: where the model goes (one ``torch.save`` file, written atomically,
            holding ``{"format", "target", "config", "state_dict"}``).
        steps: optimisation steps (>= 1).
        seed: seeds torch and the numpy excerpt sampler.
        config: model and training sizes.
        log: optional callable receiving progress lines.

    Returns:
        ``{"losses": [loss per step], "final_loss": mean of the last
        min(10, steps) losses, "first_loss", "steps", "seconds" (wall time),
        "model_path", "tracks"}``.

    Raises:
        ValueError: no pairs, or ``steps < 1``.
        adt.audio.AudioReadError: an audio file is missing or unreadable.
        FloatingPointError: the loss became NaN or infinite.

    Denormal floats are flushed to zero while training (:func:`adt.cpu.flush_denormals`);
    the caller sets the thread count (``torch.set_num_threads``).
    """
    if not pairs:
        raise ValueError("train_drums_model: no (mixture, drums) pairs given")
    if steps < 1:
        raise ValueError(f"train_drums_model: steps must be >= 1, got {steps}")
    with flush_denormals():
        return _train(pairs, Path(out_path), steps, seed, config, log or (lambda msg: None))


def _train(pairs, out_path: Path, steps: int, seed: int, config: SeparationConfig, say) -> dict:
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    seg = int(round(config.segment_s * config.sample_rate))
    mixes, drums = [], []
    for mix_path, drum_path in pairs:
        mix = _load_at(Path(mix_path), config.sample_rate, config.nb_channels)
        drum = _load_at(Path(drum_path), config.sample_rate, config.nb_channels)
        n = min(mix.shape[1], drum.shape[1])
        mix, drum = mix[:, :n], drum[:, :n]
        if n < seg:  # pad short tracks so every excerpt has the same length
            mix = np.pad(mix, ((0, 0), (0, seg - n)))
            drum = np.pad(drum, ((0, 0), (0, seg - n)))
        mixes.append(mix)
        drums.append(drum)
    say(f"separation: {len(mixes)} tracks, {sum(m.shape[1] for m in mixes) / config.sample_rate:.1f} s of audio")

    encoder = _make_encoder(config, center=False)
    mean, std = _input_statistics(mixes, encoder)
    model = build_model(config, input_mean=mean, input_scale=std)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    losses: list[float] = []
    every = max(1, steps // 10)
    for step in range(steps):
        idx = rng.integers(0, len(mixes), size=config.batch_size)
        x = np.empty((config.batch_size, config.nb_channels, seg), dtype=np.float32)
        y = np.empty_like(x)
        for b, i in enumerate(idx):
            start = int(rng.integers(0, mixes[i].shape[1] - seg + 1))
            gain = rng.uniform(config.gain_low, config.gain_high)
            sl = slice(start, start + seg)
            order = slice(None, None, -1) if (config.channel_swap and rng.random() < 0.5) else slice(None)
            x[b] = mixes[i][order, sl] * gain
            y[b] = drums[i][order, sl] * gain
        with torch.no_grad():
            X = encoder(torch.from_numpy(x))
            Y = encoder(torch.from_numpy(y))
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X), Y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"separation training diverged at step {step}: loss {losses[-1]}")
        if (step + 1) % every == 0 or step == steps - 1:
            say(f"separation step {step + 1}/{steps}: loss {losses[-1]:.6f} ({time.perf_counter() - t0:.1f} s)")

    payload = {
        "format": MODEL_FORMAT,
        "target": TARGET,
        "config": dataclasses.asdict(config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(out_path) as tmp:
        torch.save(payload, tmp)
    seconds = time.perf_counter() - t0
    tail = losses[-min(10, len(losses)) :]
    return {
        "losses": losses,
        "first_loss": losses[0],
        "final_loss": float(np.mean(tail)),
        "steps": steps,
        "seconds": seconds,
        "model_path": str(out_path),
        "tracks": len(mixes),
    }
