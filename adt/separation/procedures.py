"""The four training procedures of the interleaved multitask paper (Sec. 3, 4.3) and their databases.

* ``independent``: one network (encoder + one decoder) per source, each on its own database.
* ``simultaneous``: the shared-encoder model, every source's loss summed on each mini-batch of a
  database where every item has all stems.
* ``interleaved`` (Algorithm 1): one mini-batch per source database in a non-repeating random task
  order per round; each mini-batch updates the encoder and that source's decoder. Per epoch every
  database contributes a random subset as long as the smallest one (subsets vary across epochs).
* ``interleaved_acc`` (Algorithm 2): as ``interleaved``, but the encoder's gradients are summed
  over the round and it takes one step per round; decoders step after their own mini-batch.

Databases (:class:`SourceDatabase`, :func:`stem_databases`, paper Sec. 4.2): every item is one song's
stems (drums + bass + other = its mixture) and the targets it trains; a source database's items
train only that source, in its own order and with **its own random training/validation split**,
so no item needs to be seen with every target. Excerpts are read lazily (``soundfile`` partial
reads) at random offsets and **every source is augmented on its own before the mixture is summed**
(:func:`augment_source`: random scaling, panning and filtering), so each target is exactly its own
augmented source inside the mixture the network hears. Validation excerpts are not augmented.

Budgets are in *rounds*: a round is one mini-batch of every source (``independent``: one of each
network's; ``simultaneous``: one mini-batch with all targets), so the procedures see the same
number of (mixture, target) examples per source. An *epoch* (Algorithm 1) is as many rounds as
the smallest training database has whole mini-batches. Optimiser: Adam (paper: lr 2e-4, batch 32);
validation after every ``val_every`` rounds; **early stopping** after ``patience`` validation
losses without improvement (paper: 30 epochs), ``rounds`` at most; the state with the lowest
validation loss is kept (paper Sec. 4.2). A procedure may also start from trained weights
(:func:`train_procedure`'s ``start``, e.g. the shipped separator: fine-tuning, not the paper); the
start is then validated first (round 0) and kept when no round improves on it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from adt.cpu import flush_denormals
from adt.separation.unet import SharedEncoderSeparator, UNetConfig

PROCEDURES = ("independent", "simultaneous", "interleaved", "interleaved_acc")


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


def interleaved_schedule(sizes: dict[str, int], batch_size: int, rng: np.random.Generator
                         ) -> list[list[tuple[str, np.ndarray]]]:
    """One epoch of Algorithm 1: rounds of ``(task, item indices)``, every task once per round.

    Each database gives a random subset of ``n * batch_size`` items, ``n`` being the number of
    whole batches of the smallest database; the task order is a fresh permutation per round.

    Raises:
        ValueError: a database has fewer than ``batch_size`` items.
    """
    n = min(sizes.values()) // batch_size
    if n < 1:
        raise ValueError(f"every database needs at least {batch_size} items (batch size): {sizes}")
    tasks = list(sizes)
    subsets = {t: rng.permutation(sizes[t])[: n * batch_size].reshape(n, batch_size) for t in tasks}
    return [[(tasks[k], subsets[tasks[k]][r]) for k in rng.permutation(len(tasks))] for r in range(n)]


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Budget and optimiser. ``rounds``: at most (see the module docstring); ``patience``: validation losses
    without improvement before training stops (None: never); ``lr`` 1e-3 (paper 2e-4); ``val_every`` rounds
    between validation losses; ``val_excerpts`` per source. Augmentation (:func:`augment_source`): ``gain``
    (linear range), ``pan`` (largest pan position, 1 = hard left/right), ``filter_p`` (probability of a
    random low- or high-pass)."""

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


def augment_source(audio: np.ndarray, rng: np.random.Generator, settings: TrainSettings,
                   sample_rate: int = 44100) -> np.ndarray:
    """One source's excerpt ``(2, n)`` randomly scaled, panned and filtered (paper Sec. 4.2).

    Scaling: a gain uniform in ``settings.gain``. Panning: constant-power, position uniform in
    ``[-pan, pan]`` (0: unchanged). Filtering: with probability ``filter_p`` a 2nd-order Butterworth
    (:func:`scipy.signal.butter`), half the time a low-pass at 2-16 kHz, else a high-pass at 30-300 Hz
    (log-uniform cut-offs).
    """
    from scipy.signal import butter, sosfilt

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
    from adt.cache import file_key

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

    def __init__(self, db: SourceDatabase, model: SharedEncoderSeparator, settings: TrainSettings,
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


# ---------------------------------------------------------------------------------------- training


@dataclasses.dataclass
class Trained:
    """A trained procedure: ``models`` (one shared model, or one per source for ``independent``),
    ``history`` [{round, val_loss, seconds}], ``best_round``, ``seconds``, ``converged`` (every network
    stopped early: ``patience`` validation losses without improvement before ``rounds``)."""

    procedure: str
    models: dict
    history: list
    best_round: int
    seconds: float
    converged: bool = False

    def parameters(self) -> int:
        return sum(sum(p.numel() for p in m.parameters()) for m in self.models.values())


def _validation_set(dbs: dict[str, SourceDatabase], model, settings: TrainSettings) -> dict:
    """Fixed, unaugmented excerpts per database: ``val_excerpts`` items spread over it, one offset each."""
    rng = np.random.default_rng(settings.seed + 1)
    out = {}
    for name, db in dbs.items():
        ex = Excerpts(db, model, settings, augment=False)
        idx = np.linspace(0, len(db) - 1, settings.val_excerpts).round().astype(int)
        out[name] = ex.batch(idx, rng)
    return out


def _val_loss(model: SharedEncoderSeparator, val: dict) -> float:
    model.eval()
    with torch.no_grad():
        total = sum(float(v) for mag, y in val.values()
                    for v in model.loss(mag, {s: t for s, t in y.items() if s in model.decoders}).values())
    model.train()
    return total


class _Best:
    """Keeps the state with the lowest validation loss."""

    def __init__(self):
        self.loss, self.round, self.state = math.inf, 0, None

    def offer(self, model, loss: float, rnd: int) -> None:
        if loss < self.loss:
            self.loss, self.round, self.state = loss, rnd, copy.deepcopy(model.state_dict())


def _optimizers(model: SharedEncoderSeparator, lr: float) -> tuple[torch.optim.Optimizer, dict]:
    enc = torch.optim.Adam(model.encoder.parameters(), lr=lr)
    return enc, {s: torch.optim.Adam(d.parameters(), lr=lr) for s, d in model.decoders.items()}


def _rounds(dbs: dict[str, SourceDatabase], batch_size: int, rng) -> Iterator[list[tuple[str, np.ndarray]]]:
    while True:
        yield from interleaved_schedule({s: len(db) for s, db in dbs.items()}, batch_size, rng)


def train_shared(model: SharedEncoderSeparator, train: dict[str, SourceDatabase], val: dict[str, SourceDatabase],
                 procedure: str, settings: TrainSettings, log: Callable[[str], None] = print,
                 freeze_encoder: bool = False, validate_start: bool = False) -> tuple[list, int]:
    """Train ``model`` in place with ``procedure`` (``simultaneous`` | ``interleaved`` | ``interleaved_acc``)
    until ``settings.patience`` validation losses bring no improvement, or ``settings.rounds``.

    Args:
        train: ``simultaneous``: ``{"all": database with every source}``; the interleaved ones: source ->
            its database. ``val``: name -> validation database (its targets that the model has count).
        freeze_encoder: the encoder keeps its weights and batch-norm statistics (a new source's decoder
            on a trained encoder, :func:`add_source`).
        validate_start: validate the model before training too (round 0: a model that starts from trained
            weights keeps them when no round improves on them).

    Returns:
        ``(history, best_round)``: history rows ``{round, val_loss, seconds}``, the last with ``"stopped":
        True`` when early stopping ended training; the model holds the best validation state on return.
    """
    if procedure not in PROCEDURES[1:]:
        raise ValueError(f"unknown shared-encoder procedure {procedure!r}; expected one of {PROCEDURES[1:]}")
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model.to(memory_format=torch.channels_last)  # oneDNN's fast layout on CPU: a training step 0.33 -> 0.26 s
    excerpts = {name: Excerpts(db, model, settings) for name, db in train.items()}
    val_set = _validation_set(val, model, settings)
    enc_opt, dec_opts = _optimizers(model, settings.lr)
    best, history, t0 = _Best(), [], time.perf_counter()
    model.train()
    if freeze_encoder:
        model.encoder.eval()
        for p in model.encoder.parameters():
            p.requires_grad_(False)
    schedule = _rounds(train, settings.batch_size, rng)  # simultaneous: one database, one task per round
    with flush_denormals():
        if validate_start:
            v = _val_loss(model, val_set)
            best.offer(model, v, 0)
            history.append({"round": 0, "val_loss": v, "seconds": time.perf_counter() - t0})
            log(f"{procedure}: round 0 (the start) val loss {v:.4f}")
        for rnd in range(1, settings.rounds + 1):
            tasks = next(schedule)
            if procedure == "interleaved_acc":
                enc_opt.zero_grad()
            for task, idx in tasks:
                mag, targets = excerpts[task].batch(idx, rng)
                losses = model.loss(mag, targets)
                loss = sum(losses.values())
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{procedure}: loss {float(loss)} at round {rnd}")
                if procedure != "interleaved_acc":
                    enc_opt.zero_grad()
                for s in targets:
                    dec_opts[s].zero_grad()
                loss.backward()
                for s in targets:
                    dec_opts[s].step()
                if procedure != "interleaved_acc" and not freeze_encoder:
                    enc_opt.step()
            if procedure == "interleaved_acc" and not freeze_encoder:
                enc_opt.step()  # Algorithm 2: one encoder step per round, gradients summed over its tasks
            if rnd % settings.val_every == 0 or rnd == settings.rounds:
                v = _val_loss(model, val_set)
                if freeze_encoder:
                    model.encoder.eval()
                best.offer(model, v, rnd)
                history.append({"round": rnd, "val_loss": v, "seconds": time.perf_counter() - t0})
                log(f"{procedure}: round {rnd}/{settings.rounds} val loss {v:.4f} (best {best.loss:.4f} at round "
                    f"{best.round}; {time.perf_counter() - t0:.0f} s)")
                if settings.patience and rnd - best.round >= settings.patience * settings.val_every:
                    history[-1]["stopped"] = True
                    log(f"{procedure}: early stop at round {rnd} (no improvement in {settings.patience} validations)")
                    break
    if freeze_encoder:
        for p in model.encoder.parameters():
            p.requires_grad_(True)
    model.load_state_dict(best.state)
    model.eval()
    return history, best.round


def _stopped(history: list) -> bool:
    return bool(history) and bool(history[-1].get("stopped"))


def compatible(config: UNetConfig, start: SharedEncoderSeparator) -> bool:
    """Whether a model of ``config`` (or, one source each, its independent networks) can start from ``start``'s
    weights: the same architecture and STFT (the training patch length may differ) and every source of
    ``config`` among ``start``'s decoders."""
    def shape(c: UNetConfig) -> dict:
        return {k: v for k, v in dataclasses.asdict(c).items() if k not in ("sources", "patch_frames")}

    return shape(config) == shape(start.config) and set(config.sources) <= set(start.config.sources)


def initial_model(config: UNetConfig, start: SharedEncoderSeparator | None = None) -> SharedEncoderSeparator:
    """A model of ``config``: new (input scale 1: :meth:`SharedEncoderSeparator.set_input_scale` follows), or a
    copy of ``start``'s encoder, input scale and the decoders of ``config.sources``.

    Raises:
        ValueError: ``start`` is not :func:`compatible` with ``config``.
    """
    model = SharedEncoderSeparator(config)
    if start is None:
        return model
    if not compatible(config, start):
        raise ValueError(f"cannot start a {config} model from a {start.config} one")
    state = {k: v for k, v in start.state_dict().items()
             if not k.startswith("decoders.") or k.split(".")[1] in config.sources}
    model.load_state_dict(state)
    return model


def train_procedure(procedure: str, config: UNetConfig, dbs: Databases, settings: TrainSettings,
                    log: Callable[[str], None] = print, start: SharedEncoderSeparator | None = None) -> Trained:
    """Train one procedure of :data:`PROCEDURES`, from scratch (input scale: the training mixtures' per-bin
    standard deviation, :func:`input_std`, on the simultaneous training database: every training song) or from
    ``start``'s weights (:func:`initial_model`; ``independent``: each source's network from ``start``'s encoder
    and that source's decoder; its input scale kept; validated before training, round 0 of the history).

    Args:
        dbs: :func:`stem_databases`: ``independent`` and the interleaved ones train on ``dbs.train`` (source ->
            database) and validate on ``dbs.val``; ``simultaneous`` on ``dbs.simultaneous`` /
            ``dbs.simultaneous_val``.

    Raises:
        ValueError: ``start`` is not :func:`compatible` with ``config``.
    """
    t0 = time.perf_counter()
    torch.manual_seed(settings.seed)
    if start is None:
        std = input_std(dbs.simultaneous.items,
                        SharedEncoderSeparator(dataclasses.replace(config, sources=config.sources[:1])))

    def model_of(sources) -> SharedEncoderSeparator:
        model = initial_model(dataclasses.replace(config, sources=tuple(sources)), start)
        if start is None:
            model.set_input_scale(std)
        return model

    fit = functools.partial(train_shared, settings=settings, validate_start=start is not None)
    if procedure == "independent":
        models, history, best, stopped = {}, [], {}, []
        for source in config.sources:
            model = model_of((source,))
            h, best[source] = fit(model, {source: dbs.train[source]}, {source: dbs.val[source]}, "interleaved",
                                  log=lambda m, s=source: log(f"independent {s}: {m}"))
            history += [{**row, "source": source} for row in h]
            models[source] = model
            stopped.append(_stopped(h))
        return Trained(procedure, models, history, max(best.values()), time.perf_counter() - t0, all(stopped))
    model = model_of(config.sources)
    if procedure == "simultaneous":
        history, best_round = fit(model, {"all": dbs.simultaneous}, {"all": dbs.simultaneous_val}, procedure, log=log)
    else:
        history, best_round = fit(model, dbs.train, dbs.val, procedure, log=log)
    return Trained(procedure, {"shared": model}, history, best_round, time.perf_counter() - t0, _stopped(history))


def add_source(model: SharedEncoderSeparator, source: str, train: SourceDatabase, val: SourceDatabase,
               settings: TrainSettings, log: Callable[[str], None] = print) -> SharedEncoderSeparator:
    """A new decoder for ``source`` on a trained, frozen encoder (paper Sec. 4.4: the shared encoder is
    transferable): the other decoders are copied unchanged. Returns the extended model."""
    config = dataclasses.replace(model.config, sources=tuple(model.config.sources) + (source,))
    extended = SharedEncoderSeparator(config)
    extended.load_state_dict(model.state_dict(), strict=False)
    train_shared(extended, {source: train}, {source: val}, "interleaved", settings, log, freeze_encoder=True)
    return extended


def separate_with(models: dict[str, SharedEncoderSeparator], audio: np.ndarray, ratio_masks: bool = False,
                  sources=None) -> dict[str, np.ndarray]:
    """Estimates ``{source: (channels, samples)}`` of a mixture ``(channels, samples)`` at the models' rate:
    one shared model, or one network per source (``independent``), through
    :func:`adt.separation.unet.reconstruct`: by default (the paper) each estimate is its own decoder's
    magnitude with the mixture's phase, so one network's output does not depend on the others';
    ``ratio_masks``: ratio masks over every decoder's magnitude (the estimates sum to the mixture).
    ``sources``: the estimates returned (default every decoder's; the others' magnitudes still count in the
    ratio masks)."""
    return separate_variants(models, audio, (ratio_masks,), sources)[ratio_masks]


def separate_variants(models: dict[str, SharedEncoderSeparator], audio: np.ndarray, ratio_masks=(False, True),
                      sources=None) -> dict[bool, dict[str, np.ndarray]]:
    """:func:`separate_with` for each value of ``ratio_masks`` from one pass of the networks:
    ``{ratio_masks: {source: (channels, samples)}}``."""
    from adt.separation.unet import reconstruct

    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    first = next(iter(models.values()))
    spec = first.stft(x[None])
    magnitudes = {}
    with flush_denormals():
        for model in models.values():
            magnitudes.update(model.estimates(spec))
        return {r: {s: v.numpy() for s, v in reconstruct(first, spec, magnitudes, x.shape[-1], r, sources).items()}
                for r in ratio_masks}


def save(trained: Trained, folder: Path) -> dict[str, str]:
    """Each model of ``trained`` as ``<folder>/<procedure>-<name>.pt`` (atomic); returns name -> path."""
    from adt.atomic import atomic_path

    out = {}
    for name, model in trained.models.items():
        path = Path(folder) / f"{trained.procedure}-{name}.pt"
        with atomic_path(path) as tmp:
            torch.save(model.payload(), tmp)
        out[name] = str(path)
    return out


def load(paths: dict[str, str]) -> dict[str, SharedEncoderSeparator]:
    """Inverse of :func:`save`. Raises ValueError naming a file that is not a separator, or a shipped file
    (``adt/pretrained/``) whose SHA-256 differs from the one kept in code (:class:`adt.pretrained.ShippedWeightsError`)."""
    from adt.pretrained import ShippedWeightsError, verify

    out = {}
    for name, path in paths.items():
        try:
            verify(path)
            payload = torch.load(path, map_location="cpu", weights_only=True)
            out[name] = SharedEncoderSeparator.from_payload(payload)
        except (FileNotFoundError, ShippedWeightsError):
            raise
        except Exception as exc:
            raise ValueError(f"{path}: not a separation model ({exc})") from exc
    return out
