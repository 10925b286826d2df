"""Which units to keep: the trimming criteria (lottery paper Sec. 3.1, Eqs. 3-5) and local or global
selection of the units kept in a round.

Every criterion gives one score per unit of each :class:`adt.trimming.units.Link` (higher: more
useful):

* ``"magnitude"`` (Eq. 3): the L2 norm of all weights producing the unit (a conv kernel's
  output channel; a linear unit's row; a recurrent unit's input and recurrent rows of every
  gate, both directions), plus its bias;
* ``"activation"`` (Eq. 4): the unit's mean absolute activation (after its norm / non-linearity:
  what the next layer reads) summed over validation examples;
* ``"batchnorm"`` (Eq. 5): ``|gamma|`` of the batch norm over the unit (Liu et al.'s network
  slimming); layers without a batch norm (recurrent layers) fall back to the magnitude.

Selection (:func:`select`): ``"local"``: the same share of units goes from every layer;
``"global"``: units are ranked across layers by their score divided by the mean score of their
layer (scores of different layers are on different scales; the paper's normalisation did not
survive in our copy, this is the simplest one that makes them comparable). Either way, a round
removes units until the network's parameters fall to ``keep_share`` of what they were (the
weights going with a unit are its own and the next layer's inputs), and every layer keeps at
least one unit.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from adt.trimming.units import Link, count_parameters, links, resize

CRITERIA = ("magnitude", "activation", "batchnorm")
SELECTIONS = ("local", "global")


def magnitude(model: nn.Module, link: Link) -> torch.Tensor:
    """Eq. 3: per-unit L2 norm of the weights (and bias) producing each unit, shape (units,)."""
    p = model.get_submodule(link.name)
    if link.kind == "rnn":
        gates = 4 if isinstance(p, nn.LSTM) else 3
        total = torch.zeros(link.units)
        for name, w in p.named_parameters():
            rows = w.detach().reshape(gates, link.units, -1)
            total += rows.square().sum(dim=(0, 2))
        return total.sqrt()
    total = p.weight.detach().reshape(link.units, -1).square().sum(1)
    if p.bias is not None:
        total += p.bias.detach().square()
    return total.sqrt()


def batchnorm(model: nn.Module, link: Link) -> torch.Tensor:
    """Eq. 5: ``|gamma|`` of the unit's batch norm, shape (units,); :func:`magnitude` without one."""
    if link.norm is None:
        return magnitude(model, link)
    return model.get_submodule(link.norm).weight.detach().abs()


@torch.no_grad()
def activation(model: nn.Module, found: list[Link], examples: Iterable[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Eq. 4: per unit, the mean absolute activation over time (and frequency), summed over
    ``examples`` (feature matrices (T, F), e.g. the validation tracks); eval mode."""
    sums = {link.name: torch.zeros(link.units) for link in found}

    def hook(link: Link):
        def record(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            a = out.detach().abs()
            if link.kind == "conv":  # (B, C, T, F)
                per_unit = a.mean(dim=(2, 3)).sum(0)
            else:  # (B, T, D); a bidirectional layer's unit is its index in both directions
                per_unit = a.mean(dim=1).sum(0)
                if per_unit.numel() == 2 * link.units:
                    per_unit = per_unit[:link.units] + per_unit[link.units:]
            sums[link.name] += per_unit
        return record

    handles = [model.get_submodule(link.tail).register_forward_hook(hook(link)) for link in found]
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
        ValueError: an unknown criterion, or ``"activation"`` without examples.
    """
    found = links(model)
    if criterion == "magnitude":
        return {link.name: magnitude(model, link) for link in found}
    if criterion == "batchnorm":
        return {link.name: batchnorm(model, link) for link in found}
    if criterion == "activation":
        examples = list(examples)
        if not examples:
            raise ValueError("the activation criterion needs validation examples")
        return activation(model, found, examples)
    raise ValueError(f"unknown criterion {criterion!r}; choose one of {CRITERIA}")


def _top(score: torch.Tensor, n: int) -> torch.Tensor:
    """Indices (sorted) of the ``n`` highest scores; ties go to the lower index."""
    order = sorted(range(len(score)), key=lambda i: (-float(score[i]), i))
    return torch.tensor(sorted(order[:max(1, n)]), dtype=torch.long)


def parameter_counter(model: nn.Module) -> Callable[[dict[str, int]], int]:
    """``counts -> parameters`` of ``model`` rebuilt with those units (on the meta device, no weights)."""
    skeleton = copy.deepcopy(model).to("meta")
    return lambda counts: count_parameters(resize(copy.deepcopy(skeleton), counts))


def select(model: nn.Module, unit_scores: dict[str, torch.Tensor], keep_share: float,
           selection: str = "local") -> dict[str, torch.Tensor]:
    """Units to keep so that the rebuilt network has at most ``keep_share`` of ``model``'s parameters
    (the fewest units removed that get there; each layer keeps at least one).

    Returns:
        link name -> sorted indices of the kept units.

    Raises:
        ValueError: an unknown selection or a share outside (0, 1].
    """
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; choose one of {SELECTIONS}")
    if not 0 < keep_share <= 1:
        raise ValueError(f"keep_share must be in (0, 1], got {keep_share}")
    count = parameter_counter(model)
    target = keep_share * count_parameters(model)
    sizes = {name: len(s) for name, s in unit_scores.items()}
    if selection == "local":
        def kept(share: float) -> dict[str, int]:  # the same share removed from every layer
            return {name: max(1, n - math.floor(share * n + 1e-9)) for name, n in sizes.items()}
    else:
        ranked = sorted(((float(s[i]) / max(float(s.mean()), 1e-12), name, i)
                         for name, s in unit_scores.items() for i in range(len(s))))
        removable = [name for _, name, _ in ranked]

        def kept(share: float) -> dict[str, int]:  # the lowest-ranked share of all units removed
            out, k = dict(sizes), math.floor(share * len(removable) + 1e-9)
            for name in removable[:k]:
                out[name] = max(1, out[name] - 1)
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
        if len(gone[name]) < sizes[name] - 1:
            gone[name].add(i)
    return {name: torch.tensor([i for i in range(n) if i not in gone[name]], dtype=torch.long)
            for name, n in sizes.items()}
