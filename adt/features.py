"""Input features and frame targets at 100 fps, training-set statistics, and tensor shards.

Two input features, chosen by name (:data:`FEATURE_TYPES`); both resample the
(mono) audio to 44.1 kHz first, so every dataset gives the same number of bins,
and both put frame t at t / 100 s:

* ``"log_mel"`` -- the tatum paper's log mel spectrogram (Sec. IV-A): STFT with
  a Hann window of 2048 samples (46 ms), hop 441 samples (10 ms = 100 fps), 80
  mel bands from 20 Hz to 20 kHz, magnitude, compressed with ln(1 + x).
  torchaudio ``MelSpectrogram`` (Slaney mel scale and norm), centred frames:
  ``1 + floor(samples / 441)`` frames.
* ``"log_filtered"`` -- the thesis's logarithmically filtered spectrogram
  (Fosse 2025, Sec. 5.1.1 "Audio Files"): STFT with 2048-point FFT and window,
  hop = sample rate / 100; a filterbank of 12 normalized triangular filters per
  octave centred on 440 Hz between 20 Hz and 20 kHz (filters that fall on the
  same FFT bin merged), 84 bins at 44.1 kHz; compressed with log10(1 + x).
  madmom ``LogarithmicFilteredSpectrogram`` with a ``LogarithmicFilterbank``
  (Hann window, frames centred on t * 441): ``ceil(samples / 441)`` frames.

Targets (thesis Sec. 5.1.2 "Annotations"): onset time t -> frame round(100 t);
optional *target widening* puts 0.5 on the frames next to each onset.

Training-set statistics (thesis Sec. 5.2 "Preprocessing"): per-bin mean and
standard deviation for input standardization, and per-class *infrequency
weights* w_i = 1 / (-p_i ln p_i - (1 - p_i) ln(1 - p_i)) with p_i = n_i / T
(onset frames of class i over all frames), "the inverse estimated entropy of
their event activity distribution" (Cartwright and Bello, DAFx 2018), as used by
Zehren et al. (Signals 2023). :class:`TrainingStats` accumulates them per track
so the statistics of a union of training sets are exact sums.

Shards hold fixed-length segments (4 s = 400 frames by default) as ``.npy``
files that training opens memory-mapped (``np.load(mmap_mode="r")``), so a
training set never has to fit in RAM; :class:`ShardDataset` opens them lazily in
each DataLoader worker.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import os
import random
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
#: Log-filtered spectrogram: bands per octave, reference frequency (Hz), bins at 44.1 kHz.
BANDS_PER_OCTAVE, F_REF, N_LOG_BINS = 12, 440.0, 84
#: Segment length of the shards and of training examples: 4 s.
SEGMENT_FRAMES = 400

FEATURE_TYPES = ("log_mel", "log_filtered")

#: Every parameter that shapes each feature type (part of the features cache key).
FEATURE_PARAMS: dict[str, dict] = {
    "log_mel": {"sample_rate": SAMPLE_RATE, "fps": FPS, "n_fft": N_FFT, "window": "hann", "n_bins": N_MELS,
                "f_min": F_MIN, "f_max": F_MAX, "mel_scale": "slaney", "norm": "slaney", "magnitude": "power 1",
                "compression": "ln(1+x)", "frames": "1+floor(n/hop)", "backend": "torchaudio"},
    "log_filtered": {"sample_rate": SAMPLE_RATE, "fps": FPS, "frame_size": N_FFT, "window": "hann",
                     "n_bins": N_LOG_BINS, "bands_per_octave": BANDS_PER_OCTAVE, "f_min": F_MIN, "f_max": F_MAX,
                     "f_ref": F_REF, "norm_filters": True, "unique_filters": True, "compression": "log10(1+x)",
                     "frames": "ceil(n/hop)", "backend": "madmom"},
}


def check_feature_type(feature_type: str) -> str:
    """``feature_type`` itself if known.

    Raises:
        ValueError: not one of :data:`FEATURE_TYPES`.
    """
    if feature_type not in FEATURE_TYPES:
        raise ValueError(f"unknown feature type {feature_type!r}; choose one of {FEATURE_TYPES}")
    return feature_type


def feature_params(feature_type: str) -> dict:
    """The parameters of ``feature_type`` (a copy of :data:`FEATURE_PARAMS`); raises ValueError if unknown."""
    return dict(FEATURE_PARAMS[check_feature_type(feature_type)])


def n_bins(feature_type: str) -> int:
    """Feature width F: 80 (log mel) or 84 (log filtered); the model's input size follows it."""
    return FEATURE_PARAMS[check_feature_type(feature_type)]["n_bins"]


_MEL = None
_LOG_FILTERBANK = None


def _mel_transform():
    global _MEL
    if _MEL is None:
        from torchaudio.transforms import MelSpectrogram

        _MEL = MelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=N_FFT, win_length=N_FFT, hop_length=HOP,
                              f_min=F_MIN, f_max=F_MAX, n_mels=N_MELS, power=1.0, center=True,
                              window_fn=torch.hann_window, norm="slaney", mel_scale="slaney")
    return _MEL


def _log_filterbank():
    """madmom's LogarithmicFilterbank over the 1024 FFT bins of a 2048-point frame at 44.1 kHz (84 filters)."""
    global _LOG_FILTERBANK
    if _LOG_FILTERBANK is None:
        from madmom.audio.filters import LogarithmicFilterbank
        from madmom.audio.stft import fft_frequencies

        fb = LogarithmicFilterbank(fft_frequencies(N_FFT // 2, SAMPLE_RATE), num_bands=BANDS_PER_OCTAVE,
                                   fmin=F_MIN, fmax=F_MAX, fref=F_REF, norm_filters=True, unique_filters=True)
        if fb.num_bands != N_LOG_BINS:
            raise RuntimeError(f"madmom LogarithmicFilterbank gave {fb.num_bands} bands, expected {N_LOG_BINS}")
        _LOG_FILTERBANK = fb
    return _LOG_FILTERBANK


def log_mel(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log mel spectrogram of mono audio (tatum paper, Sec. IV-A).

    Args:
        audio: (samples,) float, any sample rate in Hz (resampled to 44.1 kHz).

    Returns:
        float32 array (frames, 80), frames = 1 + floor(samples / 441) at 44.1 kHz,
        frame t centred at t / 100 s.
    """
    audio = resample(np.asarray(audio, dtype=np.float32), sample_rate, SAMPLE_RATE)
    with torch.no_grad():
        mel = _mel_transform()(torch.from_numpy(np.ascontiguousarray(audio)))
    return torch.log1p(mel).T.contiguous().numpy().astype(np.float32)


def log_filtered(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Logarithmically filtered log spectrogram of mono audio (thesis Sec. 5.1.1).

    2048-sample Hann frames every 441 samples at 44.1 kHz, 12 bands per octave
    centred on 440 Hz within 20 Hz - 20 kHz (madmom ``LogarithmicFilterbank``,
    normalized, unique filters), log10(1 + x).

    Args:
        audio: (samples,) float, any sample rate in Hz (resampled to 44.1 kHz).

    Returns:
        float32 array (frames, 84), frames = ceil(samples / 441) at 44.1 kHz
        (= ceil(duration_s * 100)), frame t centred at t / 100 s.

    Raises:
        ValueError: ``audio`` is not one-dimensional.
    """
    from madmom.audio.signal import Signal
    from madmom.audio.spectrogram import LogarithmicFilteredSpectrogram

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"log_filtered expects mono audio (samples,), got shape {audio.shape}")
    audio = resample(audio, sample_rate, SAMPLE_RATE)
    signal = Signal(np.ascontiguousarray(audio), sample_rate=SAMPLE_RATE, num_channels=1)
    spec = LogarithmicFilteredSpectrogram(signal, frame_size=N_FFT, hop_size=HOP, filterbank=_log_filterbank(),
                                          mul=1.0, add=1.0)
    return np.ascontiguousarray(spec, dtype=np.float32)


def compute_features(audio: np.ndarray, sample_rate: int, feature_type: str = "log_mel") -> np.ndarray:
    """``feature_type`` features of mono audio: (frames, :func:`n_bins`) float32 at 100 fps.

    Raises:
        ValueError: unknown ``feature_type``.
    """
    check_feature_type(feature_type)
    return log_mel(audio, sample_rate) if feature_type == "log_mel" else log_filtered(audio, sample_rate)


def features_file(path: str | os.PathLike, feature_type: str = "log_mel") -> np.ndarray:
    """:func:`compute_features` of an audio file (channels averaged).

    Raises:
        adt.audio.AudioReadError: missing or unreadable file (the message names it).
        ValueError: unknown ``feature_type``.
    """
    check_feature_type(feature_type)
    audio, sr = read_audio(path, mono=True)
    return compute_features(audio, sr, feature_type)


def log_mel_file(path: str | os.PathLike) -> np.ndarray:
    """:func:`log_mel` of an audio file (channels averaged).

    Raises:
        adt.audio.AudioReadError: missing or unreadable file (the message names it).
    """
    return features_file(path, "log_mel")


def model_features(model, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The features a trained model takes: its ``feature_type`` attribute (set by
    :func:`adt.train.train_frame_model`), ``"log_mel"`` for models trained before it existed."""
    return compute_features(audio, sample_rate, getattr(model, "feature_type", "log_mel"))


def widen_targets(targets: np.ndarray, value: float = 0.5) -> np.ndarray:
    """Target widening (thesis Sec. 5.1.2): frames next to an onset get ``value``.

    Args:
        targets: (T, K) with 1 at onset frames, else 0.

    Returns:
        float32 (T, K): onset frames stay 1; their neighbours t - 1 and t + 1
        that hold no onset become ``value``.
    """
    y = np.asarray(targets, dtype=np.float32)
    onset = y >= 1.0
    near = np.zeros_like(onset)
    near[1:] |= onset[:-1]
    near[:-1] |= onset[1:]
    out = y.copy()
    out[near & ~onset] = np.maximum(out[near & ~onset], value)
    return out


def frame_targets(times_s: np.ndarray, drums: np.ndarray, n_frames: int, widening: bool = False) -> np.ndarray:
    """Onset targets at 100 fps.

    Args:
        times_s: onset times in seconds.
        drums: 5-class names (``"BD"``...) or indices into :data:`adt.vocab.CLASSES_5`.
        n_frames: number of frames T.
        widening: also put 0.5 on the frames next to each onset (:func:`widen_targets`).

    Returns:
        float32 (T, 5): 1 at frame round(100 * t) of each onset (onsets outside
        the T frames dropped), 0.5 beside onsets when ``widening``, else 0.

    Raises:
        KeyError: an unknown class name.
    """
    y = np.zeros((n_frames, len(CLASSES_5)), dtype=np.float32)
    idx = np.array([CLASS_INDEX[d] if isinstance(d, str) else int(d) for d in drums], dtype=int)
    frames = np.round(np.asarray(times_s, dtype=float) * FPS).astype(int)
    ok = (frames >= 0) & (frames < n_frames)
    y[frames[ok], idx[ok]] = 1.0
    return widen_targets(y) if widening else y


def infrequency_weights(onset_frames: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-class infrequency weights (thesis Sec. 5.2): the inverse binary entropy of each
    class's onset probability, w_i = 1 / (-p_i ln p_i - (1 - p_i) ln(1 - p_i)), p_i = n_i / T.

    Unlike Cartwright and Bello, p_i is not divided by the number of classes (as in the
    thesis). A class that never (or always) has an onset has zero entropy; it gets weight 1,
    which has no effect since the weight only multiplies frames holding that class's onsets.

    Args:
        onset_frames: (K,) onset frames n_i per class in the training set.
        n_frames: total frames T of the training set.

    Returns:
        float64 (K,) weights (natural logarithm; rarer classes weigh more, w >= 1 / ln 2).

    Raises:
        ValueError: T < 1, or a count is negative or larger than T.
    """
    n = np.asarray(onset_frames, dtype=np.float64)
    if n_frames < 1 or (n < 0).any() or (n > n_frames).any():
        raise ValueError(f"onset counts {n.tolist()} do not fit {n_frames} frames")
    p = n / n_frames
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -p * np.log(p) - (1 - p) * np.log(1 - p)
    return np.where((p > 0) & (p < 1), 1.0 / entropy, 1.0)


@dataclasses.dataclass
class TrainingStats:
    """Sufficient statistics of a training set, summed over its tracks.

    Attributes:
        frames: number of frames T.
        total: (F,) float64 sum of the features per bin.
        total_sq: (F,) float64 sum of their squares.
        onsets: (K,) int64 frames whose target is 1 (an onset; widened 0.5 frames not counted).
        feature_type: the features' type, when known.
    """

    frames: int
    total: np.ndarray
    total_sq: np.ndarray
    onsets: np.ndarray
    feature_type: str | None = None

    @classmethod
    def of_track(cls, features: np.ndarray, targets: np.ndarray, feature_type: str | None = None) -> TrainingStats:
        """Statistics of one track: features (T, F), targets (T, K).

        Raises:
            ValueError: the two have different frame counts.
        """
        if len(features) != len(targets):
            raise ValueError(f"features have {len(features)} frames but targets {len(targets)}")
        x = np.asarray(features, dtype=np.float64)
        return cls(frames=len(x), total=x.sum(0), total_sq=np.square(x).sum(0),
                   onsets=(np.asarray(targets) == 1.0).sum(0).astype(np.int64), feature_type=feature_type)

    @classmethod
    def of_tracks(cls, items: list[tuple[Path, Path]], feature_type: str | None = None) -> TrainingStats:
        """Statistics of tracks given as (features .npy, targets .npy), read memory-mapped one at a time.

        Raises:
            ValueError: no tracks, or a track's features and targets disagree in length
                (the message names the file).
        """
        out = None
        for x_path, y_path in items:
            try:
                one = cls.of_track(np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r"), feature_type)
            except ValueError as exc:
                raise ValueError(f"{x_path}: {exc}") from None
            out = one if out is None else out + one
        if out is None:
            raise ValueError("no training tracks to compute statistics from")
        return out

    def __add__(self, other: TrainingStats) -> TrainingStats:
        if self.total.shape != other.total.shape or self.onsets.shape != other.onsets.shape:
            raise ValueError(f"cannot add statistics of {self.total.shape[0]} and {other.total.shape[0]} bins "
                             f"({self.feature_type} vs {other.feature_type})")
        return TrainingStats(self.frames + other.frames, self.total + other.total, self.total_sq + other.total_sq,
                             self.onsets + other.onsets, self.feature_type or other.feature_type)

    @property
    def mean(self) -> np.ndarray:
        """(F,) float32 per-bin mean."""
        return (self.total / self.frames).astype(np.float32)

    @property
    def std(self) -> np.ndarray:
        """(F,) float32 per-bin standard deviation (population, ddof 0)."""
        mean = self.total / self.frames
        return np.sqrt(np.maximum(self.total_sq / self.frames - mean**2, 0.0)).astype(np.float32)

    def infrequency_weights(self) -> np.ndarray:
        """(K,) float32 :func:`infrequency_weights` of the onset counts."""
        return infrequency_weights(self.onsets, self.frames).astype(np.float32)

    def to_json(self) -> dict:
        """JSON-able form (sums as lists; mean, std and weights added for reading)."""
        return {"frames": int(self.frames), "total": self.total.tolist(), "total_sq": self.total_sq.tolist(),
                "onsets": self.onsets.tolist(), "feature_type": self.feature_type,
                "onsets_per_class": dict(zip(CLASSES_5, self.onsets.tolist())) if len(self.onsets) == 5 else None,
                "infrequency_weights": self.infrequency_weights().tolist(), "mean": self.mean.tolist(),
                "std": self.std.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> TrainingStats:
        return cls(int(d["frames"]), np.asarray(d["total"], np.float64), np.asarray(d["total_sq"], np.float64),
                   np.asarray(d["onsets"], np.int64), d.get("feature_type"))

    def save(self, folder: str | os.PathLike, **extra) -> Path:
        """Write ``mean.npy``, ``std.npy``, ``infrequency_weights.npy`` and ``stats.json``
        (plus ``extra`` fields) into ``folder``, atomically; returns the folder."""
        folder = Path(folder)
        save_array(folder / "mean.npy", self.mean)
        save_array(folder / "std.npy", self.std)
        save_array(folder / "infrequency_weights.npy", self.infrequency_weights())
        write_json(folder / "stats.json", {**self.to_json(), **extra})
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> TrainingStats:
        """Statistics saved by :meth:`save`.

        Raises:
            FileNotFoundError: ``folder`` holds no ``stats.json``.
        """
        path = Path(folder) / "stats.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no training statistics there")
        return cls.from_json(json.loads(path.read_text()))


def save_array(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``np.save`` atomically."""
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)
    return Path(path)


def segment_starts(n_frames: int, segment_frames: int = SEGMENT_FRAMES, hop_frames: int | None = None) -> list[int]:
    """First frames of the segments cut from a track of ``n_frames``: every ``hop_frames``
    (default half a segment), plus one segment ending at the track's end when the hops
    leave a tail; a track shorter than a segment gives the single start 0."""
    hop_frames = hop_frames or segment_frames // 2
    starts = list(range(0, max(1, n_frames - segment_frames + 1), hop_frames))
    if n_frames > segment_frames and starts[-1] + segment_frames < n_frames:
        starts.append(n_frames - segment_frames)
    return starts


def write_shards(items: list[tuple[Path, Path]], out_dir: Path, segment_frames: int = SEGMENT_FRAMES,
                 hop_frames: int | None = None, shard_segments: int = 512, extra: dict | None = None) -> dict:
    """Cut per-track features and targets into fixed-length segments, written as shards.

    Args:
        items: (features .npy (T, F), targets .npy (T, K)) per track.
        out_dir: folder for ``shard-XXXX.x.npy`` (N, segment_frames, F),
            ``shard-XXXX.y.npy`` (N, segment_frames, K) and ``index.json``.
        segment_frames: segment length in frames (400 = 4 s at 100 fps).
        hop_frames: segment hop (default: half a segment); see :func:`segment_starts`.
            A track shorter than a segment is zero-padded to one segment.
        extra: more fields for the index (e.g. the feature type).

    Returns:
        The index: shard file names, segment counts, feature and class dimensions.

    Raises:
        ValueError: tracks of different feature or class widths, or a track whose
            features and targets differ in length (the message names the file).
    """
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
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{feat_path}: {x.shape[0]} feature frames but {y.shape[0]} target frames")
        if n_features is not None and (x.shape[1], y.shape[1]) != (n_features, n_classes):
            raise ValueError(f"{feat_path}: {x.shape[1]} bins x {y.shape[1]} classes, "
                             f"other tracks have {n_features} x {n_classes}")
        n_features, n_classes = x.shape[1], y.shape[1]
        for s in segment_starts(x.shape[0], segment_frames, hop_frames):
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
    index = {**(extra or {}), "shards": shards, "segments": total, "segment_frames": segment_frames,
             "n_features": n_features, "n_classes": n_classes}
    write_json(out_dir / "index.json", index)
    return index


class ShardDataset(torch.utils.data.Dataset):
    """Segments of one or more shard folders, memory-mapped and read lazily.

    Item: (features (segment_frames, F) float32, targets (segment_frames, K) float32).
    Safe with ``DataLoader(num_workers > 0)``: the memory maps are opened on first
    use in each process and never pickled (see :meth:`__getstate__`).

    Raises:
        FileNotFoundError: a folder has no ``index.json``.
        ValueError: folders with different feature or class widths (e.g. log mel and
            log filtered shards mixed).
    """

    def __init__(self, shard_dirs: list[Path]):
        self.shard_dirs = [Path(d) for d in shard_dirs]
        self._files: list[Path] = []  # x file of each shard
        self._ends: list[int] = []  # cumulative segment count after each shard
        self.n_features = self.n_classes = self.segment_frames = self.feature_type = None
        first = None
        for d in self.shard_dirs:
            path = d / "index.json"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no shard index (write_shards writes it)")
            index = json.loads(path.read_text())
            if not index["segments"]:
                continue
            dims = (index["n_features"], index["n_classes"], index["segment_frames"])
            if first is None:
                first = (d, dims)
                self.n_features, self.n_classes, self.segment_frames = dims
                self.feature_type = index.get("feature_type")
            elif dims != first[1]:
                raise ValueError(f"shards differ: {first[0]} holds (bins, classes, frames) {first[1]}, {d} holds {dims}")
            for shard in index["shards"]:
                self._files.append(d / f"{shard['name']}.x.npy")
                self._ends.append((self._ends[-1] if self._ends else 0) + shard["segments"])
        self._open: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_open"] = {}  # memory maps are per process: reopened after unpickling
        return state

    def _arrays(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._pid != os.getpid():  # a forked worker: do not share the parent's maps
            self._open, self._pid = {}, os.getpid()
        if k not in self._open:
            x_path = self._files[k]
            y_path = x_path.with_name(x_path.name.replace(".x.npy", ".y.npy"))
            self._open[k] = (np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r"))
        return self._open[k]

    def __getitem__(self, i: int):
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"segment {i} out of range ({n} segments)")
        k = bisect.bisect_right(self._ends, i)
        j = i - (self._ends[k - 1] if k else 0)
        x, y = self._arrays(k)
        return torch.from_numpy(np.array(x[j])), torch.from_numpy(np.array(y[j]))


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy and ``random`` in each worker from its torch seed
    (which the loader derives from its ``generator``), so workers are reproducible."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def segment_loader(data: ShardDataset, batch_size: int, num_samples: int, seed: int,
                   num_workers: int = 0) -> torch.utils.data.DataLoader:
    """Random segments with replacement (``num_samples`` per pass), batched and seeded.

    The order depends only on ``seed``, not on ``num_workers``: the sampler runs in the
    main process; workers only read the segments it picks.
    """
    gen = torch.Generator().manual_seed(seed)
    sampler = torch.utils.data.RandomSampler(data, replacement=True, num_samples=num_samples, generator=gen)
    return torch.utils.data.DataLoader(data, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                                       worker_init_fn=seed_worker if num_workers else None,
                                       generator=torch.Generator().manual_seed(seed),
                                       persistent_workers=num_workers > 0)
