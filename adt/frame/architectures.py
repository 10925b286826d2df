"""Frame-level transcription models: the tatum paper's FrameCRNN baseline and the thesis's five
architectures.

Every model maps a spectrogram (B, T, F) at 100 fps (F = 80 log mel or 84 log
filtered bins) to onset logits (B, T, K), one per drum and frame, with the interface
of :class:`FrameCRNN`: a ``config`` dict of constructor kwargs (rebuild with
``type(model)(**model.config)``), ``mean``/``std`` buffers set by
:meth:`FrameModel.set_standardization` and applied inside ``forward`` (thesis Sec. 5.2),
and :meth:`FrameModel.activations` for one track.

Architectures (thesis ch. 3; details the text leaves open follow the thesis's code,
RunarFosse/automatic-drum-transcription, ``models/``):

* ``"rnn"`` :class:`RNN` (Sec. 3.1.1): stacked bidirectional GRU or LSTM, linear head.
* ``"cnn"`` :class:`CNN` (Sec. 3.2.1): I conv blocks, then L per-frame fully connected
  ReLU layers of width H, linear head.
* ``"crnn"`` :class:`CRNN` (Sec. 3.3.1): two conv blocks (32, 64 channels) + BiGRU/BiLSTM.
* ``"frame_crnn"`` :class:`FrameCRNN`: the tatum paper's frame-level CRNN baseline
  (Sec. IV-D, after Vogl et al. 2018): two conv blocks over the spectrogram, a BiGRU over
  frames, one sigmoid output per drum and frame. Its standardization buffers are those of
  :class:`adt.frame.layers.StandardizedInput`, as for every model here.
* ``"conv_transformer"`` :class:`ConvTransformer` (Sec. 3.4.1): two conv blocks, linear
  projection to D_e, sinusoidal positions, L pre-LN encoder layers (GELU feed-forward).
* ``"vision_transformer"`` :class:`VisionTransformer` (Sec. 3.5): patches of 1 frame x P
  bins, so a frame's F/P patches together form its D_e-dim token (Sec. 3.5.2-3.5.3)
  and the output keeps the input's frame rate; pre-LN encoder as above.

A conv block (Vogl et al. 2018 / Zehren et al., as in the thesis's code) is
2 x [conv 3x3, ReLU, batch norm], max pool 1x3 over frequency only, 2-D dropout 0.3.
Time is never pooled, so every output frame is an input frame; each block widens the
temporal receptive field by 4 frames (I blocks: 1 + 4I frames, 50-130 ms).

:func:`suggest` samples the search spaces (:mod:`adt.frame.search_spaces`) with an Optuna
trial, :func:`build` constructs a model from the result.
"""

from __future__ import annotations

import torch
from torch import nn

from adt.frame.layers import (StandardizedInput, conv_stack, frame_vectors, recurrent, sinusoidal_encoding,
                              transformer_encoder)
from adt.frame.search_spaces import OPTIMIZER_SPACE, SEARCH_SPACES
from adt.frame.search_spaces import search_space_table  # noqa: F401 (documented as adt.frame.architectures.*)
from adt.frame.units import Link, consumer_layout, units_of


#: frames per attention window in :meth:`FrameModel.activations` of the transformers: the
#: 4-s training segments (thesis Sec. 5.1.1), so positions never exceed what training saw
ATTENTION_WINDOW = 400


class FrameModel(StandardizedInput, nn.Module):
    """Base of the architectures: standardization buffers, input checks, activations.

    Subclasses set ``self.config`` and implement ``_logits`` on standardized input.
    """

    #: frames per chunk in :meth:`activations` (None: the whole track at once)
    window: int | None = None

    def __init__(self, n_features: int, n_classes: int):
        super().__init__()
        if n_features < 1 or n_classes < 1:
            raise ValueError(f"need n_features >= 1 and n_classes >= 1, got {n_features}, {n_classes}")
        self._register_standardization(n_features)

    @property
    def n_features(self) -> int:
        return self.mean.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, F) spectrogram frames. Returns onset logits (B, T, K).

        Raises:
            ValueError: not 3-D, or F differs from the model's ``n_features``.
        """
        if x.ndim != 3 or x.shape[-1] != self.n_features:
            raise ValueError(f"{type(self).__name__} expects (batch, frames, {self.n_features}) input, "
                             f"got {tuple(x.shape)}")
        return self._logits(self.standardize(x))

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def activations(self, features: torch.Tensor) -> torch.Tensor:
        """Onset activation function (probabilities) for one track: (T, F) -> (T, K), eval mode.

        Models with a ``window`` run on windows of that many frames overlapping by half,
        each frame taken from the window where it lies most central.
        """
        self.eval()
        t = features.shape[0]
        if self.window is None or t <= self.window:
            return torch.sigmoid(self(features.unsqueeze(0)))[0]
        w = self.window
        starts = list(range(0, t - w, max(1, w // 2))) + [t - w]
        out = features.new_empty((t, self.config["n_classes"]))
        lo = 0
        for i, s in enumerate(starts):
            hi = t if i == len(starts) - 1 else (starts[i + 1] + s + w) // 2  # middle of the overlap
            y = torch.sigmoid(self(features[s:s + w].unsqueeze(0)))[0]
            out[lo:hi] = y[lo - s:hi - s]
            lo = hi
        return out


class RNN(FrameModel):
    """Bidirectional recurrent network, thesis Sec. 3.1.1: (B, T, F) -> (B, T, K) onset logits.

    Args:
        cell: "gru" or "lstm"; ``layers`` stacked bidirectional layers of ``hidden`` units
            per direction; ``dropout`` between layers (0.1 as in the thesis's code).
    """

    def __init__(self, n_features: int = 80, n_classes: int = 5, cell: str = "gru", layers: int = 2,
                 hidden: int = 72, dropout: float = 0.1):
        super().__init__(n_features, n_classes)
        self.config = dict(n_features=n_features, n_classes=n_classes, cell=cell, layers=layers,
                           hidden=hidden, dropout=dropout)
        self.rnn = recurrent(cell, n_features, hidden, layers, dropout)
        self.out = nn.Linear(2 * hidden, n_classes)

    def _logits(self, x):
        return self.out(self.rnn(x)[0])


class CNN(FrameModel):
    """Convolutional network, thesis Sec. 3.2.1: (B, T, F) -> (B, T, K) onset logits.

    Args:
        conv_blocks: I, the number of conv blocks; block i has ``channels[i]`` kernels
            (32, 64, 96 in the thesis). Temporal receptive field 1 + 4 I frames.
        fc_layers, fc_hidden: L per-frame fully connected ReLU layers of width H.
        dropout: 2-D dropout after each conv block.
    """

    def __init__(self, n_features: int = 80, n_classes: int = 5, conv_blocks: int = 1, fc_layers: int = 1,
                 fc_hidden: int = 72, channels: tuple[int, ...] = (32, 64, 96), dropout: float = 0.3):
        super().__init__(n_features, n_classes)
        if not 1 <= conv_blocks <= len(channels):
            raise ValueError(f"conv_blocks must be in 1..{len(channels)}, got {conv_blocks}")
        self.config = dict(n_features=n_features, n_classes=n_classes, conv_blocks=conv_blocks,
                           fc_layers=fc_layers, fc_hidden=fc_hidden, channels=tuple(channels), dropout=dropout)
        self.conv, width = conv_stack(tuple(channels[:conv_blocks]), n_features, dropout)
        dense = []
        for _ in range(fc_layers):
            dense += [nn.Linear(width, fc_hidden), nn.ReLU()]
            width = fc_hidden
        self.dense = nn.Sequential(*dense)
        self.out = nn.Linear(width, n_classes)

    def _logits(self, x):
        return self.out(self.dense(frame_vectors(self.conv(x.unsqueeze(1)))))


class CRNN(FrameModel):
    """Convolutional recurrent network, thesis Sec. 3.3.1: (B, T, F) -> (B, T, K) onset logits.

    Args:
        cell, layers, hidden: the bidirectional recurrent layers (as :class:`RNN`).
        channels: kernels of the conv blocks (fixed (32, 64) in the thesis).
        dropout: 2-D dropout after each conv block; ``rnn_dropout`` between recurrent layers.
    """

    def __init__(self, n_features: int = 80, n_classes: int = 5, cell: str = "gru", layers: int = 2,
                 hidden: int = 72, channels: tuple[int, ...] = (32, 64), dropout: float = 0.3,
                 rnn_dropout: float = 0.1):
        super().__init__(n_features, n_classes)
        self.config = dict(n_features=n_features, n_classes=n_classes, cell=cell, layers=layers, hidden=hidden,
                           channels=tuple(channels), dropout=dropout, rnn_dropout=rnn_dropout)
        self.conv, width = conv_stack(tuple(channels), n_features, dropout)
        self.rnn = recurrent(cell, width, hidden, layers, rnn_dropout)
        self.out = nn.Linear(2 * hidden, n_classes)

    def _logits(self, x):
        return self.out(self.rnn(frame_vectors(self.conv(x.unsqueeze(1))))[0])


class ConvTransformer(FrameModel):
    """Convolutional transformer, thesis Sec. 3.4.1: (B, T, F) -> (B, T, K) onset logits.

    Conv blocks, a linear projection of each frame to ``d_model`` (D_e), plus sinusoidal
    positions, ``layers`` pre-LN encoder layers with ``heads`` heads, a linear head.

    Args:
        channels: kernels of the conv blocks (fixed (32, 64) in the thesis).
        dropout: 2-D dropout after each conv block; ``attn_dropout`` inside the encoder
            layers (0.1 as in the thesis's code).

    Raises:
        ValueError: ``d_model`` not divisible by ``heads``.
    """

    window = ATTENTION_WINDOW

    def __init__(self, n_features: int = 80, n_classes: int = 5, d_model: int = 72, layers: int = 2,
                 heads: int = 2, channels: tuple[int, ...] = (32, 64), dropout: float = 0.3,
                 attn_dropout: float = 0.1):
        super().__init__(n_features, n_classes)
        self.config = dict(n_features=n_features, n_classes=n_classes, d_model=d_model, layers=layers,
                           heads=heads, channels=tuple(channels), dropout=dropout, attn_dropout=attn_dropout)
        self.conv, width = conv_stack(tuple(channels), n_features, dropout)
        self.embed = nn.Linear(width, d_model)
        self.encoder = transformer_encoder(d_model, heads, layers, attn_dropout)
        self.out = nn.Linear(d_model, n_classes)

    def _logits(self, x):
        h = self.embed(frame_vectors(self.conv(x.unsqueeze(1))))
        h = h + sinusoidal_encoding(h.shape[1], h.shape[2], h.device, h.dtype)
        return self.out(self.encoder(h))


class VisionTransformer(FrameModel):
    """Vision transformer for frame-level ADT, thesis Sec. 3.5: (B, T, F) -> (B, T, K) onset logits.

    Patch embedding (Sec. 3.5.3): the standardized spectrogram, zero-padded along
    frequency to N = ceil(F / P) patches of 1 frame x P bins, is linearly projected
    (a strided conv without activation) to D_e / N channels per patch, plus a learnable
    (N, D_e / N) patch position embedding; a frame's N patches are flattened into its
    D_e-dim token (Sec. 3.5.2), so the output has the input's T frames. Then sinusoidal
    positions over frames, ``layers`` pre-LN encoder layers, a linear head.
    With F = 84 and P in {7, 14, 21}, N = 12, 6, 4; with F = 80 the same N after padding.

    Raises:
        ValueError: ``d_model`` not divisible by N or by ``heads``.
    """

    window = ATTENTION_WINDOW

    def __init__(self, n_features: int = 80, n_classes: int = 5, patch_height: int = 21, d_model: int = 72,
                 layers: int = 2, heads: int = 2, dropout: float = 0.1):
        super().__init__(n_features, n_classes)
        n_patches = -(-n_features // patch_height)
        if d_model % n_patches:
            raise ValueError(f"embedding dimension {d_model} is not divisible by the {n_patches} patches "
                             f"of height {patch_height} per frame of {n_features} bins")
        self.config = dict(n_features=n_features, n_classes=n_classes, patch_height=patch_height,
                           d_model=d_model, layers=layers, heads=heads, dropout=dropout)
        self.pad = n_patches * patch_height - n_features
        self.patches = nn.Conv2d(1, d_model // n_patches, (1, patch_height), stride=(1, patch_height))
        self.patch_position = nn.Parameter(0.02 * torch.randn(d_model // n_patches, 1, n_patches))
        self.encoder = transformer_encoder(d_model, heads, layers, dropout)
        self.out = nn.Linear(d_model, n_classes)

    def _logits(self, x):
        x = nn.functional.pad(x, (0, self.pad))  # zeros = the training mean
        h = frame_vectors(self.patches(x.unsqueeze(1)) + self.patch_position)  # (B, T, D_e)
        h = h + sinusoidal_encoding(h.shape[1], h.shape[2], h.device, h.dtype)
        return self.out(self.encoder(h))


class FrameBatchNorm(nn.BatchNorm1d):
    """Batch norm over the features of (B, T, D) frame vectors (``nn.BatchNorm1d`` wants (B, D, T))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class LotteryDrumCNN(FrameModel):
    """The lottery paper's drum transcription model (Sec. 4.1.4, after Schlueter & Boeck 2014), the one of
    its Table 1: (B, T, F) -> (B, T, K) onset logits.

    4 x [conv ``kernel`` x ``kernel`` of ``channels`` kernels, padded, unit stride, batch norm, ReLU, max pool
    1 x 2 over frequency], two linear layers of ``hidden`` units with batch norm, ReLU and dropout, then an
    output network of 3 linear layers (``head``, ``head``, 1 units) per drum. The paper gives no widths for
    the linear layers; 1,024 and 128 make its 8.1 M parameters (8.0 M with 80 bins and 5 drums). Time is
    never pooled. Trimmable by :mod:`adt.trimming` (:meth:`trimming_links`: the heads branch off).
    """

    window = ATTENTION_WINDOW  # 256 channels over a whole track would hold GBs of activations

    def __init__(self, n_features: int = 80, n_classes: int = 5, channels: int = 256, kernel: int = 5,
                 hidden: int = 1024, head: int = 128, dropout: float = 0.3):
        super().__init__(n_features, n_classes)
        self.config = dict(n_features=n_features, n_classes=n_classes, channels=channels, kernel=kernel,
                           hidden=hidden, head=head, dropout=dropout)
        layers, c_in, f = [], 1, n_features
        for _ in range(4):
            layers += [nn.Conv2d(c_in, channels, kernel, padding=kernel // 2), nn.BatchNorm2d(channels), nn.ReLU(),
                       nn.MaxPool2d((1, 2))]
            c_in, f = channels, f // 2
        if f < 1:
            raise ValueError(f"4 poolings by 2 leave no bins of {n_features}")
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(channels * f, hidden), FrameBatchNorm(hidden), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(hidden, hidden), FrameBatchNorm(hidden), nn.ReLU(), nn.Dropout(dropout))
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(hidden, head), nn.ReLU(), nn.Linear(head, head), nn.ReLU(),
                                                 nn.Linear(head, 1)) for _ in range(n_classes))

    def _logits(self, x):
        h = self.fc(frame_vectors(self.conv(x.unsqueeze(1))))
        return torch.cat([head(h) for head in self.heads], dim=-1)

    def trimming_links(self) -> list:
        """The trimmable layers for :func:`adt.frame.units.links`: the convolutions, the two linear layers
        (whose units every head reads) and the first two layers of each head (the last is the output)."""
        def link(name: str, norm: str | None, tail: str, consumers: list[str]) -> Link:
            return Link(name, "conv" if name.startswith("conv") else "linear", units_of(self.get_submodule(name)),
                        norm, tail, [consumer_layout(self, name, c) for c in consumers])

        convs = [f"conv.{4 * i}" for i in range(4)]
        out = [link(c, f"conv.{4 * i + 1}", f"conv.{4 * i + 2}", [(convs + ["fc.0"])[i + 1]])
               for i, c in enumerate(convs)]
        out += [link("fc.0", "fc.1", "fc.2", ["fc.4"]),
                link("fc.4", "fc.5", "fc.6", [f"heads.{k}.0" for k in range(len(self.heads))])]
        for k in range(len(self.heads)):
            out += [link(f"heads.{k}.0", None, f"heads.{k}.1", [f"heads.{k}.2"]),
                    link(f"heads.{k}.2", None, f"heads.{k}.3", [f"heads.{k}.4"])]
        return out


#: Models outside the thesis's search (built by name, never swept): the lottery paper's drum model.
OTHER_ARCHITECTURES: dict[str, type[FrameModel]] = {"lottery_drum_cnn": LotteryDrumCNN}

ARCHITECTURES: dict[str, type[FrameModel]] = {
    "rnn": RNN,
    "cnn": CNN,
    "crnn": CRNN,
    "conv_transformer": ConvTransformer,
    "vision_transformer": VisionTransformer,
}


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


def _check_name(name: str) -> None:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")


def suggest(trial, name: str) -> dict:
    """Sample architecture ``name``'s hyperparameters and AdamW's with an Optuna trial.

    Architecture choices use ``trial.suggest_categorical`` under ``"<name>.<kwarg>"``
    (e.g. ``"crnn.hidden"``); ``"lr"`` and ``"weight_decay"`` use log-uniform
    ``trial.suggest_float`` (thesis Table 5.1). Returns all as one dict.

    Raises:
        ValueError: unknown ``name``.
    """
    _check_name(name)
    params = {f"{name}.{key}": trial.suggest_categorical(f"{name}.{key}", list(c.values))
              for key, c in SEARCH_SPACES[name].items()}
    for key, r in OPTIMIZER_SPACE.items():
        params[key] = trial.suggest_float(key, r.low, r.high, log=True)
    return params


def build(name: str, params: dict, n_features: int, n_classes: int) -> FrameModel:
    """Construct architecture ``name`` from a :func:`suggest` dict for (T, F) inputs and K drums.

    Keys ``"<name>.<kwarg>"`` become constructor kwargs; ``"lr"``/``"weight_decay"`` are
    ignored; missing hyperparameters take the constructor defaults (the smallest
    thesis setting).

    Raises:
        ValueError: unknown ``name``, or a key that belongs to neither this architecture
            nor the optimizer.
    """
    _check_name(name)
    kwargs, foreign = {}, []
    for key, value in params.items():
        if key in OPTIMIZER_SPACE:
            continue
        arch, _, kwarg = key.partition(".")
        if arch != name or kwarg not in SEARCH_SPACES[name]:
            foreign.append(key)
        else:
            kwargs[kwarg] = value
    if foreign:
        raise ValueError(f"parameters {foreign} are not hyperparameters of {name!r} "
                         f"(expected {[f'{name}.{k}' for k in SEARCH_SPACES[name]]})")
    return ARCHITECTURES[name](n_features=n_features, n_classes=n_classes, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
