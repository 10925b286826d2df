"""The separation study's stem databases and excerpts (interleaved multitask paper, Sec. 4.2).

Every item is one song's stems (drums + bass + other = its mixture) and the targets it trains; a source
database's items train only that source, in its own order and with **its own random training/validation
split** (:func:`stem_databases`), so no item needs to be seen with every target. Excerpts
(:class:`Excerpts`) are read lazily (``soundfile`` partial reads) at random offsets and **every source is
augmented on its own before the mixture is summed** (:func:`augment_source`: random scaling, panning and
filtering), so each target is exactly its own augmented source inside the mixture the network hears.
Validation excerpts are not augmented. The training procedures are in :mod:`adt.separation.procedures`.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import soundfile as sf
import torch

from adt.cache import file_key
from adt.separation.unet import SharedEncoderSeparator


@dataclasses.dataclass(frozen=True)
class ProcedureConfig:
    """A procedure's budget and optimiser (:mod:`adt.separation.procedures`). ``rounds``: at most; ``patience``:
    validation losses without improvement before training stops (None: never); ``lr`` 1e-3 (paper 2e-4);
    ``val_every`` rounds between validation losses; ``val_excerpts`` per source. Augmentation
    (:func:`augment_source`): ``gain`` (linear range), ``pan`` (largest pan position, 1 = hard left/right),
    ``filter_p`` (probability of a random low- or high-pass)."""

    rounds: int = 200
    batch_size: int = 8
    lr: float = 1e-3
    val_every: int = 25
    val_excerpts: int = 16
    patience: int | None = None
    gain: tuple = (0.25, 1.25)
    pan: float = 0.5
    filter_p: float = 0.5
    seed: int = 1234



class StemError(ValueError):
    """A mixture or stem a database item names is missing, unreadable, too short or silent."""


@dataclasses.dataclass(frozen=True)
class Item:
    """One song's excerpt source: its stems (source -> wav path; they sum to the song's mixture) and the
    sources it trains (``targets``, a subset of ``stems``)."""

    stems: dict
    targets: tuple


@dataclasses.dataclass
class SourceDatabase:
    """Items for the sources in ``sources`` (one source: an independent database; all: simultaneous)."""

    name: str
    sources: tuple
    items: list

    def __len__(self) -> int:
        return len(self.items)


@dataclasses.dataclass
class Databases:
    """The study's databases (:func:`stem_databases`): ``train`` / ``val`` source -> independent database,
    ``simultaneous`` / ``simultaneous_val`` the databases with every target per item."""

    train: dict
    val: dict
    simultaneous: SourceDatabase
    simultaneous_val: SourceDatabase


def _stems(track: dict, sources) -> dict:
    return {s: track[s] for s in sources if track.get(s)}


def stem_databases(pool: list[dict], sources=("drums", "bass", "other"), seed: int = 0, val_fraction: float = 0.0,
                   train_extra: list[dict] = (), val_extra: list[dict] = ()) -> Databases:
    """Independent per-source databases and the simultaneous one (paper Sec. 4.2).

    Args:
        pool: songs as dicts with one wav path per source (``drums``, ``bass``, ``other``: they sum to the
            mixture). Each source database splits the pool with **its own random permutation**:
            ``round(val_fraction * len(pool))`` songs validate, the rest train (a different split per
            source, as the paper); the simultaneous database takes one more permutation.
        train_extra, val_extra: songs always in every training / validation database (e.g. the real
            songs of the training folds and the real validation songs).

    Returns:
        :class:`Databases`; a song lacking a source's stem is left out of that source's databases.
    """
    rng = np.random.default_rng(seed)
    n_val = int(round(val_fraction * len(pool)))

    def split():
        order = rng.permutation(len(pool))
        val = [pool[i] for i in order[:n_val]] + list(val_extra)
        train = [pool[i] for i in order[n_val:]] + list(train_extra)
        return train, val

    train, val = {}, {}
    for s in sources:
        t, v = split()
        train[s] = SourceDatabase(s, (s,), [Item(_stems(x, sources), (s,)) for x in t if x.get(s)])
        val[s] = SourceDatabase(s, (s,), [Item(_stems(x, sources), (s,)) for x in v if x.get(s)])
    t, v = split()
    every = [x for x in t if all(x.get(s) for s in sources)]
    every_val = [x for x in v if all(x.get(s) for s in sources)]
    return Databases(train, val,
                     SourceDatabase("all", tuple(sources), [Item(_stems(x, sources), tuple(sources)) for x in every]),
                     SourceDatabase("all", tuple(sources), [Item(_stems(x, sources), tuple(sources)) for x in every_val]))


# ------------------------------------------------------------------------------------------- audio


def _read_excerpt(path: str, start: int, frames: int) -> np.ndarray:
    try:
        audio, _ = sf.read(path, start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:
        raise StemError(f"{path}: cannot read ({exc})") from exc
    audio = audio.T
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    if audio.shape[1] < frames:
        audio = np.pad(audio[:2], ((0, 0), (0, frames - audio.shape[1])))
    return audio[:2]


def augment_source(audio: np.ndarray, rng: np.random.Generator, settings: ProcedureConfig,
                   sample_rate: int = 44100) -> np.ndarray:
    """One source's excerpt ``(2, n)`` randomly scaled, panned and filtered (paper Sec. 4.2).

    Scaling: a gain uniform in ``settings.gain``. Panning: constant-power, position uniform in
    ``[-pan, pan]`` (0: unchanged). Filtering: with probability ``filter_p`` a 2nd-order Butterworth
    (:func:`scipy.signal.butter`), half the time a low-pass at 2-16 kHz, else a high-pass at 30-300 Hz
    (log-uniform cut-offs).
    """
    from scipy.signal import butter, sosfilt  # lazy: scipy.signal 0.6 s at adt transcribe

    out = audio * np.float32(rng.uniform(*settings.gain))
    theta = (rng.uniform(-settings.pan, settings.pan) + 1) * np.pi / 4
    out = out * np.array([[np.cos(theta)], [np.sin(theta)]], dtype=np.float32) * np.float32(np.sqrt(2))
    if rng.random() < settings.filter_p:
        if rng.random() < 0.5:
            sos = butter(2, float(np.exp(rng.uniform(np.log(2000), np.log(16000)))), "low", fs=sample_rate, output="sos")
        else:
            sos = butter(2, float(np.exp(rng.uniform(np.log(30), np.log(300)))), "high", fs=sample_rate, output="sos")
        out = sosfilt(sos, out, axis=-1)
    return np.ascontiguousarray(out, dtype=np.float32)


def check_item(item: Item, sample_rate: int, min_samples: int) -> int:
    """Frames shared by an item's files (the shortest). Each file is checked once per content
    (:func:`adt.cache.file_key`): every procedure of a study reuses the checks.

    Raises:
        StemError: a file is missing or unreadable, at another sample rate, shorter than
            ``min_samples``, or a target is silent throughout.
    """
    return min(_checked_frames(str(path), _identity(path), sample_rate, min_samples,
                               source if source in item.targets else None)
               for source, path in item.stems.items())


def _identity(path) -> str:
    try:
        return file_key(path)
    except OSError as exc:
        raise StemError(f"{path}: cannot read ({exc})") from exc


@functools.lru_cache(maxsize=None)
def _checked_frames(path: str, identity: str, sample_rate: int, min_samples: int, source: str | None) -> int:
    """Frames of one file (``identity`` keys the cache to its content); ``source``: a target to check for silence."""
    try:
        info = sf.info(path)
    except Exception as exc:
        raise StemError(f"{path}: cannot read ({exc})") from exc
    if info.samplerate != sample_rate:
        raise StemError(f"{path}: sample rate {info.samplerate} Hz, expected {sample_rate}")
    if info.frames < min_samples:
        raise StemError(f"{path}: {info.frames} samples, shorter than a training patch ({min_samples}): truncated?")
    if source is not None and not np.any(sf.read(path, dtype="float32")[0]):
        raise StemError(f"{path}: the {source} stem is silent throughout")
    return info.frames


class Excerpts:
    """Random excerpts of a database's items as magnitude spectrograms (``model.magnitude``): the stems
    read at one offset, each augmented on its own (:func:`augment_source`, unless ``augment`` is False),
    summed into the mixture."""

    def __init__(self, db: SourceDatabase, model: SharedEncoderSeparator, settings: ProcedureConfig,
                 augment: bool = True):
        self.db, self.model, self.settings, self.augment = db, model, settings, augment
        need = model.config.patch_samples
        self.lengths = [check_item(it, model.config.sample_rate, need) for it in db.items]

    def audio(self, indices, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(mixtures (B, 2, samples), {source: targets (B, 2, samples)})`` as float32 audio."""
        n = self.model.config.patch_samples
        mixes, targets = [], {s: [] for s in self.db.sources}
        for i in indices:
            item = self.db.items[int(i)]
            start = int(rng.integers(0, max(1, self.lengths[int(i)] - n + 1)))
            parts = {}
            for source, path in item.stems.items():
                x = _read_excerpt(path, start, n)
                parts[source] = augment_source(x, rng, self.settings, self.model.config.sample_rate) if self.augment else x
            mixes.append(np.sum(list(parts.values()), axis=0))
            for s in self.db.sources:
                targets[s].append(parts[s])
        return np.stack(mixes), {s: np.stack(v) for s, v in targets.items()}

    def batch(self, indices, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(mixture magnitudes (B, 2, bins, frames), {source: target magnitudes})``."""
        mixes, targets = self.audio(indices, rng)
        with torch.no_grad():
            mag = self.model.magnitude(torch.from_numpy(mixes))
            y = {s: self.model.magnitude(torch.from_numpy(v)) for s, v in targets.items()}
        return mag, y


def mixture_of(item: Item) -> np.ndarray:
    """An item's whole mixture ``(2, samples)``: its stems summed (mono stems doubled)."""
    parts = []
    for path in item.stems.values():
        audio, _ = sf.read(path, dtype="float32", always_2d=True)
        audio = audio.T
        parts.append(np.repeat(audio, 2, axis=0) if audio.shape[0] == 1 else audio[:2])
    n = min(p.shape[1] for p in parts)
    return np.sum([p[:, :n] for p in parts], axis=0)


def input_std(items: list[Item], model: SharedEncoderSeparator, max_items: int = 32) -> torch.Tensor:
    """Per-bin standard deviation of the mixtures' magnitudes (paper Sec. 2.2), mono-averaged over
    ``max_items`` items spread over the database (their whole tracks)."""
    total = total_sq = None
    count = 0
    picks = np.unique(np.linspace(0, len(items) - 1, min(max_items, len(items))).round().astype(int))
    for i in picks:
        audio = mixture_of(items[int(i)])
        mag = model.magnitude(torch.from_numpy(np.ascontiguousarray(audio))[None]).mean(1)[0].double()
        s, s2 = mag.sum(1), (mag ** 2).sum(1)
        total = s if total is None else total + s
        total_sq = s2 if total_sq is None else total_sq + s2
        count += mag.shape[1]
    mean = total / count
    return torch.sqrt(torch.clamp(total_sq / count - mean ** 2, min=0)).float()
