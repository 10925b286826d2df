"""The four training procedures of the interleaved multitask paper (Sec. 3, 4.3).

* ``independent``: one network (encoder + one decoder) per source, each on its own database.
* ``simultaneous``: the shared-encoder model, every source's loss summed on each mini-batch of a
  database where every item has all stems.
* ``interleaved`` (Algorithm 1): one mini-batch per source database in a non-repeating random task
  order per round; each mini-batch updates the encoder and that source's decoder. Per epoch every
  database contributes a random subset as long as the smallest one (subsets vary across epochs).
* ``interleaved_acc`` (Algorithm 2): as ``interleaved``, but the encoder's gradients are summed
  over the round and it takes one step per round; decoders step after their own mini-batch.

The databases, excerpts and augmentation they train on are in :mod:`adt.separation.stem_data`.

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
import torch

from adt.atomic import atomic_path
from adt.cpu import flush_denormals
from adt.pretrained import ShippedWeightsError, verify
from adt.separation.stem_data import Databases, Excerpts, ProcedureConfig, SourceDatabase, input_std
from adt.separation.unet import SharedEncoderSeparator, UNetConfig, reconstruct

PROCEDURES = ("independent", "simultaneous", "interleaved", "interleaved_acc")


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


def _validation_set(dbs: dict[str, SourceDatabase], model, settings: ProcedureConfig) -> dict:
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
                 procedure: str, settings: ProcedureConfig, log: Callable[[str], None] = print,
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


def train_procedure(procedure: str, config: UNetConfig, dbs: Databases, settings: ProcedureConfig,
                    log: Callable[[str], None] = print, start: SharedEncoderSeparator | None = None) -> Trained:
    """Train one procedure of :data:`PROCEDURES`, from scratch (input scale: the training mixtures' per-bin
    standard deviation, :func:`adt.separation.stem_data.input_std`, on the simultaneous training database:
    every training song) or from ``start``'s weights (:func:`initial_model`; ``independent``: each source's
    network from ``start``'s encoder and that source's decoder; its input scale kept; validated before
    training, round 0 of the history).

    Args:
        dbs: :func:`adt.separation.stem_data.stem_databases`: ``independent`` and the interleaved ones train
            on ``dbs.train`` (source -> database) and validate on ``dbs.val``; ``simultaneous`` on
            ``dbs.simultaneous`` / ``dbs.simultaneous_val``.

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
               settings: ProcedureConfig, log: Callable[[str], None] = print) -> SharedEncoderSeparator:
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
