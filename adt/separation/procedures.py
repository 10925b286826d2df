"""The four training procedures of the interleaved multitask paper (Sec. 3, 4.3) and their databases.

* ``independent``: one network (encoder + one decoder) per source, each on its own database.
* ``simultaneous``: the shared-encoder model, every source's loss summed on each mini-batch of a
  database where every item has all stems.
* ``interleaved`` (Algorithm 1): one mini-batch per source database in a non-repeating random task
  order per round; each mini-batch updates the encoder and that source's decoder. Per epoch every
  database contributes a random subset as long as the smallest one (subsets vary across epochs).
* ``interleaved_acc`` (Algorithm 2): as ``interleaved``, but the encoder's gradients are summed
  over the round and it takes one step per round; decoders step after their own mini-batch.

Databases (:class:`SourceDatabase`) hold ``(mixture wav, target wavs)`` items; a source database's
items carry only that source's target, so no item needs every stem. Excerpts are read lazily
(``soundfile`` partial reads) at random offsets, with a random gain and channel swap applied to
mixture and targets alike (augmentations of the paper's Sec. 4.2 kept cheap: scaling and panning).

Budgets are in *rounds*: a round is one mini-batch of every source (``independent``: one of each
network's; ``simultaneous``: one mini-batch with all targets), so the procedures see the same
number of (mixture, target) examples per source. Optimiser: Adam (paper: lr 2e-4, batch 32,
early stopping after 30 epochs; sized down for CPU, see :class:`TrainSettings`); the state with
the lowest validation loss is kept (paper Sec. 4.2).
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
    """One training example: a mixture and the targets known for it (source -> wav path)."""

    mix: str
    targets: dict


@dataclasses.dataclass
class SourceDatabase:
    """Items for the sources in ``sources`` (one source: an independent database; all: simultaneous)."""

    name: str
    sources: tuple
    items: list

    def __len__(self) -> int:
        return len(self.items)


def stem_databases(tracks: list[dict], sources=("drums", "bass", "other"), seed: int = 0
                   ) -> tuple[dict[str, SourceDatabase], SourceDatabase]:
    """Independent per-source databases and the simultaneous one from rendered tracks.

    Args:
        tracks: dicts with ``mix`` and one path per source (rendered stems: drums + bass + other = mix).

    Returns:
        ``(independent, simultaneous)``: source -> a database of (mix, that stem) pairs in its own
        shuffled order (paper Sec. 4.2: a different random order per source), and one database with
        every stem per item. Same audio in both, as in the paper's comparison.
    """
    rng = np.random.default_rng(seed)
    independent = {}
    for s in sources:
        order = rng.permutation(len(tracks))
        independent[s] = SourceDatabase(s, (s,), [Item(tracks[i]["mix"], {s: tracks[i][s]}) for i in order])
    simultaneous = SourceDatabase("all", tuple(sources), [Item(t["mix"], {s: t[s] for s in sources}) for t in tracks])
    return independent, simultaneous


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
    """Budget and optimiser. ``rounds``: see the module docstring; ``lr`` 1e-3 (paper 2e-4: ours trains
    for minutes, not days); ``val_every`` rounds between validation losses; ``val_excerpts`` per source."""

    rounds: int = 200
    batch_size: int = 8
    lr: float = 1e-3
    val_every: int = 25
    val_excerpts: int = 16
    gain: tuple = (0.25, 1.25)
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


def check_item(item: Item, sample_rate: int, min_samples: int) -> int:
    """Frames shared by an item's files (the shortest). Each file is checked once per content
    (:func:`adt.cache.file_key`): every procedure of a study reuses the checks.

    Raises:
        StemError: a file is missing or unreadable, at another sample rate, shorter than
            ``min_samples``, or a target is silent throughout.
    """
    targets = {path: source for source, path in item.targets.items()}
    return min(_checked_frames(str(path), _identity(path), sample_rate, min_samples, targets.get(path))
               for path in [item.mix, *targets])


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
    """Random excerpts of a database's items as magnitude spectrograms (``model.magnitude``)."""

    def __init__(self, db: SourceDatabase, model: SharedEncoderSeparator, settings: TrainSettings):
        self.db, self.model, self.settings = db, model, settings
        need = model.config.patch_samples
        self.lengths = [check_item(it, model.config.sample_rate, need) for it in db.items]

    def batch(self, indices, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(mixture magnitudes (B, 2, bins, frames), {source: target magnitudes})``."""
        n = self.model.config.patch_samples
        mixes, targets = [], {s: [] for s in self.db.sources}
        for i in indices:
            item = self.db.items[int(i)]
            start = int(rng.integers(0, max(1, self.lengths[int(i)] - n + 1)))
            gain = np.float32(rng.uniform(*self.settings.gain))
            flip = rng.random() < 0.5
            for audio, out in [(_read_excerpt(item.mix, start, n), mixes)] + [
                    (_read_excerpt(item.targets[s], start, n), targets[s]) for s in self.db.sources]:
                out.append((audio[::-1] if flip else audio) * gain)
        with torch.no_grad():
            mag = self.model.magnitude(torch.from_numpy(np.stack(mixes)))
            y = {s: self.model.magnitude(torch.from_numpy(np.stack(v))) for s, v in targets.items()}
        return mag, y


def input_std(items: list[Item], model: SharedEncoderSeparator, max_items: int = 32) -> torch.Tensor:
    """Per-bin standard deviation of the mixtures' magnitudes (paper Sec. 2.2), mono-averaged over
    the first ``max_items`` items' whole tracks."""
    total = total_sq = None
    count = 0
    for item in items[:max_items]:
        audio, _ = sf.read(item.mix, dtype="float32", always_2d=True)
        mag = model.magnitude(torch.from_numpy(np.ascontiguousarray(audio.T))[None]).mean(1)[0].double()
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
    ``history`` [{round, val_loss, seconds}], ``best_round``, ``seconds``."""

    procedure: str
    models: dict
    history: list
    best_round: int
    seconds: float

    def parameters(self) -> int:
        return sum(sum(p.numel() for p in m.parameters()) for m in self.models.values())


def _validation_set(dbs: dict[str, SourceDatabase], model, settings: TrainSettings) -> dict:
    rng = np.random.default_rng(settings.seed + 1)
    out = {}
    for source, db in dbs.items():
        ex = Excerpts(db, model, settings)
        idx = rng.integers(0, len(db), size=settings.val_excerpts)
        out[source] = ex.batch(idx, rng)
    return out


def _val_loss(model: SharedEncoderSeparator, val: dict) -> float:
    model.eval()
    with torch.no_grad():
        total = sum(float(model.loss(mag, {s: y[s]})[s]) for s, (mag, y) in val.items() if s in model.decoders)
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
                 freeze_encoder: bool = False) -> tuple[list, int]:
    """Train ``model`` in place with ``procedure`` (``simultaneous`` | ``interleaved`` | ``interleaved_acc``).

    Args:
        train: ``simultaneous``: ``{"all": database with every source}``; the interleaved ones: source ->
            its database. ``val``: source -> validation database (one target each).
        freeze_encoder: the encoder keeps its weights and batch-norm statistics (a new source's decoder
            on a trained encoder, :func:`add_source`).

    Returns:
        ``(history, best_round)``; the model holds the best validation state on return.
    """
    if procedure not in PROCEDURES[1:]:
        raise ValueError(f"unknown shared-encoder procedure {procedure!r}; expected one of {PROCEDURES[1:]}")
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
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
                log(f"{procedure}: round {rnd}/{settings.rounds} val loss {v:.4f} ({time.perf_counter() - t0:.0f} s)")
    if freeze_encoder:
        for p in model.encoder.parameters():
            p.requires_grad_(True)
    model.load_state_dict(best.state)
    model.eval()
    return history, best.round


def train_procedure(procedure: str, config: UNetConfig, train: dict[str, SourceDatabase], simultaneous: SourceDatabase,
                    val: dict[str, SourceDatabase], settings: TrainSettings, log: Callable[[str], None] = print
                    ) -> Trained:
    """Train one procedure of :data:`PROCEDURES` from scratch (input scale from the training mixtures).

    Args:
        train: source -> independent database; ``simultaneous``: the database with every stem;
            ``val``: source -> validation database.
    """
    t0 = time.perf_counter()
    torch.manual_seed(settings.seed)
    std = input_std(simultaneous.items, SharedEncoderSeparator(dataclasses.replace(config, sources=config.sources[:1])))
    if procedure == "independent":
        models, history, best = {}, [], {}
        for source in config.sources:
            model = SharedEncoderSeparator(dataclasses.replace(config, sources=(source,)))
            model.set_input_scale(std)
            h, best[source] = train_shared(model, {source: train[source]}, {source: val[source]}, "interleaved",
                                           settings, log=lambda m, s=source: log(f"independent {s}: {m}"))
            history += [{**row, "source": source} for row in h]
            models[source] = model
        return Trained(procedure, models, history, max(best.values()), time.perf_counter() - t0)
    model = SharedEncoderSeparator(config)
    model.set_input_scale(std)
    data = {"all": simultaneous} if procedure == "simultaneous" else train
    history, best_round = train_shared(model, data, val, procedure, settings, log)
    return Trained(procedure, {"shared": model}, history, best_round, time.perf_counter() - t0)


def add_source(model: SharedEncoderSeparator, source: str, train: SourceDatabase, val: SourceDatabase,
               settings: TrainSettings, log: Callable[[str], None] = print) -> SharedEncoderSeparator:
    """A new decoder for ``source`` on a trained, frozen encoder (paper Sec. 4.4: the shared encoder is
    transferable): the other decoders are copied unchanged. Returns the extended model."""
    config = dataclasses.replace(model.config, sources=tuple(model.config.sources) + (source,))
    extended = SharedEncoderSeparator(config)
    extended.load_state_dict(model.state_dict(), strict=False)
    train_shared(extended, {source: train}, {source: val}, "interleaved", settings, log, freeze_encoder=True)
    return extended


def separate_with(models: dict[str, SharedEncoderSeparator], audio: np.ndarray) -> dict[str, np.ndarray]:
    """Estimates ``{source: (channels, samples)}`` of a mixture ``(channels, samples)`` at the models' rate:
    one shared model, or one network per source (``independent``); either way ratio masks over every
    decoder's masked magnitude (:func:`adt.separation.unet.apply_masks`), so the estimates sum to the mixture."""
    from adt.separation.unet import apply_masks

    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    first = next(iter(models.values()))
    spec = first.stft(x[None])
    masks = {}
    with flush_denormals():
        for model in models.values():
            masks.update(model.masks(spec))
        return {s: v.numpy() for s, v in apply_masks(first, spec, masks, x.shape[-1]).items()}


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
    """Inverse of :func:`save`. Raises ValueError naming a file that is not a separator."""
    out = {}
    for name, path in paths.items():
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            out[name] = SharedEncoderSeparator.from_payload(payload)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise ValueError(f"{path}: not a separation model ({exc})") from exc
    return out
