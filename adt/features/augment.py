"""Training-time augmentation in feature space: random gain and a random spectral shape.

Why (issue 26, measured with the shipped renders-only model on the 9 real MDB Drums songs): its hi-hat
detection hangs on the energy above 8-11 kHz and its bass drum on the energy under 200 Hz. The rendered
kits' hats are bright; a real, darker hat is missed:

| input (MDB drum-only / real mix, 3-class micro F) | F | HH F | BD F |
|---|---|---|---|
| as recorded | 0.878 / 0.654 | 0.804 / 0.710 | 0.969 / 0.698 |
| low-pass 16 kHz | 0.884 / 0.650 | 0.812 / 0.705 | 0.968 / 0.693 |
| 22.05 kHz audio (nothing above 11 kHz) | 0.794 / 0.486 | 0.554 / 0.151 | 0.969 / 0.678 |
| low-pass 8 kHz | 0.671 / 0.336 | **0.000 / 0.000** | 0.973 / 0.593 |
| high-pass 200 Hz | 0.581 / 0.482 | 0.797 / 0.680 | **0.000 / 0.000** |
| gain x16 (+24 dB) | 0.810 / 0.513 | 0.785 / 0.714 | 0.959 / 0.302 |

So the cause is in the data: every training hat has the same top octave. The fix is to train on hats
(and kicks, and whole mixes) whose spectral envelope and level vary far more than the renders' do.

Both input features are a compressed magnitude: ``log_mel`` = ln(1 + M), ``log_filtered`` =
log10(1 + M) (:mod:`adt.features.spectrogram`), M linear in the audio's amplitude per band. A gain g
and a linear filter with magnitude response H(f) give M' = g H(f_b) M in band b (exact for the gain;
for the filter up to H's variation within a band), so a segment is augmented as
x' = compress(g H expand(x)) without touching the audio. Per segment, independently:

* gain: uniform in [-``gain_db``, +``gain_db``] dB (issue 26: at least +-20 dB);
* a spectral shape (:data:`SHAPES`; ``"mild"``): a low-pass (probability 0.5), Butterworth magnitude
  1 / sqrt(1 + (f / fc)^(2n)), fc log-uniform in 3-16 kHz, order n uniform in 1-4 (6-24 dB per octave);
  a high-pass (probability 0.3), 1 / sqrt(1 + (fc / f)^(2n)), fc log-uniform in 40-250 Hz, n in 1-4; a
  tilt uniform in +-3 dB per octave around 1 kHz. ``"strong"``: low-pass with probability 0.6 at 2-16 kHz
  and high-pass with probability 0.4 at 40-300 Hz, orders 1-8 (up to 48 dB per octave), tilt +-4 dB.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from adt.features import spectrogram as sp

#: Spectral shapes by name (module docstring): low-pass and high-pass probability and cutoff range (Hz),
#: Butterworth orders, tilt range (+-dB per octave around 1 kHz).
SHAPES: dict[str, dict] = {
    "mild": {"lowpass": (0.5, 3000.0, 16000.0), "highpass": (0.3, 40.0, 250.0), "orders": (1, 4), "tilt_db": 3.0},
    "strong": {"lowpass": (0.6, 2000.0, 16000.0), "highpass": (0.4, 40.0, 300.0), "orders": (1, 8), "tilt_db": 4.0},
}


@functools.cache
def band_frequencies(feature_type: str) -> np.ndarray:
    """Centre frequency (Hz) of every band of ``feature_type``: (F,) float64.

    ``log_mel``: the centroid of each Slaney mel filter of torchaudio's filterbank (the one
    :func:`adt.features.spectrogram.log_mel` uses); ``log_filtered``: madmom's
    ``LogarithmicFilterbank.center_frequencies``.

    Raises:
        ValueError: an unknown feature type.
    """
    sp.check_feature_type(feature_type)
    if feature_type == "log_filtered":
        return np.asarray(sp._log_filterbank().center_frequencies, dtype=np.float64)
    from torchaudio.functional import melscale_fbanks  # lazy: torchaudio 22 ms at import pipelines

    fb = melscale_fbanks(sp.N_FFT // 2 + 1, sp.F_MIN, sp.F_MAX, sp.N_MELS, sp.SAMPLE_RATE, norm="slaney",
                         mel_scale="slaney").numpy()  # (bins, bands)
    freqs = np.linspace(0, sp.SAMPLE_RATE / 2, sp.N_FFT // 2 + 1)
    return (fb * freqs[:, None]).sum(0) / np.maximum(fb.sum(0), 1e-12)


def _expand(x: torch.Tensor, feature_type: str) -> torch.Tensor:
    return torch.expm1(x) if feature_type == "log_mel" else torch.pow(10.0, x) - 1.0


def _compress(m: torch.Tensor, feature_type: str) -> torch.Tensor:
    return torch.log1p(m) if feature_type == "log_mel" else torch.log10(1.0 + m)


def spectral_gains(batch: int, freqs: np.ndarray, generator: torch.Generator, gain_db: float = 20.0,
                   shape: str | None = "mild") -> torch.Tensor:
    """Random linear multipliers per segment and band (module docstring): (batch, 1, F) float32.

    Raises:
        ValueError: ``shape`` not None nor a name in :data:`SHAPES`.
    """

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(batch, 1, generator=generator, dtype=torch.float64)

    if shape and shape not in SHAPES:
        raise ValueError(f"unknown spectral shape {shape!r}; choose one of {list(SHAPES)}")
    f = torch.from_numpy(np.maximum(freqs, 1.0))[None, :]  # (1, F)
    db = uniform(-gain_db, gain_db).expand(batch, f.shape[1]).clone()
    if shape:
        spec = SHAPES[shape]
        octaves = torch.log2(f / 1000.0)
        db += uniform(-spec["tilt_db"], spec["tilt_db"]) * octaves
        lo_order, hi_order = spec["orders"]
        for (p, lo, hi), low in ((spec["lowpass"], True), (spec["highpass"], False)):
            on = torch.rand(batch, 1, generator=generator, dtype=torch.float64) < p
            fc = torch.exp(uniform(np.log(lo), np.log(hi)))
            n = torch.randint(lo_order, hi_order + 1, (batch, 1), generator=generator).double()
            ratio = f / fc if low else fc / f
            db += torch.where(on, -10.0 * torch.log10(1.0 + ratio ** (2 * n)), torch.zeros_like(db))
    return (10.0 ** (db / 20.0)).float().unsqueeze(1)


def augment_features(x: torch.Tensor, feature_type: str, generator: torch.Generator, gain_db: float = 20.0,
                     shape: str | None = "mild") -> torch.Tensor:
    """A batch of feature segments with a random gain and spectral shape each (module docstring).

    Args:
        x: (B, T, F) ``feature_type`` features (ln(1+M) or log10(1+M)).
        generator: the random source (seeded by the training loop: reproducible).
        gain_db: gain range, +-dB (0: no gain change).
        shape: also a random low-pass, high-pass and tilt of these ranges (:data:`SHAPES`; None: gain only).

    Returns:
        (B, T, F) float32, the same feature type.

    Raises:
        ValueError: an unknown feature type or shape, or F other than its band count.
    """
    freqs = band_frequencies(feature_type)
    if x.shape[-1] != len(freqs):
        raise ValueError(f"{feature_type} has {len(freqs)} bands, the batch {x.shape[-1]}")
    gains = spectral_gains(x.shape[0], freqs, generator, gain_db, shape)
    return _compress(_expand(x, feature_type).clamp_min(0.0) * gains, feature_type)
