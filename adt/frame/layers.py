"""Building blocks of the frame-level architectures (:mod:`adt.frame.architectures`).

:class:`StandardizedInput` (per-bin input standardization inside a model), :func:`conv_stack`
(the conv blocks), :func:`recurrent` (a bidirectional GRU or LSTM), :func:`sinusoidal_encoding` and
:func:`transformer_encoder` (pre-LN), and :func:`frame_vectors` (conv output to per-frame vectors).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class StandardizedInput:
    """Mixin for ``nn.Module`` transcribers: per-bin input standardization with the training set's
    mean and standard deviation (thesis Sec. 5.2), kept as buffers ``mean`` and ``std`` (shape (F,))
    so that a saved model takes raw features."""

    def _register_standardization(self, n_features: int) -> None:
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    def set_standardization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store per-bin training statistics, shape (F,); std is floored at 1e-5.

        Raises:
            ValueError: a shape other than (F,).
        """
        mean, std = torch.as_tensor(mean), torch.as_tensor(std)
        if mean.shape != self.mean.shape or std.shape != self.std.shape:
            raise ValueError(f"standardization statistics must have shape ({self.mean.shape[0]},), "
                             f"got {tuple(mean.shape)} and {tuple(std.shape)}")
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-5))

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """(..., F) features -> standardized features."""
        return (x - self.mean) / self.std


def conv_stack(channels: tuple[int, ...], n_features: int, dropout: float) -> tuple[nn.Sequential, int]:
    """Conv blocks over (time, frequency): input (B, 1, T, F) -> (B, C, T, F // 3**len(channels)).

    Returns the blocks and the flattened per-frame width C * F'.

    Raises:
        ValueError: frequency pooling would leave no bins.
    """
    layers, c_in, f = [], 1, n_features
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(c),
                   nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(c),
                   nn.MaxPool2d((1, 3)), nn.Dropout2d(dropout)]
        c_in, f = c, f // 3
    if f < 1:
        raise ValueError(f"{len(channels)} conv blocks pool {n_features} bins down to none")
    return nn.Sequential(*layers), c_in * f


def frame_vectors(h: torch.Tensor) -> torch.Tensor:
    """(B, C, T, F') conv output -> (B, T, C * F') per-frame vectors."""
    b, c, t, f = h.shape
    return h.permute(0, 2, 1, 3).reshape(b, t, c * f)


def recurrent(cell: str, n_in: int, hidden: int, layers: int, dropout: float) -> nn.Module:
    """A bidirectional GRU or LSTM (``cell``), batch first, ``dropout`` between its ``layers``."""
    if cell not in ("gru", "lstm"):
        raise ValueError(f"unknown recurrent cell {cell!r}; choose 'gru' or 'lstm'")
    cls = nn.GRU if cell == "gru" else nn.LSTM
    return cls(n_in, hidden, num_layers=layers, batch_first=True, bidirectional=True,
               dropout=dropout if layers > 1 else 0.0)


def sinusoidal_encoding(n_frames: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Sinusoidal positional encoding (Vaswani et al. 2017), shape (T, D): sin on even, cos on odd dims."""
    pos = torch.arange(n_frames, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(n_frames, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe.to(dtype)


def transformer_encoder(d_model: int, heads: int, layers: int, dropout: float) -> nn.TransformerEncoder:
    """Pre-LN encoder (Xiong et al. 2020, thesis ref. [45]), GELU feed-forward of width 4 D, final layer norm."""
    if d_model % heads:
        raise ValueError(f"embedding dimension {d_model} is not divisible by {heads} heads")
    layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=4 * d_model, dropout=dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
