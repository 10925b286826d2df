"""Transcription models.

:class:`FrameCRNN` is the frame-level CRNN baseline the tatum paper compares
against (Sec. IV-D, after Vogl et al. 2018): convolutional blocks over the log mel
spectrogram, a bidirectional GRU over frames, one sigmoid output per drum and
frame (the onset activation function). Input standardization (per mel bin, from
training statistics) lives inside the model as buffers, so a saved model takes
raw log mel frames.
"""

from __future__ import annotations

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


class FrameCRNN(StandardizedInput, nn.Module):
    """Frame-level CRNN: (B, T, F) log mel -> (B, T, K) onset logits at 100 fps.

    Args:
        n_features: mel bands F (80).
        n_classes: drums K (5: BD SD TT HH CY).
        channels: output channels of the two conv blocks (each: 2 x [conv 3x3,
            batch norm, ReLU], max pool 1x3 over frequency, dropout).
        hidden: GRU hidden size per direction; ``layers`` GRU layers.
    """

    def __init__(self, n_features: int = 80, n_classes: int = 5, channels: tuple[int, int] = (16, 32),
                 hidden: int = 64, layers: int = 2, dropout: float = 0.3):
        super().__init__()
        self.config = dict(n_features=n_features, n_classes=n_classes, channels=tuple(channels),
                           hidden=hidden, layers=layers, dropout=dropout)
        blocks, c_in, f = [], 1, n_features
        for c in channels:
            blocks += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                       nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                       nn.MaxPool2d((1, 3)), nn.Dropout(dropout)]
            c_in, f = c, f // 3
        self.conv = nn.Sequential(*blocks)
        self.gru = nn.GRU(c_in * f, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                          dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, n_classes)
        self._register_standardization(n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, F) log mel. Returns onset logits (B, T, K)."""
        h = self.conv(self.standardize(x).unsqueeze(1))  # (B, C, T, F')
        b, c, t, f = h.shape
        h = h.permute(0, 2, 1, 3).reshape(b, t, c * f)
        h, _ = self.gru(h)
        return self.out(self.dropout(h))

    @torch.no_grad()
    def activations(self, features: torch.Tensor) -> torch.Tensor:
        """Onset activation function (probabilities) for one track: (T, F) -> (T, K)."""
        self.eval()
        return torch.sigmoid(self(features.unsqueeze(0)))[0]


def weighted_bce(logits: torch.Tensor, targets: torch.Tensor, beta: float = 8.0) -> torch.Tensor:
    """Frame-level weighted cross entropy, tatum paper Eq. 10 (beta = 8), averaged over entries.

    Onset frames are weighted by ``beta`` to offset how rare they are.
    """
    pos_weight = torch.full((logits.shape[-1],), beta, dtype=logits.dtype, device=logits.device)
    return nn.functional.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)
