"""Units of a transcriber and the same network rebuilt without some of them (lottery paper Sec. 3).

Trimming removes whole computation units, not weights: output channels of a convolution,
hidden units of a recurrent layer (the same index in both directions), units of a fully
connected layer. A :class:`Link` is one trimmable layer: its producer module, the batch
norm after it (whose entries go with the unit), and the consumers, whose inputs are the
unit's outputs (the criterion of a layer carries over to the inputs of the next). The last
layer (the output, one logit per drum) is never trimmed.

Links are found by walking the model's leaf modules in registration order, which is the
order of ``forward`` for every sequential transcriber here (:class:`adt.frame.architectures.FrameCRNN`,
``RNN``, ``CNN``, ``CRNN``); a model with branches defines ``trimming_links()`` itself
(:class:`adt.frame.architectures.LotteryDrumCNN`). Attention models are not supported.

The rebuild is ours, not ``torch-pruning``'s: that library has no GRU and cannot follow the
(channel, frequency) flattening in front of our recurrent layers. Multi-layer ``nn.GRU`` /
``nn.LSTM`` become a :class:`StackedRNN` of one-layer modules first (same function, same
weights), so that every layer can keep its own number of units.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

PRODUCERS = (nn.Conv2d, nn.Linear, nn.GRU, nn.LSTM)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
ACTIVATIONS = (nn.ReLU, nn.ELU, nn.GELU, nn.Tanh) + NORMS


@dataclasses.dataclass
class Link:
    """One trimmable layer.

    Attributes:
        name: the producer's module path; kind: "conv", "linear" or "rnn".
        units: output channels, units or hidden units per direction.
        norm: path of the batch norm over those units (None: none).
        tail: path of the module whose output the activation criterion reads (Eq. 4).
        consumers: paths of the modules reading the units, each with its input ``layout``:
            ``(path, factor, layout)``; layout "blocks" (unit u -> inputs u*f .. u*f + f - 1, the
            (channel, frequency) flattening) or "directions" (u -> u and f/2-th block: both
            directions of a bidirectional layer, factor 2).
    """

    name: str
    kind: str
    units: int
    norm: str | None
    tail: str
    consumers: list[tuple[str, int, str]]


class StackedRNN(nn.Module):
    """One-layer bidirectional GRU/LSTM modules in a stack, dropout between layers: what ``nn.GRU``
    with ``num_layers`` computes, with a width per layer. ``forward(x) -> (output, None)``, (B, T, F)."""

    def __init__(self, layers: list[nn.Module], dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, hx=None):
        for i, layer in enumerate(self.layers):
            if i:
                x = nn.functional.dropout(x, self.dropout, self.training)
            x, _ = layer(x)
        return x, None


def _get(model: nn.Module, path: str) -> nn.Module:
    return model.get_submodule(path)


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(_get(model, parent) if parent else model, name, module)


def _rnn(cls, n_in: int, hidden: int, like: nn.Module) -> nn.Module:
    return cls(n_in, hidden, num_layers=1, bias=like.bias, batch_first=like.batch_first,
               bidirectional=like.bidirectional)


def split_recurrent(model: nn.Module) -> nn.Module:
    """Replace every multi-layer ``nn.GRU``/``nn.LSTM`` of ``model`` by an equivalent :class:`StackedRNN`
    (in place; the weights are copied, the function is unchanged). Returns ``model``.

    Raises:
        ValueError: a recurrent layer that is not batch-first.
    """
    for path, m in list(model.named_modules()):
        if not isinstance(m, (nn.GRU, nn.LSTM)) or m.num_layers == 1 or not path:
            continue
        if not m.batch_first:
            raise ValueError(f"{path}: only batch-first recurrent layers can be trimmed")
        dirs = 2 if m.bidirectional else 1
        layers = []
        for k in range(m.num_layers):
            layer = _rnn(type(m), m.input_size if k == 0 else dirs * m.hidden_size, m.hidden_size, m)
            with torch.no_grad():
                for sfx in ("", "_reverse")[:dirs]:
                    for kind in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if m.bias else ()):
                        getattr(layer, f"{kind}_l0{sfx}").copy_(getattr(m, f"{kind}_l{k}{sfx}"))
            layers.append(layer)
        _set(model, path, StackedRNN(layers, m.dropout).train(m.training))
    return model


def _kind(m: nn.Module) -> str:
    return "conv" if isinstance(m, nn.Conv2d) else "linear" if isinstance(m, nn.Linear) else "rnn"


def units_of(m: nn.Module) -> int:
    """Output units of a producer: channels, features, hidden units per direction."""
    return m.out_channels if isinstance(m, nn.Conv2d) else m.out_features if isinstance(m, nn.Linear) \
        else m.hidden_size


def inputs_of(m: nn.Module) -> int:
    """Input width of a producer."""
    return m.in_channels if isinstance(m, nn.Conv2d) else m.in_features if isinstance(m, nn.Linear) \
        else m.input_size


def consumer_layout(model: nn.Module, producer: str, consumer: str) -> tuple[str, int, str]:
    """``(consumer, factor, layout)`` of a consumer reading ``producer``'s units (see :class:`Link`).

    Raises:
        ValueError: the consumer's input width is not a multiple of the producer's units.
    """
    p, c = _get(model, producer), _get(model, consumer)
    if isinstance(p, (nn.GRU, nn.LSTM)) and p.bidirectional:
        return consumer, 2, "directions"
    factor, rest = divmod(inputs_of(c), units_of(p))
    if rest or factor < 1:
        raise ValueError(f"{consumer} reads {inputs_of(c)} inputs, not a multiple of {producer}'s {units_of(p)} units")
    return consumer, factor, "blocks"


def links(model: nn.Module) -> list[Link]:
    """The trimmable layers of ``model`` (after :func:`split_recurrent`), in forward order.

    Raises:
        ValueError: a model with attention (not supported) or a multi-layer recurrent module left.
    """
    if hasattr(model, "trimming_links"):
        return model.trimming_links()
    if any(isinstance(m, nn.MultiheadAttention) for m in model.modules()):
        raise ValueError(f"{type(model).__name__}: attention models cannot be trimmed (units of a "
                         f"head are not separable here)")
    entries: list[dict] = []
    for path, m in model.named_modules():
        if list(m.children()):
            continue
        if isinstance(m, PRODUCERS):
            if isinstance(m, (nn.GRU, nn.LSTM)) and m.num_layers > 1:
                raise ValueError(f"{path}: call split_recurrent first")
            entries.append({"name": path, "norm": None, "tail": path})
        elif entries and isinstance(m, ACTIVATIONS):
            if isinstance(m, NORMS) and entries[-1]["norm"] is None:
                entries[-1]["norm"] = path
            entries[-1]["tail"] = path
    out = []
    for e, nxt in zip(entries, entries[1:]):
        m = _get(model, e["name"])
        out.append(Link(e["name"], _kind(m), units_of(m), e["norm"], e["tail"],
                        [consumer_layout(model, e["name"], nxt["name"])]))
    return out


def input_index(keep: torch.Tensor, units: int, factor: int, layout: str) -> torch.Tensor:
    """Input columns of a consumer that stay when a layer of ``units`` keeps units ``keep``."""
    if layout == "directions":
        return torch.cat([keep, keep + units])
    return (keep[:, None] * factor + torch.arange(factor)).reshape(-1)


def _gates(m: nn.Module) -> int:
    return 4 if isinstance(m, nn.LSTM) else 3


def _directions(m: nn.Module) -> tuple[str, ...]:
    return ("", "_reverse") if m.bidirectional else ("",)


def trim_state(model: nn.Module, state: dict[str, torch.Tensor], keep: dict[str, torch.Tensor]) -> dict:
    """A state dict of ``model``'s layout (e.g. early weights to rewind to) with only the kept units.

    Args:
        keep: link name -> sorted indices of the units kept (links absent keep all).
    """
    state = dict(state)
    for link in links(model):
        if link.name not in keep:
            continue
        idx = keep[link.name].long()
        p = _get(model, link.name)
        if link.kind == "rnn":
            rows = torch.cat([g * link.units + idx for g in range(_gates(p))])
            for sfx in _directions(p):
                for kind in ("weight_ih", "bias_ih", "bias_hh", "weight_hh"):
                    key = f"{link.name}.{kind}_l0{sfx}"
                    if key in state:
                        state[key] = state[key][rows]
                key = f"{link.name}.weight_hh_l0{sfx}"
                state[key] = state[key][:, idx]
        else:
            for kind in ("weight", "bias"):
                if f"{link.name}.{kind}" in state:
                    state[f"{link.name}.{kind}"] = state[f"{link.name}.{kind}"][idx]
        if link.norm:
            for kind in ("weight", "bias", "running_mean", "running_var"):
                if f"{link.norm}.{kind}" in state:
                    state[f"{link.norm}.{kind}"] = state[f"{link.norm}.{kind}"][idx]
        for consumer, factor, layout in link.consumers:
            cols = input_index(idx, link.units, factor, layout)
            c = _get(model, consumer)
            keys = [f"{consumer}.weight_ih_l0{sfx}" for sfx in _directions(c)] if _kind(c) == "rnn" \
                else [f"{consumer}.weight"]
            for key in keys:
                state[key] = state[key][:, cols]
    return state


def resize(model: nn.Module, counts: dict[str, int]) -> nn.Module:
    """Rebuild ``model``'s trimmable layers (in place) with ``counts[name]`` units, fresh weights.

    The structure a trimmed checkpoint needs before its weights load
    (:func:`adt.frame.checkpoint.load_model`). Returns ``model``.
    """
    found, training = links(model), model.training
    outs = {link.name: counts.get(link.name, link.units) for link in found}
    ins: dict[str, int] = {}
    for link in found:
        for consumer, factor, _ in link.consumers:
            ins[consumer] = outs[link.name] * factor
    for path in {*outs, *ins}:
        m = _get(model, path)
        n_in, n_out = ins.get(path, inputs_of(m)), outs.get(path, units_of(m))
        if (n_in, n_out) == (inputs_of(m), units_of(m)):
            continue
        if isinstance(m, nn.Conv2d):
            new = nn.Conv2d(n_in, n_out, m.kernel_size, m.stride, m.padding, m.dilation, bias=m.bias is not None,
                            padding_mode=m.padding_mode)
        elif isinstance(m, nn.Linear):
            new = nn.Linear(n_in, n_out, bias=m.bias is not None)
        else:
            new = _rnn(type(m), n_in, n_out, m)
        _set(model, path, new.to(next(m.parameters()).device))
    for link in found:
        if link.norm and outs[link.name] != link.units:
            bn = _get(model, link.norm)
            _set(model, link.norm, type(bn)(outs[link.name], bn.eps, bn.momentum, bn.affine,
                                            bn.track_running_stats).to(bn.weight.device))
    return model.train(training)


def widths(model: nn.Module) -> dict[str, int]:
    """Units per trimmable layer: what a trimmed checkpoint records (``trimmed``)."""
    return {link.name: link.units for link in links(model)}


def shrink(model: nn.Module, keep: dict[str, torch.Tensor], state: dict | None = None) -> nn.Module:
    """A new, smaller ``model`` keeping units ``keep`` (link name -> indices), weights taken from
    ``state`` (default: the model's own) for the kept units; attributes (``feature_type``, ...) copied.

    The output shape is unchanged; the parameter count is what the kept units imply.
    """
    sliced = trim_state(model, state if state is not None else model.state_dict(), keep)
    new = resize(copy.deepcopy(model), {k: len(v) for k, v in keep.items()})
    new.load_state_dict(sliced)
    return new


def count_parameters(model: nn.Module) -> int:
    """All parameters of ``model`` (trimmable or not)."""
    return sum(p.numel() for p in model.parameters())
