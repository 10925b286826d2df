"""Open-Unmix drum separation: a baseline of the separation study (:mod:`adt.separation.study`).

Model and inference come from the ``openunmix`` package (Stöter, Uhlich, Liutkus &
Mitsufuji, "Open-Unmix - A Reference Implementation for Music Source Separation",
JOSS 4(41):1667, 2019, doi:10.21105/joss.01667): :class:`openunmix.model.OpenUnmix`
is the spectrogram model (3-layer BiLSTM), :class:`openunmix.model.Separator` wraps it
with the STFT/ISTFT (:mod:`openunmix.transforms`) and the Wiener-filter step.

Two ways to get a drums model:

* :func:`load_pretrained` – openunmix's published ``umxl``/``umxhq`` drums weights
  (downloaded from Zenodo through ``torch.hub``; returns ``None`` offline).
* :func:`adt.separation.umx_train.train_drums_model` – a small Open-Unmix trained here
  on (mixture, drum stem) pairs, loaded with :func:`load_separator`.

Audio arrays are float32 ``(channels, samples)``; sample rates in Hz; durations in
seconds; SDR in dB.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
from pathlib import Path

import numpy as np
import torch

from adt.cpu import flush_denormals
from adt.audio import crossfaded_chunks, resample

logger = logging.getLogger(__name__)

TARGET = "drums"
MODEL_FORMAT = "adt-openunmix-drums/1"

# File names openunmix 1.3.0 gives the pretrained drums weights in the torch.hub
# cache (from the Zenodo URLs in openunmix/__init__.py). Only used to skip the
# network check when the weights are already cached.
_PRETRAINED_DRUMS_FILES = {
    "umxl": "drums-69e0ebd4.pth",
    "umxhq": "drums-9619578f.pth",
    "umx": "drums-5a48008b.pth",
}
_PRETRAINED_HOST = "zenodo.org"


@dataclasses.dataclass(frozen=True)
class SeparationConfig:
    """Size of the Open-Unmix drums model trained by :func:`adt.separation.umx_train.train_drums_model`.

    Open-Unmix's published models use ``n_fft=4096, n_hop=1024, hidden_size=512``
    (umxhq) or 1024 (umxl); this default is a CPU-sized version of the same network.

    Attributes:
        n_fft: STFT size in samples (Hann window of the same length).
        n_hop: STFT hop in samples.
        hidden_size: Open-Unmix bottleneck width (BiLSTM uses ``hidden_size // 2`` per
            direction).
        nb_layers: number of BiLSTM layers (Open-Unmix: 3).
        nb_channels: audio channels the model takes (2 = stereo, as Open-Unmix).
        sample_rate: model sample rate in Hz.
        bandwidth_hz: the model sees bins up to this frequency (Open-Unmix: 16 kHz);
            it still outputs all ``n_fft // 2 + 1`` bins.
        segment_s: length of the random training excerpts in seconds.
        batch_size: excerpts per training step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay (openunmix train.py default 1e-5).
        gain_low, gain_high: range of the random gain applied to each excerpt (the
            same gain to mixture and stem, as openunmix's ``_augment_gain``).
        channel_swap: randomly swap left/right of an excerpt (mixture and stem
            together), as openunmix's ``_augment_channelswap``.
    """

    n_fft: int = 2048
    n_hop: int = 512
    hidden_size: int = 128
    nb_layers: int = 3
    nb_channels: int = 2
    sample_rate: int = 44100
    bandwidth_hz: float = 16000.0
    segment_s: float = 4.0
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-5
    gain_low: float = 0.25
    gain_high: float = 1.25
    channel_swap: bool = True

    @property
    def nb_bins(self) -> int:
        """Number of STFT bins, ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @property
    def max_bin(self) -> int:
        """Number of bins below ``bandwidth_hz`` (openunmix ``bandwidth_to_max_bin``)."""
        from openunmix.utils import bandwidth_to_max_bin  # lazy: openunmix 22 ms at adt separate

        return int(bandwidth_to_max_bin(self.sample_rate, self.n_fft, self.bandwidth_hz))

    @classmethod
    def from_dict(cls, d: dict) -> "SeparationConfig":
        """Build from :func:`dataclasses.asdict` output, ignoring unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# --------------------------------------------------------------------------- pretrained


def _resolves(host: str, timeout_s: float) -> bool:
    """Whether ``host`` resolves within ``timeout_s`` (DNS lookups ignore socket timeouts)."""
    result: list[bool] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, 443)
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(result and result[0])


def load_pretrained(name: str = "umxl", device: str | torch.device = "cpu", timeout_s: float = 10.0):
    """Open-Unmix's pretrained drums model, or ``None`` when it cannot be loaded.

    ``name`` is an openunmix model: ``"umxl"`` (UMX-L, trained on ~400 h of private
    multitracks) or ``"umxhq"``/``"umx"`` (trained on MUSDB18-HQ/MUSDB18). Weights come
    from Zenodo through ``torch.hub`` (cached under ``torch.hub.get_dir()``). When they
    are not cached, the host is first resolved (at most ``timeout_s`` seconds) and the
    download runs with a socket timeout of ``timeout_s`` seconds, so this fails fast
    offline.

    Returns:
        An :class:`openunmix.model.Separator` with the single target ``"drums"``
        (n_fft 4096, hop 1024, 44100 Hz, ``niter=0``, ``residual=False``), frozen in eval
        mode; or ``None`` (a warning with the reason is logged) when the weights cannot be
        had.

    Raises:
        ValueError: ``name`` is not an openunmix pretrained model.
    """
    if name not in _PRETRAINED_DRUMS_FILES:
        raise ValueError(f"unknown Open-Unmix pretrained model {name!r}; expected one of {sorted(_PRETRAINED_DRUMS_FILES)}")
    import openunmix  # lazy: openunmix 31 ms at adt separate

    cached = Path(torch.hub.get_dir(), "checkpoints", _PRETRAINED_DRUMS_FILES[name]).is_file()
    if not cached and not _resolves(_PRETRAINED_HOST, timeout_s):
        logger.warning("pretrained Open-Unmix %r unavailable: %s does not resolve (offline?)", name, _PRETRAINED_HOST)
        return None
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        separator = getattr(openunmix, name)(targets=[TARGET], niter=0, residual=False, device=device)
    except Exception as exc:  # URLError, HTTPError, timeout, corrupt download, ...
        logger.warning("pretrained Open-Unmix %r unavailable: %s: %s", name, type(exc).__name__, exc)
        return None
    finally:
        socket.setdefaulttimeout(old_timeout)
    separator.freeze()
    return separator


# -------------------------------------------------------------------------------- model


def as_stereo(audio: np.ndarray, channels: int = 2) -> np.ndarray:
    """(channels, samples) -> (``channels``, samples): mono is duplicated, extra channels dropped."""
    if audio.ndim == 1:
        audio = audio[None]
    if audio.shape[0] == 1 and channels > 1:
        audio = np.repeat(audio, channels, axis=0)
    elif channels == 1 and audio.shape[0] > 1:
        audio = audio.mean(axis=0, keepdims=True)
    return np.ascontiguousarray(audio[:channels], dtype=np.float32)


def build_model(config: SeparationConfig, input_mean=None, input_scale=None):
    """An :class:`openunmix.model.OpenUnmix` of ``config`` (input mean/scale: openunmix's defaults if None)."""
    from openunmix.model import OpenUnmix  # lazy: openunmix 21 ms at adt separate

    return OpenUnmix(
        nb_bins=config.nb_bins,
        nb_channels=config.nb_channels,
        hidden_size=config.hidden_size,
        nb_layers=config.nb_layers,
        input_mean=input_mean,
        input_scale=input_scale,
        max_bin=config.max_bin,
    )


# ---------------------------------------------------------------------------- inference


def load_separator(model_path: Path | None, device: str | torch.device = "cpu"):
    """A trained drums model wrapped in :class:`openunmix.model.Separator`, ready to run.

    The separator has the single target ``"drums"``, ``residual=False`` and
    ``niter=0``: openunmix's EM/Wiener refinement needs at least two sources (it raises
    for one target without a residual), so the drum estimate is the model's magnitude
    with the mixture's phase. STFT size, hop, channels and sample rate come from the
    saved config; the separator is frozen in eval mode.

    Args:
        model_path: a file written by :func:`adt.separation.umx_train.train_drums_model`;
            ``None`` asks for the pretrained ``umxl`` drums model (:func:`load_pretrained`).
        device: torch device.

    Raises:
        FileNotFoundError: ``model_path`` does not exist (the message names it), or it is
            ``None`` and the pretrained weights cannot be loaded.
        ValueError: the file is not a model written by
            :func:`adt.separation.umx_train.train_drums_model`.
    """
    from openunmix.model import Separator  # lazy: openunmix 21 ms at adt separate

    if model_path is None:
        separator = load_pretrained("umxl", device=device)
        if separator is None:
            raise FileNotFoundError("no separation model path given and pretrained Open-Unmix umxl drums weights are unavailable")
        return separator
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: no such separation model file")
    try:
        payload = torch.load(model_path, map_location=device, weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
            raise ValueError(f"format is not {MODEL_FORMAT}")
        config = SeparationConfig.from_dict(payload["config"])
        model = build_model(config)
        model.load_state_dict(payload["state_dict"])
    except Exception as exc:
        raise ValueError(f"{model_path}: not a separation model ({exc})") from exc
    separator = Separator(
        target_models={TARGET: model},
        niter=0,
        residual=False,
        sample_rate=float(config.sample_rate),
        n_fft=config.n_fft,
        n_hop=config.n_hop,
        nb_channels=config.nb_channels,
    ).to(device)
    separator.freeze()
    return separator


def _separator_rate(separator) -> int:
    return int(round(float(separator.sample_rate)))


def _separator_n_fft(separator) -> int:
    return int(separator.stft.n_fft) if hasattr(separator.stft, "n_fft") else 4096


def separate_audio(
    separator, audio: np.ndarray, sample_rate: int, chunk_s: float = 30.0, overlap_s: float = 1.0
) -> np.ndarray:
    """Drum estimate of a mixture array.

    Args:
        separator: an :class:`openunmix.model.Separator` whose first target is drums.
        audio: mixture, (channels, samples) or (samples,); mono is duplicated to stereo,
            channels beyond two are dropped.
        sample_rate: of ``audio``, Hz; resampled to the separator's rate if different.
        chunk_s: the separator runs on chunks of at most this many seconds...
        overlap_s: ...overlapping by this many seconds, cross-faded linearly.

    Returns:
        float32 (2, n) drums at the separator's sample rate, where n is the mixture's
        length at that rate.
    """
    rate = _separator_rate(separator)
    audio = np.asarray(audio, dtype=np.float32)
    if sample_rate != rate:
        audio = resample(audio, sample_rate, rate)
    x = as_stereo(audio, 2)
    n = x.shape[1]
    min_len = _separator_n_fft(separator)  # reflect padding of the centred STFT needs this much
    if n < min_len:
        x = np.pad(x, ((0, 0), (0, min_len - n)))
    device = separator.sample_rate.device

    def drums(seg: np.ndarray) -> dict[str, np.ndarray]:
        return {"drums": separator(torch.from_numpy(seg)[None].to(device))[0, 0].cpu().numpy()}

    with torch.no_grad(), flush_denormals():
        out = crossfaded_chunks(drums, x, int(chunk_s * rate), int(overlap_s * rate), min_len)["drums"]
    return np.ascontiguousarray(out[:, :n])
