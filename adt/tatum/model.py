"""Frame-to-tatum CRNN (tatum paper, Sec. III-B and Fig. 2).

A frame-level convolutional encoder turns the spectrogram X (T frames x F bins,
100 fps) into features F (T x D); a max pooling over each tatum's span (Eq. 1)
summarizes them to G (M tatums x D); a GRU decoder and a fully connected layer
give the tatum-level onset logits, phi = sigmoid(logits) in [0,1]^(M x K).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from adt.frame.layers import StandardizedInput


def tatum_spans(tatum_frames: np.ndarray | torch.Tensor, n_frames: int) -> torch.Tensor:
    """Which tatum each frame belongs to, for the max pooling of Eq. 1.

    Tatum m spans frames t with (b_{m-1} + b_m) / 2 <= t < (b_m + b_{m+1}) / 2,
    with b_0 = b_1 and b_{M+1} = b_M (so the first span starts at b_1). Taken
    literally, the last span [(b_{M-1} + b_M) / 2, b_M) would miss the frame of
    b_M itself (and hold no frame when tatums are one frame apart), so it is
    closed at b_M: the last tatum keeps its own onset frame.

    Args:
        tatum_frames: tatum times b_1..b_M in frames (float, 100 fps: seconds x 100),
            non-decreasing, shape (M,).
        n_frames: T.

    Returns:
        long tensor (T,): the tatum index of each frame, -1 for frames outside every span.

    Raises:
        ValueError: tatum times that decrease.
    """
    b = torch.as_tensor(tatum_frames, dtype=torch.float64)
    if b.ndim != 1:
        raise ValueError(f"tatum times must be 1-D, got shape {tuple(b.shape)}")
    if len(b) > 1 and bool((b[1:] < b[:-1]).any()):
        raise ValueError("tatum times must not decrease")
    owner = torch.full((n_frames,), -1, dtype=torch.long)
    if len(b) == 0:
        return owner
    prev = torch.cat([b[:1], b[:-1]])
    nxt = torch.cat([b[1:], b[-1:]])
    start = torch.ceil((prev + b) / 2).long().clamp(0, n_frames)
    end = torch.ceil((b + nxt) / 2).long()
    end[-1] = torch.floor(b[-1]).long() + 1  # closed at b_M (see above)
    end = end.clamp(0, n_frames)
    # spans are ordered and disjoint: a frame belongs to the last span starting at or before it
    frames = torch.arange(n_frames)
    m = torch.searchsorted(start, frames, right=True) - 1
    inside = (m >= 0) & (frames < end[m.clamp_min(0)])
    return torch.where(inside, m, owner)


def tatum_max_pool(features: torch.Tensor, owner: torch.Tensor, n_tatums: int) -> torch.Tensor:
    """Eq. 1: G[m] = max over the frames of tatum m of F[t].

    Args:
        features: F, shape (B, T, D).
        owner: (B, T) tatum index per frame from :func:`tatum_spans` (-1: ignored).
        n_tatums: M (the batch's largest; shorter items have trailing empty tatums).

    Returns:
        G, shape (B, M, D). A tatum whose span holds no frame (two tatums closer
        than a frame, or padding) gets zeros.
    """
    b, t, d = features.shape
    idx = owner.clamp_min(0).unsqueeze(-1).expand(b, t, d)
    neg = torch.finfo(features.dtype).min
    src = features.masked_fill((owner < 0).unsqueeze(-1), neg)
    pooled = torch.full((b, n_tatums, d), neg, dtype=features.dtype, device=features.device)
    pooled = pooled.scatter_reduce(1, idx, src, reduce="amax", include_self=True)
    return pooled.masked_fill(pooled == neg, 0.0)


class TatumCRNN(StandardizedInput, nn.Module):
    """Frame-to-tatum CRNN: (B, T, F) spectrogram + frame->tatum map -> (B, M, K) onset logits.

    Encoder: ``conv_layers`` conv 3x3 layers (batch norm, ReLU), max pooling 1x3 over
    frequency after every second layer (tatum paper: 4 layers, 3x3). Decoder:
    ``gru_layers`` bidirectional GRU layers of ``hidden`` units over tatums (paper:
    3 x 98), dropout 0.3, a fully connected layer to K drums. Input standardization
    (per bin, training statistics) is stored in the model as buffers.

    Args:
        n_features: spectrogram bins F (80 log mel, 84 log-filtered).
        n_classes: K (3: BD SD HH as in the paper, or 5).
    """

    def __init__(self, n_features: int = 80, n_classes: int = 3, channels: int = 32, conv_layers: int = 4,
                 hidden: int = 98, gru_layers: int = 3, dropout: float = 0.3):
        super().__init__()
        self.config = dict(n_features=n_features, n_classes=n_classes, channels=channels,
                           conv_layers=conv_layers, hidden=hidden, gru_layers=gru_layers, dropout=dropout)
        layers, c_in, f = [], 1, n_features
        for i in range(conv_layers):
            layers += [nn.Conv2d(c_in, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU()]
            c_in = channels
            if i % 2 == 1:
                layers += [nn.MaxPool2d((1, 3)), nn.Dropout(dropout)]
                f //= 3
        self.encoder = nn.Sequential(*layers)
        self.decoder = nn.GRU(channels * f, hidden, num_layers=gru_layers, batch_first=True, bidirectional=True,
                              dropout=dropout if gru_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, n_classes)
        self._register_standardization(n_features)

    def forward(self, x: torch.Tensor, owner: torch.Tensor, n_tatums: int) -> torch.Tensor:
        """x: (B, T, F) spectrogram; owner: (B, T) from :func:`tatum_spans`. Returns logits (B, M, K)."""
        h = self.encoder(self.standardize(x).unsqueeze(1))  # (B, C, T, F')
        b, c, t, f = h.shape
        frames = h.permute(0, 2, 1, 3).reshape(b, t, c * f)
        g = tatum_max_pool(frames, owner, n_tatums)
        g, _ = self.decoder(g)
        return self.out(self.dropout(g))
