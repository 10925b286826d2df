"""Audio file I/O with soundfile, with errors that name the file.

Audio is float32, shape (channels, samples) as open-unmix expects, sample rate in Hz.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from adt.atomic import atomic_path


#: File suffixes the command-line tools take as audio when given a folder (``adt transcribe``, ``adt separate``).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")


def audio_files(names: list[str]) -> tuple[list[Path], str | None]:
    """The files of ``names`` with each folder replaced by its audio files (:data:`AUDIO_SUFFIXES`, sorted), or
    a problem naming an empty folder."""
    files: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                return [], f"{name}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder"
            files += found
        else:
            files.append(path)
    return files, None


class AudioReadError(ValueError):
    """An audio file is missing, unreadable, empty or holds non-finite samples; the message names the file."""


def read_audio(path: str | os.PathLike, mono: bool = False) -> tuple[np.ndarray, int]:
    """Read an audio file.

    Returns:
        ``(audio, sample_rate)``: float32 array of shape (channels, samples), or
        (samples,) when ``mono`` (channels averaged); sample rate in Hz.

    Raises:
        AudioReadError: the file does not exist, cannot be decoded, holds no samples, or holds
            NaN or infinite samples (a float file written by a broken program: every activation
            computed from it would be NaN).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{path}: no such audio file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, ...
        raise AudioReadError(f"{path}: cannot read audio ({exc})") from exc
    if data.shape[0] == 0:
        raise AudioReadError(f"{path}: audio file holds no samples")
    bad = ~np.isfinite(data)
    if bad.any():
        first = int(np.argmax(bad.any(axis=1)))
        raise AudioReadError(f"{path}: {int(bad.sum())} NaN or infinite samples (the first at "
                             f"{first / sr:.3f} s): the file is corrupt; repair or re-export it")
    audio = data.T
    if mono:
        audio = audio.mean(axis=0)
    return np.ascontiguousarray(audio), int(sr)


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM WAV atomically. ``audio``: (channels, samples) or (samples,).

    Raises:
        OSError: the file cannot be written (disk full, no permission); the message names ``path``.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.T
    try:
        with atomic_path(path, suffix=".wav") as tmp:
            sf.write(str(tmp), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    except (sf.LibsndfileError, RuntimeError) as exc:  # libsndfile's "System error." names no file
        raise OSError(f"{path}: cannot write audio ({exc}): is the disk full or the folder read-only?") from exc
    return Path(path)


def rms_db(audio: np.ndarray) -> float:
    """RMS level of ``audio`` (any shape) in dBFS (full scale 1.0); -inf for silence."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if np.size(audio) else 0.0
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


#: Below this RMS (dBFS) a signal is taken as silence and :func:`normalize_level` leaves it as it is.
SILENCE_DB = -90.0


def normalize_level(audio: np.ndarray, level_db: float | None) -> np.ndarray:
    """``audio`` scaled so that its RMS over the whole signal is ``level_db`` dBFS (float32; may exceed
    1.0: nothing is clipped). ``level_db`` None, or a signal under :data:`SILENCE_DB`: unchanged."""
    current = rms_db(audio)
    if level_db is None or not current > SILENCE_DB:
        return audio
    return (np.asarray(audio, dtype=np.float32) * np.float32(10 ** ((level_db - current) / 20))).astype(np.float32)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the last axis with torchaudio's band-limited sinc resampler."""
    if orig_sr == target_sr:
        return audio
    # lazy: torchaudio 1.2 s, torch 1.1 s at adt evaluate
    import torch
    from torchaudio.functional import resample as _resample

    return _resample(torch.from_numpy(np.ascontiguousarray(audio)), orig_sr, target_sr).numpy()


def cropped_copy(src: str | os.PathLike, dst: str | os.PathLike, crop_s: float | None) -> tuple[str, float, int]:
    """``src`` cropped to its first ``crop_s`` seconds.

    No crop needed (``crop_s`` None or the file is short enough): ``src`` itself.
    Otherwise a 16-bit WAV copy at ``dst``, written atomically and reused when a
    copy of the right length, rate and channel count is already there.

    Returns:
        (path of the audio to use, its duration in seconds, sample rate in Hz).

    Raises:
        AudioReadError: ``src`` cannot be read.
    """
    src, dst = str(src), Path(dst)
    try:
        info = sf.info(src)
    except Exception as exc:  # missing file, unknown format
        raise AudioReadError(f"{src}: cannot read audio ({exc})") from exc
    sr = int(info.samplerate)
    if crop_s is None or info.frames <= int(round(crop_s * sr)):
        return src, info.frames / sr, sr
    n = int(round(crop_s * sr))
    if dst.is_file():
        try:
            cached = sf.info(str(dst))
            if cached.frames == n and cached.samplerate == sr and cached.channels == info.channels:
                return str(dst), n / sr, sr
        except RuntimeError:
            pass  # unreadable: write it again
    audio, _ = read_audio(src)
    write_audio(dst, audio[:, :n], sr)
    return str(dst), n / sr, sr


def crossfaded_chunks(process: Callable[[np.ndarray], dict[str, np.ndarray]], audio: np.ndarray, chunk: int,
                      overlap: int, min_len: int = 1) -> dict[str, np.ndarray]:
    """``process`` applied to overlapping chunks of ``audio`` and the outputs cross-faded linearly, so memory is
    bounded by one chunk whatever the input's length (the outputs themselves aside).

    Args:
        process: ``(channels, m)`` samples -> ``{name: (channels', m)}`` (e.g. a separator's source estimates).
        audio: ``(channels, samples)``.
        chunk: samples per chunk (the whole input when shorter).
        overlap: samples shared by neighbouring chunks (at most ``chunk // 2``), cross-faded linearly: the
            weights of the two chunks sum to 1, so linear relations between outputs (estimates that sum to
            the mixture) still hold.
        min_len: no chunk is shorter than this (the last one absorbs a shorter remainder), e.g. an FFT size.

    Returns:
        ``{name: (channels', samples)}`` float32.
    """
    total = audio.shape[-1]
    chunk = max(int(chunk), 2 * int(min_len))
    overlap = min(int(overlap), chunk // 2)
    out: dict[str, np.ndarray] = {}
    norm = np.zeros(total, dtype=np.float32)
    start = 0
    while True:
        end = min(start + chunk, total)
        if 0 < total - end < min_len:  # no last chunk shorter than min_len
            end = total
        estimates = process(np.ascontiguousarray(audio[..., start:end]))
        w = np.ones(end - start, dtype=np.float32)
        if start > 0 and overlap > 0:
            w[:overlap] = np.linspace(0.0, 1.0, overlap + 2, dtype=np.float32)[1:-1]
        if end < total and overlap > 0:
            w[-overlap:] = np.linspace(1.0, 0.0, overlap + 2, dtype=np.float32)[1:-1]
        for name, est in estimates.items():
            if name not in out:
                out[name] = np.zeros(est.shape[:-1] + (total,), dtype=np.float32)
            out[name][..., start:end] += est * w
        norm[start:end] += w
        if end >= total:
            break
        start += chunk - overlap
    for est in out.values():
        est /= np.maximum(norm, 1e-8)
    return out
