"""Tests for adt.separation (Open-Unmix drum separation) on synthetic stems."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from adt.separation import umx as S
from adt.separation import umx_train as T
from adt.audio import read_audio, write_audio

torch.set_num_threads(2)

SR = 44100
# Small enough that a training step takes well under a second on 2 cores.
TINY = S.SeparationConfig(hidden_size=32, nb_layers=1, segment_s=1.0, batch_size=4, lr=3e-3)


def separate_file(separator, mix_path: Path, out_path: Path, chunk_s: float = 30.0) -> Path:
    """Separate the drums of an audio file and write them as a WAV (a test helper: the stage separates in
    :func:`adt.separation.stems.separate_files`).

    Reads ``mix_path`` with :func:`adt.audio.read_audio`, runs :func:`adt.separation.umx.separate_audio`
    (resampling to the separator's rate, mono -> stereo, chunks of ``chunk_s`` seconds
    under ``torch.no_grad``) and writes the (2, n) drum estimate atomically as 16-bit
    PCM at the separator's rate (44100 Hz), n being the mixture's length at that rate
    (its own length when it is already at 44100 Hz).

    Returns:
        ``out_path``.

    Raises:
        adt.audio.AudioReadError: the mixture is missing or unreadable.
    """
    audio, sr = read_audio(mix_path)
    drums = S.separate_audio(separator, audio, sr, chunk_s=chunk_s)
    return write_audio(out_path, drums, int(round(float(separator.sample_rate))))


def sdr(reference: np.ndarray, estimate: np.ndarray, eps: float = 1e-10) -> float:
    """Signal-to-distortion ratio in dB over the whole signal (a test helper: the study scores with BSS Eval v4,
    :mod:`adt.separation.bsseval`).

    ``10 log10((||s||^2 + eps) / (||s - ŝ||^2 + eps))`` with sums over all channels and
    samples. This is the plain (global) SDR used by the Music Demixing Challenge 2021
    (Mitsufuji et al., Front. Signal Process. 2022) — *not* BSS Eval v4's SDR
    (museval; Stöter, Liutkus & Ito, "The 2018 Signal Separation Evaluation Campaign",
    LVA/ICA 2018), which allows a distortion filter and reports the median over
    1-second frames. An estimate of zeros gives 0 dB; identical signals give
    ``10 log10(||s||^2 / eps)`` (large, finite).

    Args:
        reference: true source s, any shape, e.g. (channels, samples).
        estimate: estimate ŝ, same shape.

    Raises:
        ValueError: the shapes differ.
    """
    s = np.asarray(reference, dtype=np.float64)
    e = np.asarray(estimate, dtype=np.float64)
    if s.shape != e.shape:
        raise ValueError(f"sdr: reference shape {s.shape} != estimate shape {e.shape}")
    num = float(np.sum(s**2)) + eps
    den = float(np.sum((s - e) ** 2)) + eps
    return 10.0 * math.log10(num / den)


def _stems(seed: int, seconds: float, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """(drums, accompaniment), each (2, n): decaying noise bursts on an eighth-note grid; sines."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    drums = np.zeros(n)
    period = 60.0 / 120.0 / 2.0
    for k in range(int(seconds / period)):
        s = int(k * period * sr)
        length = min(int(0.12 * sr), n - s)
        env = np.exp(-np.arange(length) / sr * rng.uniform(25.0, 60.0))
        drums[s : s + length] += rng.standard_normal(length) * env * rng.uniform(0.2, 0.4)
    acc = sum(0.08 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in (110.0, 220.0, 330.0, 523.0, 880.0))
    return np.stack([drums, 0.8 * drums]).astype(np.float32), np.stack([0.7 * acc, acc]).astype(np.float32)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> list[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("stems")
    out = []
    for i in range(3):
        drums, acc = _stems(i, 3.0)
        mix_path, drum_path = root / f"{i}_mix.wav", root / f"{i}_drums.wav"
        write_audio(mix_path, drums + acc, SR)
        write_audio(drum_path, drums, SR)
        out.append((mix_path, drum_path))
    return out


@pytest.fixture(scope="module")
def trained(pairs, tmp_path_factory) -> tuple[Path, dict]:
    model_path = tmp_path_factory.mktemp("model") / "drums.pt"
    lines: list[str] = []
    result = T.train_drums_model(pairs, model_path, steps=30, seed=0, config=TINY, log=lines.append)
    result["log"] = lines
    return model_path, result


def test_train_loss_finite_and_decreasing(trained):
    model_path, result = trained
    losses = result["losses"]
    assert result["steps"] == 30 and len(losses) == 30
    assert all(math.isfinite(x) for x in losses)
    assert math.isfinite(result["final_loss"]) and result["seconds"] > 0
    assert np.mean(losses[-5:]) < losses[0]
    assert model_path.is_file()
    assert not list(model_path.parent.glob(".tmp-*"))  # atomic write left nothing behind
    assert result["log"] and "loss" in result["log"][-1]


def test_saved_file_holds_state_dict_and_config(trained):
    model_path, _ = trained
    payload = torch.load(model_path, weights_only=True)
    assert payload["format"] == S.MODEL_FORMAT and payload["target"] == "drums"
    assert S.SeparationConfig.from_dict(payload["config"]) == TINY
    # input statistics from the training mixtures, as openunmix train.py
    assert payload["state_dict"]["input_mean"].shape == (TINY.max_bin,)
    assert not torch.allclose(payload["state_dict"]["input_scale"], torch.ones(TINY.max_bin))


def test_trained_separator_beats_the_mixture(trained):
    model_path, _ = trained
    separator = S.load_separator(model_path)
    drums, acc = _stems(11, 3.0)
    estimate = S.separate_audio(separator, drums + acc, SR)
    assert sdr(drums, estimate) > sdr(drums, drums + acc) + 3.0


def test_default_config_trains_on_tracks_shorter_than_a_segment(pairs, tmp_path):
    # 3 s tracks < 4 s default segments: the tracks are zero-padded
    result = T.train_drums_model(pairs[:1], tmp_path / "d.pt", steps=2, seed=0)
    assert len(result["losses"]) == 2 and all(math.isfinite(x) for x in result["losses"])
    assert S.load_separator(tmp_path / "d.pt").stft.n_fft == 2048


def test_training_is_seeded(pairs, tmp_path):
    a = T.train_drums_model(pairs, tmp_path / "a.pt", steps=2, seed=3, config=TINY)
    b = T.train_drums_model(pairs, tmp_path / "b.pt", steps=2, seed=3, config=TINY)
    assert a["losses"] == b["losses"]


def test_train_rejects_bad_arguments(pairs, tmp_path):
    with pytest.raises(ValueError):
        T.train_drums_model([], tmp_path / "m.pt", steps=1, seed=0, config=TINY)
    with pytest.raises(ValueError):
        T.train_drums_model(pairs, tmp_path / "m.pt", steps=0, seed=0, config=TINY)


def test_separate_file_keeps_length_and_shape(trained, tmp_path):
    model_path, _ = trained
    separator = S.load_separator(model_path)
    assert not separator.training
    drums, acc = _stems(7, 2.5)
    mix_path = write_audio(tmp_path / "mix.wav", drums + acc, SR)
    out = separate_file(separator, mix_path, tmp_path / "out" / "drums.wav")
    est, sr = read_audio(out)
    assert sr == SR and est.shape == (2, drums.shape[1])
    assert np.all(np.isfinite(est)) and np.abs(est).max() > 0


def test_separate_mono_chunked_and_resampled(trained, tmp_path):
    model_path, _ = trained
    separator = S.load_separator(model_path)
    drums, acc = _stems(8, 3.3)
    mono = (drums + acc).mean(axis=0)
    # chunks of 1 s with 1 s overlap requested: the overlap is capped at half a chunk
    whole = S.separate_audio(separator, mono, SR, chunk_s=100.0)
    chunked = S.separate_audio(separator, mono, SR, chunk_s=1.0, overlap_s=0.25)
    assert whole.shape == chunked.shape == (2, mono.shape[0])
    assert sdr(whole, chunked) > 10.0  # cross-faded chunks stay close to one pass
    mix_path = write_audio(tmp_path / "mono22k.wav", mono[::2], SR // 2)
    est, sr = read_audio(separate_file(separator, mix_path, tmp_path / "est.wav"))
    assert sr == SR and est.shape == (2, 2 * (mono.shape[0] // 2 + mono.shape[0] % 2))
    tiny = S.separate_audio(separator, mono[:100], SR)  # shorter than the FFT
    assert tiny.shape == (2, 100)


def test_load_separator_missing_file(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        S.load_separator(missing)


def test_load_separator_rejects_foreign_file(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(ValueError, match="bad.pt"):
        S.load_separator(bad)


def test_sdr_known_values():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((2, 10000))
    assert sdr(s, s) > 100.0
    assert sdr(s, np.zeros_like(s)) == pytest.approx(0.0, abs=1e-9)
    assert sdr(s, 0.5 * s) == pytest.approx(10 * math.log10(4.0), abs=1e-6)
    noise = rng.standard_normal(s.shape)
    expected = 10 * math.log10(np.sum(s**2) / np.sum((0.1 * noise) ** 2))
    assert sdr(s, s + 0.1 * noise) == pytest.approx(expected, abs=1e-6)
    assert sdr(s, s + 0.1 * noise) == pytest.approx(20.0, abs=0.3)  # unit-variance noise at -20 dB
    with pytest.raises(ValueError):
        sdr(s, s[:, :-1])


def test_config_defaults():
    c = S.SeparationConfig()
    assert (c.n_fft, c.n_hop, c.sample_rate, c.nb_channels) == (2048, 512, 44100, 2)
    assert c.nb_bins == 1025 and c.max_bin == 744  # 16 kHz bandwidth
    assert S.SeparationConfig.from_dict({**dataclasses.asdict(c), "unknown": 1}) == c


def test_load_pretrained_returns_none_quickly_offline():
    t0 = time.perf_counter()
    separator = S.load_pretrained("umxl", timeout_s=5.0)
    elapsed = time.perf_counter() - t0
    assert elapsed < 15.0
    if separator is not None:  # weights cached or network available: a drums Separator
        assert list(separator.target_models) == ["drums"]
    else:
        with pytest.raises(FileNotFoundError):
            S.load_separator(None)
    with pytest.raises(ValueError):
        S.load_pretrained("nope")
