"""The shipped ``lite`` transcriber: the shipped transcriber's recipe trimmed with rewinding (lottery paper
Sec. 2.2 and Algorithm 1; issue 30, item 3).

The reference is a network of the real-songs recipe (:mod:`adt.frame.real_songs`, :data:`RECIPE
<adt.frame.real_songs.RECIPE>`): the shipped ``frame_crnn_standard`` for the shipped ``lite``, and one model per
cross-validation fold for its figures. Every round (:func:`next_round`):

1. scores the units of the network trained in the round before with :data:`LINE`'s criterion (magnitude,
   Eq. 3: the sum of ``|w|`` over a unit's incoming weights, :func:`adt.trimming.criteria.magnitude`) and
   keeps 80% of the units of every layer (local selection, the authors' ``--prune_percent 20``; at least
   :data:`adt.trimming.criteria.MIN_UNITS` a layer);
2. rewinds the kept units to where the reference's training started: the renders-only transcriber
   (:data:`adt.frame.real_songs.BASE_MODEL`). The reference is a fine-tuned network, and that is its
   iteration 0 (rewinding a fine-tuned network to its pre-trained weights, as Chen et al. 2020 do for BERT;
   the authors rewind to iteration 1 of a training from scratch). The shipped transcriber's own epoch-1
   weights were not kept, and the folds rewind as the shipped ``lite`` does, so that their figure is its;
3. trains it again with the same recipe: same epochs, steps, learning rate, augmentation, and validation
   (the best validation epoch kept, per-class floors tuned on the validation songs and renders).

The round that ships (:func:`choose_round`): in each fold, the smallest network whose validation error
(1 - micro F on that fold's validation renders and songs) is at most :data:`TOLERANCE` times its reference's;
the shipped ``lite`` takes the median of the folds' rounds and the mean of their floors at those rounds (no
choice made on a song a fold is scored on).
"""

from __future__ import annotations

import copy
import statistics

import torch

from adt.trimming import criteria
from adt.trimming.lottery import Line
from adt.frame.shipped import LITE_MODEL
from adt.frame.units import shrink, split_recurrent, trim_state, widths

#: The line the lite model follows: the paper's trimming with rewinding, magnitude criterion, local selection.
LINE = Line("trim", "magnitude", "local")
#: Units removed per layer and round (the authors' ``--prune_percent 20``).
RATE = 0.2
#: Rounds run per fold (each a full training of the recipe).
ROUNDS = 4
#: A round qualifies when its validation error is at most this times the reference's (the paper's "optimal";
#: ``adt.trimming.study.OPTIMAL_FACTOR``); the paper's "smallest" allows 1.5x (``SMALLEST_FACTOR``).
TOLERANCE = 1.1
SMALLEST_TOLERANCE = 1.5
#: Name of the shipped lite transcriber (``adt/pretrained/<NAME>.pt``; ``adt transcribe --model lite``, which
#: reads it from :data:`adt.frame.shipped.LITE_MODEL`: this module imports training code).
NAME = LITE_MODEL


def rewind_point(base: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict the first round rewinds to: ``base``'s weights (the reference's starting point) with its
    recurrent layers split (:func:`adt.frame.units.split_recurrent`), the layout trimmed networks have."""
    return {k: v.clone() for k, v in split_recurrent(copy.deepcopy(base)).state_dict().items()}


def next_round(trained: torch.nn.Module, rewind: dict[str, torch.Tensor], line: Line = LINE, rate: float = RATE,
               examples=()) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """The starting network of the next round and the state its following round rewinds to.

    Args:
        trained: the network trained in this round (the reference for round 1); split in place if needed.
        rewind: a state dict of ``trained``'s layout (:func:`rewind_point`, or what this function returned).
        examples: feature matrices (T, F) for an activation criterion (unused by magnitude).

    Returns:
        (``trained``'s kept units with ``rewind``'s weights, in train mode, ``trimmed`` set to its widths;
        ``rewind`` restricted to the kept units).

    Raises:
        ValueError: ``rewind`` does not fit ``trained``'s layout.
    """
    trained = split_recurrent(trained)
    own = trained.state_dict()
    wrong = sorted(k for k in own if k not in rewind or rewind[k].shape != own[k].shape)
    if wrong:
        raise ValueError(f"rewind state does not fit the trained network: {', '.join(wrong[:4])}")
    keep = criteria.select(trained, criteria.scores(trained, line.criterion, examples), rate, line.selection)
    start = shrink(trained, keep, state=rewind).train()
    start.trimmed = widths(start)
    return start, trim_state(trained, rewind, keep)


def choose_round(val_errors: list[float], tolerance: float = TOLERANCE) -> int:
    """The last round (0: the reference) whose validation error is at most ``tolerance`` x round 0's.

    Raises:
        ValueError: no rounds.
    """
    if not val_errors:
        raise ValueError("no rounds to choose from")
    ok = [r for r, e in enumerate(val_errors) if e <= tolerance * val_errors[0]]
    return max(ok)


def picks(val_errors: list[float]) -> dict[str, int]:
    """The paper's three networks of Table 1 among one fold's rounds (``val_errors[0]``: the reference):
    ``optimal`` (:func:`choose_round` at :data:`TOLERANCE`), ``best`` (the trimmed round of lowest validation
    error; the reference when there is none) and ``smallest`` (at :data:`SMALLEST_TOLERANCE`)."""
    best = min(range(1, len(val_errors)), key=lambda r: (val_errors[r], r), default=0)
    return {"optimal": choose_round(val_errors), "best": best,
            "smallest": choose_round(val_errors, SMALLEST_TOLERANCE)}


def shipped_round(fold_rounds: list[int]) -> int:
    """The round the shipped ``lite`` takes: the median of the folds' chosen rounds (the lower one of two)."""
    return int(statistics.median_low(fold_rounds))
