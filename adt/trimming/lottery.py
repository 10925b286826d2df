"""The lottery schedule (lottery paper Sec. 2.2 and 4.2, Algorithm 1): train, remove, rewind, retrain.

A *line* is one way of shrinking the network, ``method/criterion/selection``:

* ``trim``: whole units removed (:mod:`adt.frame.units`, chosen by :mod:`adt.trimming.criteria`),
  the kept weights rewound to their values after the first epoch of the reference training (the authors'
  ``--rewind_it 1``, :data:`REWIND_EPOCH`), then trained as the reference was (the paper's method);
* ``finetune``: the same trimming, the trained weights kept and trained as long (Fig. 2's
  "fine-tuning" baseline: no rewind);
* ``mask``: the original lottery ticket, single weights masked by magnitude
  (:mod:`adt.trimming.masking`; criterion and selection do not apply), rewound likewise.

Schedule (:class:`Schedule`): each round removes ``rate`` = 20% of the units (the authors' code,
``--prune_percent 20`` over units: :func:`adt.trimming.criteria.select`; ``of="weights"``: 20% of the weights
left, this project's rule before issue 30 and Frankle & Carbin's for masks) until at least 95% of the
reference's weights are gone, or ``max_rounds``. The reference of a seed is trained once
(:func:`train_reference`) and shared by the lines of that seed.

Equal training (issue 30): the reference and every trimmed, fine-tuned and masked network train with the same
:class:`adt.frame.recipe.TrainConfig` (its epochs, its early stopping on the validation F-measure, the best
validation epoch kept; the authors' ``main.py`` likewise trains every round with the same epochs and early stop
on validation), so the lines differ only by their method.

Resumable per round: every finished round is one file ``round<NN>.pt`` (weights, the early weights
to rewind to or the masks, and the round's measurements), written atomically as tensors and plain values
and read with ``torch.load(weights_only=True)`` (:func:`load_round`); a re-run starts after the last one.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from adt.atomic import atomic_path
from adt.frame.checkpoint import FRAME_CRNN, build_model, checkpoint_state, load_model, model_from_state, save_model
from adt.frame.recipe import TrainConfig, frame_crnn_params, seed_everything, train_model
from adt.trimming import criteria, masking
from adt.frame.units import count_parameters, shrink, split_recurrent, trim_state, widths

METHODS = ("trim", "finetune", "mask")
#: The epoch whose weights trimmed networks rewind to (the authors' ``--rewind_it 1``: early in training).
REWIND_EPOCH = 1


@dataclasses.dataclass(frozen=True)
class Line:
    """One curve of Figure 2: ``method`` (:data:`METHODS`), ``criterion``, ``selection``."""

    method: str
    criterion: str = "magnitude"
    selection: str = "local"

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown trimming method {self.method!r}; choose one of {METHODS}")
        if self.criterion not in criteria.CRITERIA:
            raise ValueError(f"unknown criterion {self.criterion!r}; choose one of {criteria.CRITERIA}")
        if self.selection not in criteria.SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; choose one of {criteria.SELECTIONS}")

    @property
    def name(self) -> str:
        return f"{self.method}/{self.criterion}/{self.selection}"

    @classmethod
    def parse(cls, text: str) -> Line:
        """``"trim/magnitude/local"`` -> Line (missing parts: magnitude, local).

        Raises:
            ValueError: an unknown method, criterion or selection.
        """
        return cls(*text.strip().split("/"))


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Share removed per round (``of`` units of each layer, the authors', or of the weights left:
    :data:`adt.trimming.criteria.RATE_OF`), share of the reference's weights removed when the lottery stops,
    an optional cap on the rounds, and how a global selection normalises a layer's scores
    (:data:`adt.trimming.criteria.NORMALISATIONS`). Masks always remove ``rate`` of the weights left."""

    rate: float = 0.2
    removed: float = 0.95
    max_rounds: int | None = None
    of: str = "units"
    normalisation: str = "max"

    @property
    def rounds(self) -> int:
        """Rounds until ``removed`` of the weights are gone: with ``of="units"`` a layer between two trimmed ones
        keeps ``(1 - rate)^2`` of its weights per round (its units and its inputs), so about half as many."""
        per_round = (1 - self.rate) ** (2 if self.of == "units" else 1)
        n = math.ceil(math.log(1 - self.removed) / math.log(per_round) - 1e-9)
        return n if self.max_rounds is None else min(n, self.max_rounds)


@dataclasses.dataclass
class Task:
    """What a lottery trains and measures on.

    Attributes:
        train_dirs, val_items, stats: as :func:`adt.frame.recipe.train_model` takes them.
        test_sets: dataset -> test items (features file, reference onsets).
        config: the training of the reference and of every round (:data:`REWIND_EPOCH`: where rewinding goes).
        architecture, params: the network (e.g. the transcriber sweep's champion).
        examples: feature matrices (T, F) for the activation criterion (validation tracks).
        measure: model, sets, val items -> measurements (:func:`adt.trimming.measure.measure`).
        init_path: a transcriber checkpoint of that architecture the reference starts from (the demo: the
            sweep's model fine-tuned from the shipped one, ``Profile.start_from_shipped``; else the shipped one
            when it fits); None: fresh weights. ``init_from``: where it comes from, in words.
    """

    train_dirs: list
    val_items: list
    stats: object
    test_sets: dict
    config: TrainConfig
    architecture: str
    params: dict
    examples: list
    measure: Callable[..., dict]
    init_path: str | None = None
    init_from: str = "fresh weights"

    @property
    def rewind_epoch(self) -> int:
        return min(REWIND_EPOCH, self.config.epochs)

    def n_features(self) -> int:
        return int(self.stats.mean.shape[0])


def _train(task: Task, seed: int, init: torch.nn.Module, epochs: int, after_step=None, keep_state_at=None):
    config = dataclasses.replace(task.config, seed=seed, epochs=epochs)
    model, history = train_model(task.train_dirs, task.val_items, config, task.architecture, task.params,
                                 stats=task.stats, init=init, after_step=after_step, keep_state_at=keep_state_at)
    return model, history


def _fresh(task: Task, seed: int) -> torch.nn.Module:
    """The architecture as ``train_model`` would build it for ``seed`` (or the weights of
    :attr:`Task.init_path`), recurrent layers split."""
    seed_everything(seed)
    if task.init_path is not None:
        return split_recurrent(load_model(task.init_path).train())
    params = frame_crnn_params(task.config, task.params) if task.architecture == FRAME_CRNN else dict(task.params)
    model = build_model(task.architecture, params, task.n_features(), len(task.stats.onsets))
    model.set_standardization(torch.from_numpy(task.stats.mean), torch.from_numpy(task.stats.std))
    return split_recurrent(model)


def _plain_tree(value):
    """``value`` with NumPy scalars and arrays as Python values (dicts, lists, tuples walked; tensors kept):
    what ``torch.load(weights_only=True)`` reads back."""
    if isinstance(value, dict):
        return {k: _plain_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain_tree(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _pack(model: torch.nn.Module) -> dict:
    """A round's network as tensors and plain values: :func:`adt.frame.checkpoint.checkpoint_state` with its units
    per layer (``trimmed``; also for an untrimmed network, whose recurrent layers are split) and whether it
    was a trimmed network (``is_trimmed``)."""
    state = checkpoint_state(model)
    state["is_trimmed"] = bool(getattr(model, "trimmed", None))
    state["trimmed"] = widths(model)
    return _plain_tree(state)


def _unpack(state: dict) -> torch.nn.Module:
    """The network of :func:`_pack` (rebuilt from its config, recurrent layers split, widths applied)."""
    model = model_from_state(state, "trimming round")
    if not state.get("is_trimmed"):
        del model.trimmed
    return model


def _save(path: Path, payload: dict) -> None:
    """Write a round (``model``, ``rewind`` state dict, ``masks``, ``row``) atomically as tensors and plain
    values only (the model :func:`_pack` ed), so :func:`load_round` reads it with ``weights_only=True``."""
    plain = {k: _pack(v) if isinstance(v, torch.nn.Module) else _plain_tree(v) for k, v in payload.items()}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(plain, tmp)


def load_round(path: str | Path) -> dict | None:
    """A round written by :func:`_save` (``model`` rebuilt, eval mode, CPU; ``rewind``, ``masks``, ``row``),
    read with ``torch.load(weights_only=True)``; None when the file is missing, torn, or not ours (e.g. a
    pickled round of an older release): the round is then computed again."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        saved["model"] = _unpack(saved["model"])
    except (OSError, RuntimeError, EOFError, ValueError, KeyError, TypeError, pickle.UnpicklingError):
        return None  # a foreign, torn or older (pickled) file: recompute the round
    return saved



def train_reference(task: Task, seed: int, folder: Path, log: Callable[[str], None] = print) -> tuple:
    """The reference network of ``seed`` (cached in ``folder``): trained with ``task.config``, the weights
    after epoch :attr:`Task.rewind_epoch` kept to rewind to.

    Returns:
        (model, early state dict, measurements).
    """
    path = Path(folder) / "reference.pt"
    saved = load_round(path)
    if saved is None:
        log(f"training the reference (seed {seed}, {task.config.epochs} epochs, rewind point {task.rewind_epoch})")
        model, _ = _train(task, seed, _fresh(task, seed), task.config.epochs, keep_state_at=task.rewind_epoch)
        rewind = model.__dict__.pop("rewind_state")
        row = task.measure(model, None)
        saved = {"model": model, "rewind": rewind, "row": row}
        _save(path, saved)
    return saved["model"], saved["rewind"], saved["row"]


def run_line(task: Task, line: Line, seed: int, schedule: Schedule, folder: Path, reference: tuple,
             log: Callable[[str], None] = print) -> list[dict]:
    """Run (or resume) one line of one seed from ``reference`` (:func:`train_reference`).

    Returns:
        one record per round, round 0 the reference: ``round``, ``removed`` (share of the reference's
        parameters gone), ``widths`` (units per layer) and the task's measurements.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model, rewind, row = reference
    total = count_parameters(model)
    records = [{"round": 0, "removed": 0.0, "widths": widths(model), **row}]
    masks = masking.full(model) if line.method == "mask" else None
    for r in range(1, schedule.rounds + 1):
        path = folder / f"round{r:02d}.pt"
        saved = load_round(path)
        if saved is None:
            start = time.perf_counter()
            if line.method == "mask":
                masks = masking.prune(model, masks, schedule.rate)
                init = copy.deepcopy(model)
                init.load_state_dict(rewind)
                masking.apply(init, masks)
                trained, _ = _train(task, seed + r, init, task.config.epochs,
                                    after_step=lambda m, masks=masks: masking.apply(m, masks))
                params = total - round(masking.masked_share(trained, masks) * total)
                saved = {"model": trained, "rewind": rewind, "masks": masks}
            else:
                unit_scores = criteria.scores(model, line.criterion, task.examples)
                keep = criteria.select(model, unit_scores, schedule.rate, line.selection,
                                       normalisation=schedule.normalisation, rate_of=schedule.of)
                next_rewind = trim_state(model, rewind, keep)
                init = shrink(model, keep, state=rewind if line.method == "trim" else None)
                init.trimmed = widths(init)
                trained, _ = _train(task, seed + r, init, task.config.epochs)
                params = count_parameters(trained)
                saved = {"model": trained, "rewind": next_rewind}
            saved["row"] = {"round": r, "removed": 1 - params / total, "widths": widths(trained),
                            **task.measure(trained, params if line.method == "mask" else None)}
            _save(path, saved)
            log(f"{line.name} seed {seed}: round {r}/{schedule.rounds}, {100 * saved['row']['removed']:.1f}% removed, "
                f"test error {saved['row']['test_error']:.3f} ({time.perf_counter() - start:.0f} s)")
        model, rewind, masks = saved["model"], saved["rewind"], saved.get("masks", masks)
        records.append(saved["row"])
    return records


def export(model: torch.nn.Module, path: str | Path) -> Path:
    """Save a trimmed network as a transcriber checkpoint (:func:`adt.frame.checkpoint.save_model`, with its
    units per layer), loadable by ``adt transcribe --model``."""
    model.trimmed = widths(model)
    return save_model(model, path)

