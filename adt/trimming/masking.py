"""The original lottery ticket (Frankle & Carbin 2019; lottery paper Sec. 2.2, Fig. 2 baseline):
unstructured masks over single weights, chosen by magnitude, layer by layer.

Masks cover the weight matrices and kernels (not biases or batch norms, as in the original
work) of every layer but the output layer; each round masks ``rate`` of the weights still
unmasked in each of them, by smallest absolute value. The network keeps its size: a masked
weight is a zero, re-applied after every optimizer step (:func:`apply`).
"""

from __future__ import annotations

import torch
from torch import nn

from adt.frame.units import links

Masks = dict[str, torch.Tensor]


def maskable(model: nn.Module) -> list[str]:
    """Names of the parameters masks cover: weights (2-D and up) of every trimmable layer."""
    names = []
    for link in links(model):
        names += [f"{link.name}.{n}" for n, p in model.get_submodule(link.name).named_parameters() if p.ndim >= 2]
    return names


def full(model: nn.Module) -> Masks:
    """Masks that keep every weight."""
    params = dict(model.named_parameters())
    return {name: torch.ones_like(params[name], dtype=torch.bool) for name in maskable(model)}


def prune(model: nn.Module, masks: Masks, rate: float = 0.2) -> Masks:
    """New masks: ``rate`` of each layer's still-unmasked weights masked too, smallest ``|w|`` first.

    Raises:
        ValueError: a rate outside [0, 1).
    """
    if not 0 <= rate < 1:
        raise ValueError(f"rate must be in [0, 1), got {rate}")
    params, out = dict(model.named_parameters()), {}
    for name, mask in masks.items():
        w = params[name].detach().abs()
        alive = int(mask.sum())
        k = int(round(rate * alive))
        new = mask.clone()
        if k:
            score = torch.where(mask, w, torch.full_like(w, float("inf")))
            new.view(-1)[torch.argsort(score.view(-1))[:k]] = False
        out[name] = new
    return out


@torch.no_grad()
def apply(model: nn.Module, masks: Masks) -> None:
    """Zero the masked weights of ``model`` in place."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        params[name].mul_(mask)


def masked_share(model: nn.Module, masks: Masks) -> float:
    """Share of all of ``model``'s parameters that the masks remove."""
    total = sum(p.numel() for p in model.parameters())
    return sum(int((~m).sum()) for m in masks.values()) / total
