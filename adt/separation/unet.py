"""Shared-encoder separation model (interleaved multitask paper, Sec. 2, Table 1, Fig. 1).

One convolutional encoder, one decoder per source, U-Net skips between them:

* **Encoder**: a unit-stride convolution (kernel 5 x 6, padding 2), then five stages of a
  strided downsampling convolution (kernel 4 x 4, stride 2, padding 1) followed by a
  unit-stride convolution (3 x 3). The first three layers compute ``width`` (16) maps and the
  five downsampling stages double them from 16 to 256 (Sec. 2.2): 16, 16, 16, 32, 32, 64, 64,
  128, 128, 256, 256. Every convolution is followed by batch norm and a LeakyReLU (negative
  slope 0.2: the slope is lost in our copy of the paper; 0.2 as Jansson et al.'s U-Net, its
  reference [14]).
* **Decoders** (one per source): five stages of nearest-neighbour upsampling (x2), a 3 x 3
  convolution, batch norm and LeakyReLU, then concatenation with the encoder's maps of the
  same resolution; maps halve per stage (128, 64, 32, 16, 16 for width 16); a last
  convolution (kernel 3 x 2, padding 1) gives the time frame back that the first one took,
  and feature-map averaging (groups of :data:`MAPS_PER_CHANNEL`) leaves one map per audio
  channel, then a ReLU: the source's **magnitude** (Sec. 2.2; in the normalised scale, times
  the input scale back).
* **encoder+** (Sec. 4.4, Table 3): the first three encoder layers compute ``2 * width``
  maps (32 instead of 16); decoders unchanged (their skip inputs widen with the encoder).

The paper's setting is the default: ReLU magnitudes, no soft masking objective, no
post-processing (the estimate is the decoder's magnitude with the mixture's phase).
Variants kept as extra rows of the study: ``output="mask"`` (a sigmoid soft mask on the
mixture's magnitude) and ratio masks at inference (:func:`reconstruct` with
``ratio_masks=True``: ``S_j^2 / sum_k S_k^2`` over the decoders, as Open-Unmix's
``softmask``, so the estimates sum to the mixture). Where the paper is silent or its figures
did not survive: the reconstruction distance is L1 (as [14]); the model sees ``bins`` = 1024
of the 1025 STFT bins (the Nyquist bin gets the estimate of the bin below); ``freq_pool`` > 1
averages neighbouring bins before the network and repeats the estimates back (1 = the paper;
CPU profiles may use 2).

Audio: 44100 Hz stereo; STFT with a 2048-sample Hann window, hop 512 (75 % overlap),
magnitudes normalised per frequency bin by the training data's standard deviation.
Shapes: spectrograms ``(batch, channels, bins, frames)``; frames at 44100 / 512 = 86.1 per
second; a patch's frame count ``T`` must satisfy ``(T - 1) % 32 == 0`` (e.g. 129).
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

#: feature maps averaged into each output channel by the decoders' last layer
MAPS_PER_CHANNEL = 4
#: the 4-source task of the paper; our renders have drums, bass and other
SOURCES = ("drums", "bass", "other")
#: downsampling stages: frames - 1 and model bins must be multiples of 2 ** STAGES
STAGES = 5
MODEL_FORMAT = "adt-shared-encoder/2"
#: decoder outputs: the paper's ReLU magnitudes, or a sigmoid soft mask on the mixture (a variant)
OUTPUTS = ("magnitude", "mask")


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Sizes of a :class:`SharedEncoderSeparator` and of its STFT.

    Attributes:
        sources: the decoders, in order.
        width: feature maps of the first encoder layer (paper: 16).
        encoder_plus: the paper's encoder+ (first three encoder layers 2x wider).
        n_fft, hop: STFT window and hop in samples (paper: 2048, 75 % overlap).
        sample_rate: Hz. channels: audio channels (2).
        bins: STFT bins the model sees (the lowest ``bins``; 1024).
        freq_pool: neighbouring bins averaged before the network (1 = paper).
        patch_frames: frames per training patch (``(patch_frames - 1) % 32 == 0``).
        output: ``"magnitude"`` (paper: ReLU magnitudes) or ``"mask"`` (sigmoid soft mask, a variant).
    """

    sources: tuple = SOURCES
    width: int = 16
    encoder_plus: bool = False
    n_fft: int = 2048
    hop: int = 512
    sample_rate: int = 44100
    channels: int = 2
    bins: int = 1024
    freq_pool: int = 1
    patch_frames: int = 129
    output: str = "magnitude"

    def __post_init__(self):
        if self.output not in OUTPUTS:
            raise ValueError(f"output {self.output!r}: expected one of {OUTPUTS}")
        unit = 2 ** STAGES
        if (self.bins // self.freq_pool) % unit or self.bins % self.freq_pool:
            raise ValueError(f"bins / freq_pool must be a multiple of {unit}, got {self.bins} / {self.freq_pool}")
        if (self.patch_frames - 1) % unit:
            raise ValueError(f"patch_frames - 1 must be a multiple of {unit}, got {self.patch_frames}")
        if not self.sources:
            raise ValueError("a separator needs at least one source")

    @property
    def patch_samples(self) -> int:
        """Audio samples whose centred STFT has ``patch_frames`` frames."""
        return (self.patch_frames - 1) * self.hop

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: (tuple(v) if k == "sources" else v) for k, v in d.items() if k in names}
        return cls(**d)


def _block(conv: nn.Conv2d) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(conv.out_channels), nn.LeakyReLU(0.2))


def encoder_widths(config: UNetConfig) -> list[int]:
    """Output maps of the encoder's 11 layers (conv, then (down, conv) x 5): 16, then the five
    stages 16 32 64 128 256 twice each (paper Sec. 2.2); encoder+ widens the first three to 32."""
    w = config.width
    stage = [w * 2 ** i for i in range(STAGES)]  # 16 32 64 128 256
    widths = [w] + [c for s in stage for c in (s, s)]
    if config.encoder_plus:
        widths[:3] = [2 * w] * 3
    return widths


def decoder_widths(config: UNetConfig) -> list[int]:
    """Maps of each decoder stage's convolution, coarse to fine (128 64 32 16 16 for width 16)."""
    return [max(8 * config.width // 2 ** i, config.width) for i in range(STAGES)]


class Encoder(nn.Module):
    """``(batch, channels, F, T)`` -> the maps at each resolution, finest first (``STAGES + 1`` tensors;
    the first with ``T - 1`` frames: the 5 x 6 kernel takes one)."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        widths = encoder_widths(config)
        layers = [_block(nn.Conv2d(config.channels, widths[0], (5, 6), padding=2))]
        for i in range(1, len(widths), 2):
            layers.append(_block(nn.Conv2d(widths[i - 1], widths[i], 4, stride=2, padding=1)))
            layers.append(_block(nn.Conv2d(widths[i], widths[i + 1], 3, padding=1)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = [self.layers[0](x)]
        for i in range(1, len(self.layers), 2):
            maps.append(self.layers[i + 1](self.layers[i](maps[-1])))
        return maps


class Decoder(nn.Module):
    """Encoder maps -> one source's ``(batch, channels, F, T)``: a non-negative magnitude (ReLU, paper) or a soft
    mask in [0, 1] (``output="mask"``)."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        skips = encoder_widths(config)[::2][::-1]  # maps per resolution, coarse to fine
        widths = decoder_widths(config)
        stages, inp = [], skips[0]
        for width, skip in zip(widths, skips[1:]):
            stages.append(_block(nn.Conv2d(inp, width, 3, padding=1)))
            inp = width + skip
        self.stages = nn.ModuleList(stages)
        self.out = nn.Conv2d(inp, config.channels * MAPS_PER_CHANNEL, (3, 2), padding=1)
        self.channels = config.channels
        self.activation = torch.relu if config.output == "magnitude" else torch.sigmoid

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        x = maps[-1]
        for stage, skip in zip(self.stages, maps[-2::-1]):
            x = stage(nn.functional.interpolate(x, size=skip.shape[-2:], mode="nearest"))
            x = torch.cat([x, skip], dim=1)
        y = self.out(x)  # (batch, channels * maps, F + 2 - 2, T - 1 + 1)
        b, _, f, t = y.shape
        return self.activation(y.view(b, self.channels, MAPS_PER_CHANNEL, f, t).mean(2))


class SharedEncoderSeparator(nn.Module):
    """Shared encoder and one decoder per source (Eq. 4) on the magnitude STFT.

    ``forward(X)`` takes mixture magnitudes ``(batch, channels, n_fft // 2 + 1, T)`` (unnormalised, as
    :meth:`magnitude` gives) and returns ``{source: estimated magnitudes}`` for ``sources`` (default
    all), each of that shape (``output="magnitude"``: the decoder's ReLU output times the input scale;
    ``"mask"``: its soft mask times the mixture). ``input_scale`` (``bins``): the training data's
    per-bin standard deviation (paper Sec. 2.2), 1 until :meth:`set_input_scale`.
    """

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoders = nn.ModuleDict({s: Decoder(config) for s in config.sources})
        self.register_buffer("input_scale", torch.ones(config.bins))
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)

    # -- spectrograms
    def stft(self, audio: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, samples)`` -> complex ``(batch, channels, n_fft // 2 + 1, frames)`` (centred)."""
        b, c, n = audio.shape
        spec = torch.stft(audio.reshape(b * c, n), self.config.n_fft, self.config.hop, window=self.window,
                          center=True, return_complex=True)
        return spec.view(b, c, *spec.shape[-2:])

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Inverse of :meth:`stft`: ``(..., channels, bins, frames)`` -> ``(..., channels, length)``."""
        lead = spec.shape[:-2]
        audio = torch.istft(spec.reshape(-1, *spec.shape[-2:]), self.config.n_fft, self.config.hop,
                            window=self.window, center=True, length=length)
        return audio.view(*lead, length)

    def magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        return self.stft(audio).abs()

    def set_input_scale(self, std: torch.Tensor) -> None:
        """Per-bin std of training mixture magnitudes (``bins``,), floored at 1e-4 of its maximum."""
        std = torch.as_tensor(std, dtype=torch.float32)[: self.config.bins]
        self.input_scale.copy_(torch.clamp(std, min=1e-4 * float(std.max())))

    # -- network
    def _features(self, mag: torch.Tensor) -> torch.Tensor:
        x = mag[:, :, : self.config.bins] / self.input_scale[:, None]
        p = self.config.freq_pool
        if p > 1:
            x = nn.functional.avg_pool2d(x, (p, 1))
        return x

    def _full_bins(self, x: torch.Tensor, n_bins: int) -> torch.Tensor:
        p = self.config.freq_pool
        if p > 1:
            x = x.repeat_interleave(p, dim=2)
        return torch.cat([x, x[:, :, -1:].expand(-1, -1, n_bins - x.shape[2], -1)], dim=2)

    def forward(self, mag: torch.Tensor, sources=None) -> dict[str, torch.Tensor]:
        maps = self.encoder(self._features(mag))
        sources = self.config.sources if sources is None else sources
        out = {}
        for s in sources:
            y = self._full_bins(self.decoders[s](maps), mag.shape[2])
            if self.config.output == "magnitude":
                scale = torch.cat([self.input_scale, self.input_scale[-1:].expand(mag.shape[2] - self.config.bins)])
                out[s] = y * scale[:, None]
            else:
                out[s] = y * mag
        return out

    def loss(self, mag: torch.Tensor, targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """L1 distance (Eq. 5) between estimated and target magnitudes per source, in the normalised
        scale (divided by ``input_scale``), on the model's bins; ``targets``: source -> magnitudes."""
        estimates = self.forward(mag, sources=list(targets))
        bins = self.config.bins
        scale = self.input_scale[:, None]
        return {s: torch.mean(torch.abs(estimates[s][:, :, :bins] - y[:, :, :bins]) / scale)
                for s, y in targets.items()}

    # -- inference
    @torch.no_grad()
    def estimates(self, spec: torch.Tensor, chunk_frames: int = 513, context_frames: int = 32
                  ) -> dict[str, torch.Tensor]:
        """Each decoder's magnitude estimate for a whole complex spectrogram ``(1, channels, bins, frames)``.

        The spectrogram is cut into chunks of ``chunk_frames`` frames (``(chunk_frames - 1) % 32 == 0``)
        that overlap by ``2 * context_frames``; each chunk keeps its middle. The chunks run through
        :meth:`for_inference` (batch norm folded, channels-last: the same figures, faster).
        """
        was_training = self.training
        self.eval()
        net = self.for_inference()
        mag = spec.abs()
        frames = mag.shape[-1]
        step = chunk_frames - 2 * context_frames
        pad_total = -(-frames // step) * step + 2 * context_frames  # last chunk's end
        padded = nn.functional.pad(mag, (context_frames, pad_total - frames - context_frames))
        out = {s: torch.zeros_like(mag) for s in self.config.sources}
        for start in range(0, frames, step):
            chunk = net(padded[..., start: start + chunk_frames])
            keep = min(step, frames - start)
            for s in out:
                out[s][..., start: start + keep] = chunk[s][..., context_frames: context_frames + keep]
        self.train(was_training)
        return out

    @torch.no_grad()
    def for_inference(self) -> "SharedEncoderSeparator":
        """A copy in eval mode whose batch norms are folded into the convolutions before them
        (:func:`torch.nn.utils.fusion.fuse_conv_bn_eval`) and whose weights are channels-last (oneDNN's fast
        layout on CPU): the same outputs up to float rounding (measured 6e-7 relative), faster on one CPU thread
        (measured on a shared machine: folding 25 % less time; channels-last then 1.4-1.8x, 30 s of a Groove
        mix 4.3-4.6 s -> 2.5-3.1 s). For inference only: the copy does not train like the original."""
        net = copy.deepcopy(self).eval()
        blocks = list(net.encoder.layers) + [stage for d in net.decoders.values() for stage in d.stages]
        for block in blocks:  # _block: (convolution, batch norm, activation)
            block[0], block[1] = fuse_conv_bn_eval(block[0], block[1]), nn.Identity()
        return net.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def separate(self, audio: torch.Tensor, sources=None, ratio_masks: bool = False) -> dict[str, torch.Tensor]:
        """Separate a mixture ``(channels, samples)`` -> ``{source: (channels, samples)}`` (:func:`reconstruct`
        on :meth:`estimates`; the paper's setting: no post-processing); ``sources`` picks what is returned
        (default: every decoder's)."""
        spec = self.stft(audio[None])
        out = reconstruct(self, spec, self.estimates(spec), audio.shape[-1], ratio_masks)
        return {s: out[s] for s in (self.config.sources if sources is None else sources)}

    # -- files
    def payload(self, half: bool = False) -> dict:
        """``{"format", "config", "state_dict"}`` for ``torch.save`` (loads with ``weights_only=True``);
        ``half``: floating-point tensors stored as float16 (half the file; :meth:`from_payload` casts back)."""
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        if half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        return {"format": MODEL_FORMAT, "config": dataclasses.asdict(self.config), "state_dict": state}

    @classmethod
    def from_payload(cls, payload: dict) -> "SharedEncoderSeparator":
        """Inverse of :meth:`payload` (float16 weights cast to float32). Raises ValueError when it is not one."""
        if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise ValueError(f"not a {MODEL_FORMAT} model (format {found!r})")
        model = cls(UNetConfig.from_dict(payload["config"]))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
        return model.eval()


@torch.no_grad()
def reconstruct(model: "SharedEncoderSeparator", spec: torch.Tensor, magnitudes: dict[str, torch.Tensor], length: int,
                ratio_masks: bool = False, sources=None) -> dict[str, torch.Tensor]:
    """Time-domain estimates ``{source: (channels, length)}`` of ``sources`` (default: every one of ``magnitudes``)
    from estimated magnitudes on ``spec`` (1, c, bins, frames), with the mixture's phase (paper Sec. 2.1).

    ``ratio_masks`` False (the paper: no post-processing): each estimate is its own magnitude, whatever the
    other sources' are. True (a variant) with several sources: the magnitudes ``S_j`` become masks
    ``S_j^2 / sum_k S_k^2`` on the mixture (Wiener-like, as Open-Unmix's ``softmask``; equal shares where every
    estimate is silent): the estimates sum to the mixture. ``model`` gives the ISTFT.
    """
    sources = list(magnitudes) if sources is None else list(sources)
    if ratio_masks and len(magnitudes) > 1:
        power = {s: m ** 2 + 1e-12 for s, m in magnitudes.items()}  # where every estimate is 0: equal shares
        total = sum(power.values())
        return {s: model.istft(power[s] / total * spec, length)[0] for s in sources}
    phase = spec / spec.abs().clamp_min(1e-10)
    return {s: model.istft(magnitudes[s] * phase, length)[0] for s in sources}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
