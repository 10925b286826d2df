"""Which units to keep: the trimming criteria (lottery paper Sec. 3.1, Eqs. 3-5) and local or global
selection of the units kept in a round, as the authors' released code computes them
(``acids-ircam/lottery_mir``, ``code/pruning.py``, class ``PruningTrimming``; issue 30), with the variants
this project used before kept as named options.

Every criterion gives one score per unit of each :class:`adt.frame.units.Link` (higher: more useful):

* ``"magnitude"`` (Eq. 3): the sum of ``|w|`` over the unit's incoming weights, no bias
  (``get_layer_values``: ``matrix = abs(layer.weight)``, ``values = sum(matrix, dims 1..)``); a recurrent
  unit sums its rows of every gate, input and recurrent, both directions (the authors rank ``weight_ih`` and
  ``weight_hh`` apart, ``ranking_recurrent``; one unit here has one index in both, so their sums add up);
* ``"activation"`` (Eq. 4): the sum of ``|output|`` of the layer itself (before its batch norm and
  non-linearity: their forward hook sits on the conv / linear / recurrent module, ``append_hook``) over
  every example and position (``values = sum(abs(outputs), dim=0)``, then over the remaining dimensions);
* ``"batchnorm"`` (Eq. 5): ``|gamma|`` of the batch norm over the unit (``abs(norm.weight)``); layers without
  a batch norm (recurrent layers) fall back to the magnitude.

This project's earlier variants, kept as options: ``"magnitude_l2"`` (the L2 norm of the incoming weights
plus the bias) and ``"activation_mean"`` (the mean ``|activation|`` after the norm and non-linearity, over
time and frequency, summed over examples).

Selection (:func:`select`), after each layer's scores are divided by their maximum (the authors' default
``--prune_scale normalize``: ``scale = max(abs(values))``; :data:`NORMALISATIONS` has their ``dimension``,
this project's layer ``mean`` and ``none``): ``"local"`` removes ``rate`` of the units of every layer, the
lowest first (``idx[:int((100 - percent) / 100 * len(idx))]``); ``"global"`` removes the units under the
``rate`` percentile of all layers' normalised scores (``global_cutoff``, ``torch_percentile``: nearest rank).
``"global_mean"`` is this project's earlier global ranking (scores over their layer's mean). The rate counts
units per round (``--prune_percent 20``; :data:`RATE_OF` ``"units"``); this project's earlier rule, units
removed until the parameters fall to ``1 - rate`` (``"weights"``), is an option. Every layer keeps at least
:data:`MIN_UNITS` units (the authors keep a whole layer whose selection falls under 3 units).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from adt.frame.units import Link, count_parameters, links, resize

CRITERIA = ("magnitude", "activation", "batchnorm", "magnitude_l2", "activation_mean")
SELECTIONS = ("local", "global", "global_mean")
#: How a layer's scores are scaled before a global ranking: by their maximum (the authors' default), by the
#: number of units (their ``dimension``), by their mean (this project's earlier rule), or not at all.
NORMALISATIONS = ("max", "dimension", "mean", "none")
#: What the rate of a round counts: units of each layer (the authors') or the network's parameters (ours before).
RATE_OF = ("units", "weights")
#: The fewest units a trimmed layer keeps (or all of them, when it has fewer).
MIN_UNITS = 3


def _producer_rows(model: nn.Module, link: Link) -> list[torch.Tensor]:
    """The incoming weights (and biases) of each unit, one (units, n) matrix per parameter."""
    p = model.get_submodule(link.name)
    if link.kind == "rnn":
        gates = 4 if isinstance(p, nn.LSTM) else 3
        return [w.detach().reshape(gates, link.units, -1).transpose(0, 1).reshape(link.units, -1)
                for _, w in p.named_parameters()]
    rows = [p.weight.detach().reshape(link.units, -1)]
    return rows + ([p.bias.detach().reshape(link.units, 1)] if p.bias is not None else [])


def magnitude(model: nn.Module, link: Link) -> torch.Tensor:
    """Eq. 3 as the authors' code computes it: per unit, the sum of ``|w|`` over its incoming weights, no bias
    (a recurrent layer's biases are left out too), shape (units,)."""
    p = model.get_submodule(link.name)
    names = [n for n, _ in p.named_parameters()] if link.kind == "rnn" else ["weight", "bias"]
    rows = _producer_rows(model, link)
    return sum(r.abs().sum(1) for n, r in zip(names, rows) if not n.startswith("bias"))


def magnitude_l2(model: nn.Module, link: Link) -> torch.Tensor:
    """Eq. 3 as this project computed it before issue 30: the L2 norm of all weights producing the unit, bias
    included, shape (units,)."""
    return sum(r.square().sum(1) for r in _producer_rows(model, link)).sqrt()


def batchnorm(model: nn.Module, link: Link) -> torch.Tensor:
    """Eq. 5: ``|gamma|`` of the unit's batch norm, shape (units,); :func:`magnitude` without one."""
    if link.norm is None:
        return magnitude(model, link)
    return model.get_submodule(link.norm).weight.detach().abs()


@torch.no_grad()
def activation(model: nn.Module, found: list[Link], examples: Iterable[torch.Tensor],
               after_norm: bool = False) -> dict[str, torch.Tensor]:
    """Eq. 4 per unit over ``examples`` (feature matrices (T, F), e.g. the validation tracks; eval mode).

    ``after_norm=False`` (the authors'): the sum of ``|output|`` of the layer itself over every example and
    position. ``True`` (``"activation_mean"``): the mean ``|activation|`` after the layer's norm and
    non-linearity (what the next layer reads) over time (and frequency), summed over examples."""
    sums = {link.name: torch.zeros(link.units) for link in found}

    def hook(link: Link):
        def record(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            a = out.detach().abs()
            reduce = (lambda t, dims: t.mean(dim=dims)) if after_norm else (lambda t, dims: t.sum(dim=dims))
            if link.kind == "conv":  # (B, C, T, F)
                per_unit = reduce(a, (2, 3)).sum(0)
            else:  # (B, T, D); a bidirectional layer's unit is its index in both directions
                per_unit = reduce(a, 1).sum(0)
                if per_unit.numel() == 2 * link.units:
                    per_unit = per_unit[:link.units] + per_unit[link.units:]
            sums[link.name] += per_unit
        return record

    handles = [model.get_submodule(link.tail if after_norm else link.name).register_forward_hook(hook(link))
               for link in found]
    try:
        model.eval()
        for x in examples:
            model(torch.tensor(np.asarray(x), dtype=torch.float32).unsqueeze(0))
    finally:
        for h in handles:
            h.remove()
    return sums


def scores(model: nn.Module, criterion: str, examples: Iterable[torch.Tensor] = ()) -> dict[str, torch.Tensor]:
    """Score of every unit of every trimmable layer under ``criterion`` (module docstring).

    Raises:
        ValueError: an unknown criterion, or an activation criterion without examples.
    """
    found = links(model)
    per_layer = {"magnitude": magnitude, "magnitude_l2": magnitude_l2, "batchnorm": batchnorm}
    if criterion in per_layer:
        return {link.name: per_layer[criterion](model, link) for link in found}
    if criterion in ("activation", "activation_mean"):
        examples = list(examples)
        if not examples:
            raise ValueError("the activation criterion needs validation examples")
        return activation(model, found, examples, after_norm=criterion == "activation_mean")
    raise ValueError(f"unknown criterion {criterion!r}; choose one of {CRITERIA}")


def normalise(score: torch.Tensor, normalisation: str = "max") -> torch.Tensor:
    """A layer's scores scaled for a global ranking (:data:`NORMALISATIONS`; the authors' ``prune_scale``).

    Raises:
        ValueError: an unknown normalisation.
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {normalisation!r}; choose one of {NORMALISATIONS}")
    scale = {"max": lambda: score.abs().max(), "dimension": lambda: torch.tensor(float(score.numel())),
             "mean": lambda: score.mean(), "none": lambda: torch.tensor(1.0)}[normalisation]()
    return score / max(float(scale), 1e-12)


def _top(score: torch.Tensor, n: int) -> torch.Tensor:
    """Indices (sorted) of the ``n`` highest scores; ties go to the lower index."""
    order = sorted(range(len(score)), key=lambda i: (-float(score[i]), i))
    return torch.tensor(sorted(order[:max(1, n)]), dtype=torch.long)


def parameter_counter(model: nn.Module) -> Callable[[dict[str, int]], int]:
    """``counts -> parameters`` of ``model`` rebuilt with those units (on the meta device, no weights)."""
    skeleton = copy.deepcopy(model).to("meta")
    return lambda counts: count_parameters(resize(copy.deepcopy(skeleton), counts))


def select(model: nn.Module, unit_scores: dict[str, torch.Tensor], rate: float = 0.2, selection: str = "global",
           normalisation: str = "max", rate_of: str = "units", min_units: int = MIN_UNITS) -> dict[str, torch.Tensor]:
    """Units to keep after one round that removes ``rate`` (module docstring).

    Args:
        rate: share removed per round: of each layer's units (``"local"``), of all units ranked on their
            normalised scores (``"global"``), or, with ``rate_of="weights"``, of the network's parameters (the
            fewest units removed that bring them to ``1 - rate``: this project's rule before issue 30).
        selection: :data:`SELECTIONS`; ``"global_mean"`` is ``"global"`` with ``normalisation="mean"``.
        normalisation: :data:`NORMALISATIONS` (global selections only).
        min_units: the fewest units a layer keeps (all of them when it has fewer).

    Returns:
        link name -> sorted indices of the kept units.

    Raises:
        ValueError: an unknown selection, normalisation or rate unit, or a rate outside [0, 1).
    """
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; choose one of {SELECTIONS}")
    if rate_of not in RATE_OF:
        raise ValueError(f"unknown rate unit {rate_of!r}; choose one of {RATE_OF}")
    if not 0 <= rate < 1:
        raise ValueError(f"rate must be in [0, 1), got {rate}")
    if selection == "global_mean":
        selection, normalisation = "global", "mean"
    sizes = {name: len(s) for name, s in unit_scores.items()}
    floor = {name: min(min_units, n) for name, n in sizes.items()}
    ranked = sorted((float(v), name, i) for name, s in unit_scores.items()
                    for i, v in enumerate(normalise(s, normalisation).tolist()))  # global: lowest first
    if rate_of == "units":
        if selection == "local":  # ``idx[:int((100 - percent) / 100 * len(idx))]``
            return {name: _top(unit_scores[name], max(floor[name], int((1 - rate) * n + 1e-9)))
                    for name, n in sizes.items()}
        values = torch.tensor([v for v, _, _ in ranked])
        cutoff = float(values.sort().values[round(rate * (len(values) - 1))])  # torch_percentile: nearest rank
        keep = {name: [i for v, n, i in ranked if n == name and v > cutoff] if rate > 0 else list(range(sizes[name]))
                for name in sizes}
        return {name: (torch.tensor(sorted(kept), dtype=torch.long) if len(kept) >= floor[name]
                       else _top(unit_scores[name], floor[name])) for name, kept in keep.items()}
    count = parameter_counter(model)
    target = (1 - rate) * count_parameters(model)
    if selection == "local":
        def kept(share: float) -> dict[str, int]:  # the same share removed from every layer
            return {name: max(floor[name], n - math.floor(share * n + 1e-9)) for name, n in sizes.items()}
    else:
        removable = [name for _, name, _ in ranked]

        def kept(share: float) -> dict[str, int]:  # the lowest-ranked share of all units removed
            out, k = dict(sizes), math.floor(share * len(removable) + 1e-9)
            for name in removable[:k]:
                out[name] = max(floor[name], out[name] - 1)
            return out
    lo, hi = 0.0, 1.0  # bisection on the share of units removed
    for _ in range(40):
        mid = (lo + hi) / 2
        if count(kept(mid)) <= target:
            hi = mid
        else:
            lo = mid
    counts = kept(hi)
    if selection == "local":
        return {name: _top(unit_scores[name], counts[name]) for name in sizes}
    k = math.floor(hi * len(removable) + 1e-9)
    gone: dict[str, set] = {name: set() for name in sizes}
    for _, name, i in ranked[:k]:
        if len(gone[name]) < sizes[name] - floor[name]:
            gone[name].add(i)
    return {name: torch.tensor([i for i in range(n) if i not in gone[name]], dtype=torch.long)
            for name, n in sizes.items()}
