"""Input features and frame targets at 100 fps, and their tensor shards.

Log mel spectrogram after the tatum paper (Sec. IV-A): 44.1 kHz, STFT with a
Hann window of 2048 samples (46 ms), hop 441 samples (10 ms = 100 fps), 80 mel
bands from 20 Hz to 20 kHz, magnitude, compressed with log(1 + x).
Computed with torchaudio's ``MelSpectrogram`` (pure PyTorch).

Shards hold fixed-length segments (4 s = 400 frames by default) as ``.npy``
files that training opens memory-mapped (``np.load(mmap_mode="r")``), so a
training set never has to fit in RAM.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from adt.atomic import atomic_path, write_json
from adt.audio import read_audio, resample
from adt.vocab import CLASS_INDEX, CLASSES_5

SAMPLE_RATE = 44100
FPS = 100
HOP = SAMPLE_RATE // FPS  # 441
N_FFT = 2048
N_MELS = 80
F_MIN, F_MAX = 20.0, 20000.0

_MEL = None


def _mel_transform():
    global _MEL
    if _MEL is None:
        from torchaudio.transforms import MelSpectrogram

        _MEL = MelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=N_FFT, win_length=N_FFT, hop_length=HOP,
                              f_min=F_MIN, f_max=F_MAX, n_mels=N_MELS, power=1.0, center=True,
                              window_fn=torch.hann_window, norm="slaney", mel_scale="slaney")
    return _MEL


def log_mel(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log mel spectrogram of mono audio.

    Args:
        audio: (samples,) float, any sample rate (resampled to 44.1 kHz).

    Returns:
        float32 array (frames, 80), frames at 100 fps (frame t centred at t / 100 s).
    """
    audio = resample(np.asarray(audio, dtype=np.float32), sample_rate, SAMPLE_RATE)
    with torch.no_grad():
        mel = _mel_transform()(torch.from_numpy(np.ascontiguousarray(audio)))
    return torch.log1p(mel).T.contiguous().numpy().astype(np.float32)


def log_mel_file(path: str | os.PathLike) -> np.ndarray:
    """:func:`log_mel` of an audio file (channels averaged).

    Raises:
        adt.audio.AudioReadError: missing or unreadable file (the message names it).
    """
    audio, sr = read_audio(path, mono=True)
    return log_mel(audio, sr)


def frame_targets(times_s: np.ndarray, drums: np.ndarray, n_frames: int) -> np.ndarray:
    """Binary onset targets at 100 fps.

    Args:
        times_s: onset times in seconds.
        drums: 5-class names (``"BD"``...) or indices into :data:`adt.vocab.CLASSES_5`.
        n_frames: number of frames T.

    Returns:
        float32 (T, 5): 1 at frame round(100 * t) of each onset, else 0.
    """
    y = np.zeros((n_frames, len(CLASSES_5)), dtype=np.float32)
    idx = np.array([CLASS_INDEX[d] if isinstance(d, str) else int(d) for d in drums], dtype=int)
    frames = np.round(np.asarray(times_s, dtype=float) * FPS).astype(int)
    ok = (frames >= 0) & (frames < n_frames)
    y[frames[ok], idx[ok]] = 1.0
    return y


def save_array(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``np.save`` atomically."""
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)
    return Path(path)


def write_shards(items: list[tuple[Path, Path]], out_dir: Path, segment_frames: int = 400,
                 hop_frames: int | None = None, shard_segments: int = 512) -> dict:
    """Cut per-track features and targets into fixed-length segments, written as shards.

    Args:
        items: (features .npy (T, F), targets .npy (T, K)) per track.
        out_dir: folder for ``shard-XXXX.x.npy`` (N, segment_frames, F),
            ``shard-XXXX.y.npy`` (N, segment_frames, K) and ``index.json``.
        segment_frames: segment length in frames (400 = 4 s at 100 fps).
        hop_frames: segment hop (default: half a segment); a track shorter than a
            segment is zero-padded to one segment.

    Returns:
        The index: shard file names, segment counts, feature and class dimensions.
    """
    hop_frames = hop_frames or segment_frames // 2
    out_dir.mkdir(parents=True, exist_ok=True)
    xs, ys, shards, total = [], [], [], 0

    def flush():
        nonlocal xs, ys
        if not xs:
            return
        name = f"shard-{len(shards):04d}"
        save_array(out_dir / f"{name}.x.npy", np.stack(xs).astype(np.float32))
        save_array(out_dir / f"{name}.y.npy", np.stack(ys).astype(np.float32))
        shards.append({"name": name, "segments": len(xs)})
        xs, ys = [], []

    n_features = n_classes = None
    for feat_path, targ_path in items:
        x, y = np.load(feat_path, mmap_mode="r"), np.load(targ_path, mmap_mode="r")
        n_features, n_classes = x.shape[1], y.shape[1]
        starts = list(range(0, max(1, x.shape[0] - segment_frames + 1), hop_frames))
        for s in starts:
            seg_x = np.zeros((segment_frames, x.shape[1]), np.float32)
            seg_y = np.zeros((segment_frames, y.shape[1]), np.float32)
            chunk = x[s:s + segment_frames]
            seg_x[: len(chunk)] = chunk
            seg_y[: len(chunk)] = y[s:s + segment_frames]
            xs.append(seg_x)
            ys.append(seg_y)
            total += 1
            if len(xs) == shard_segments:
                flush()
    flush()
    index = {"shards": shards, "segments": total, "segment_frames": segment_frames,
             "n_features": n_features, "n_classes": n_classes}
    write_json(out_dir / "index.json", index)
    return index


class ShardDataset(torch.utils.data.Dataset):
    """Segments of one or more shard folders, memory-mapped and read lazily.

    Item: (features (segment_frames, F) float32, targets (segment_frames, K) float32).
    """

    def __init__(self, shard_dirs: list[Path]):
        self._entries: list[tuple[Path, int]] = []  # (x file, segment index)
        for d in shard_dirs:
            index = json.loads((Path(d) / "index.json").read_text())
            for shard in index["shards"]:
                self._entries += [(Path(d) / f"{shard['name']}.x.npy", i) for i in range(shard["segments"])]
        self._open: dict[Path, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _arrays(self, x_path: Path):
        if x_path not in self._open:
            y_path = x_path.with_name(x_path.name.replace(".x.npy", ".y.npy"))
            self._open[x_path] = (np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r"))
        return self._open[x_path]

    def __getitem__(self, i: int):
        x_path, j = self._entries[i]
        x, y = self._arrays(x_path)
        return torch.from_numpy(np.array(x[j])), torch.from_numpy(np.array(y[j]))
