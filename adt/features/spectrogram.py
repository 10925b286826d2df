"""Input features at 100 fps: the log mel and the log-filtered spectrogram.

Two input features, chosen by name (:data:`FEATURE_TYPES`); both resample the
(mono) audio to 44.1 kHz first, so every dataset gives the same number of bins,
and both put frame t at t / 100 s:

* ``"log_mel"`` -- the tatum paper's log mel spectrogram (Sec. IV-A): STFT with
  a Hann window of 2048 samples (46 ms), hop 441 samples (10 ms = 100 fps), 80
  mel bands from 20 Hz to 20 kHz, magnitude, compressed with ln(1 + x).
  torchaudio ``MelSpectrogram`` (Slaney mel scale and norm), centred frames:
  ``1 + floor(samples / 441)`` frames.
* ``"log_filtered"`` -- the thesis's logarithmically filtered spectrogram
  (Fosse 2025, Sec. 5.1.1 "Audio Files"): STFT with 2048-point FFT and window,
  hop = sample rate / 100; a filterbank of 12 normalized triangular filters per
  octave centred on 440 Hz between 20 Hz and 20 kHz (filters that fall on the
  same FFT bin merged), 84 bins at 44.1 kHz; compressed with log10(1 + x).
  madmom ``LogarithmicFilteredSpectrogram`` with a ``LogarithmicFilterbank``
  (Hann window, frames centred on t * 441): ``ceil(samples / 441)`` frames.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from adt.audio import read_audio, resample

SAMPLE_RATE = 44100
FPS = 100
HOP = SAMPLE_RATE // FPS  # 441
N_FFT = 2048
N_MELS = 80
F_MIN, F_MAX = 20.0, 20000.0
#: Log-filtered spectrogram: bands per octave, reference frequency (Hz), bins at 44.1 kHz.
BANDS_PER_OCTAVE, F_REF, N_LOG_BINS = 12, 440.0, 84
#: Segment length of the shards and of training examples: 4 s.
SEGMENT_FRAMES = 400

FEATURE_TYPES = ("log_mel", "log_filtered")

#: Every parameter that shapes each feature type (part of the features cache key).
FEATURE_PARAMS: dict[str, dict] = {
    "log_mel": {"sample_rate": SAMPLE_RATE, "fps": FPS, "n_fft": N_FFT, "window": "hann", "n_bins": N_MELS,
                "f_min": F_MIN, "f_max": F_MAX, "mel_scale": "slaney", "norm": "slaney", "magnitude": "power 1",
                "compression": "ln(1+x)", "frames": "1+floor(n/hop)", "backend": "torchaudio"},
    "log_filtered": {"sample_rate": SAMPLE_RATE, "fps": FPS, "frame_size": N_FFT, "window": "hann",
                     "n_bins": N_LOG_BINS, "bands_per_octave": BANDS_PER_OCTAVE, "f_min": F_MIN, "f_max": F_MAX,
                     "f_ref": F_REF, "norm_filters": True, "unique_filters": True, "compression": "log10(1+x)",
                     "frames": "ceil(n/hop)", "backend": "madmom"},
}


def check_feature_type(feature_type: str) -> str:
    """``feature_type`` itself if known.

    Raises:
        ValueError: not one of :data:`FEATURE_TYPES`.
    """
    if feature_type not in FEATURE_TYPES:
        raise ValueError(f"unknown feature type {feature_type!r}; choose one of {FEATURE_TYPES}")
    return feature_type


def feature_params(feature_type: str) -> dict:
    """The parameters of ``feature_type`` (a copy of :data:`FEATURE_PARAMS`); raises ValueError if unknown."""
    return dict(FEATURE_PARAMS[check_feature_type(feature_type)])


def n_bins(feature_type: str) -> int:
    """Feature width F: 80 (log mel) or 84 (log filtered); the model's input size follows it."""
    return FEATURE_PARAMS[check_feature_type(feature_type)]["n_bins"]


_MEL = None
_LOG_FILTERBANK = None


def _mel_transform():
    global _MEL
    if _MEL is None:
        from torchaudio.transforms import MelSpectrogram  # lazy: torchaudio 23 ms at import pipelines

        _MEL = MelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=N_FFT, win_length=N_FFT, hop_length=HOP,
                              f_min=F_MIN, f_max=F_MAX, n_mels=N_MELS, power=1.0, center=True,
                              window_fn=torch.hann_window, norm="slaney", mel_scale="slaney")
    return _MEL


def _log_filterbank():
    """madmom's LogarithmicFilterbank over the 1024 FFT bins of a 2048-point frame at 44.1 kHz (84 filters)."""
    global _LOG_FILTERBANK
    if _LOG_FILTERBANK is None:
        # lazy: madmom 0.3 s at import pipelines
        from madmom.audio.filters import LogarithmicFilterbank
        from madmom.audio.stft import fft_frequencies

        fb = LogarithmicFilterbank(fft_frequencies(N_FFT // 2, SAMPLE_RATE), num_bands=BANDS_PER_OCTAVE,
                                   fmin=F_MIN, fmax=F_MAX, fref=F_REF, norm_filters=True, unique_filters=True)
        if fb.num_bands != N_LOG_BINS:
            raise RuntimeError(f"madmom LogarithmicFilterbank gave {fb.num_bands} bands, expected {N_LOG_BINS}")
        _LOG_FILTERBANK = fb
    return _LOG_FILTERBANK


def log_mel(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log mel spectrogram of mono audio (tatum paper, Sec. IV-A).

    Args:
        audio: (samples,) float, any sample rate in Hz (resampled to 44.1 kHz).

    Returns:
        float32 array (frames, 80), frames = 1 + floor(samples / 441) at 44.1 kHz,
        frame t centred at t / 100 s.
    """
    audio = resample(np.asarray(audio, dtype=np.float32), sample_rate, SAMPLE_RATE)
    with torch.no_grad():
        mel = _mel_transform()(torch.from_numpy(np.ascontiguousarray(audio)))
    return torch.log1p(mel).T.contiguous().numpy().astype(np.float32)


def log_filtered(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Logarithmically filtered log spectrogram of mono audio (thesis Sec. 5.1.1).

    2048-sample Hann frames every 441 samples at 44.1 kHz, 12 bands per octave
    centred on 440 Hz within 20 Hz - 20 kHz (madmom ``LogarithmicFilterbank``,
    normalized, unique filters), log10(1 + x).

    Args:
        audio: (samples,) float, any sample rate in Hz (resampled to 44.1 kHz).

    Returns:
        float32 array (frames, 84), frames = ceil(samples / 441) at 44.1 kHz
        (= ceil(duration_s * 100)), frame t centred at t / 100 s.

    Raises:
        ValueError: ``audio`` is not one-dimensional.
    """
    # lazy: madmom 0.2 s at import pipelines
    from madmom.audio.signal import Signal
    from madmom.audio.spectrogram import LogarithmicFilteredSpectrogram

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"log_filtered expects mono audio (samples,), got shape {audio.shape}")
    audio = resample(audio, sample_rate, SAMPLE_RATE)
    signal = Signal(np.ascontiguousarray(audio), sample_rate=SAMPLE_RATE, num_channels=1)
    spec = LogarithmicFilteredSpectrogram(signal, frame_size=N_FFT, hop_size=HOP, filterbank=_log_filterbank(),
                                          mul=1.0, add=1.0)
    return np.ascontiguousarray(spec, dtype=np.float32)


def compute_features(audio: np.ndarray, sample_rate: int, feature_type: str = "log_mel") -> np.ndarray:
    """``feature_type`` features of mono audio: (frames, :func:`n_bins`) float32 at 100 fps.

    Raises:
        ValueError: unknown ``feature_type``.
    """
    check_feature_type(feature_type)
    return log_mel(audio, sample_rate) if feature_type == "log_mel" else log_filtered(audio, sample_rate)


def features_file(path: str | os.PathLike, feature_type: str = "log_mel") -> np.ndarray:
    """:func:`compute_features` of an audio file (channels averaged).

    Raises:
        adt.audio.AudioReadError: missing or unreadable file (the message names it).
        ValueError: unknown ``feature_type``.
    """
    check_feature_type(feature_type)
    audio, sr = read_audio(path, mono=True)
    return compute_features(audio, sr, feature_type)


def model_features(model, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The features a trained model takes: its ``feature_type`` attribute (set by
    :func:`adt.frame.recipe.train_frame_model`), ``"log_mel"`` for models trained before it existed."""
    return compute_features(audio, sample_rate, getattr(model, "feature_type", "log_mel"))
