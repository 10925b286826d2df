"""Room, EQ, compression, gain and noise for rendered tracks (the corpus's augmentation).

Applied at render time, drawn per track from its seed (:func:`draw_effects`), not on the fly in
training: the pipeline computes each track's spectrogram once and trains from cached feature
shards (:mod:`adt.features.shards`), so an effect in the training loop would need the audio
there; at render time the drum stem, the mix and the separation targets carry the same drum
effects, the corpus is a cached artifact a person can listen to, and variety comes from rendering
each performance on several kits and seeds (``DataSettings.render_kits_per_track``).

- **Room** (:func:`room_impulse_responses`): a stereo room impulse response simulated with
  pyroomacoustics (MIT; image-source method in a shoebox room, absorption from the drawn RT60 by
  Sabine's formula, air absorption), two microphones 20 cm apart; the response is cut at its
  direct-path peak, so no onset moves, and mixed wet/dry.
- **EQ**: low shelf, peaking and high shelf biquads (R. Bristow-Johnson, *Audio EQ Cookbook*),
  run with ``scipy.signal.sosfilt``.
- **Compression**: a feed-forward compressor (RMS detector over 5 ms, threshold, ratio, make-up
  gain to the input's RMS; instant attack, 50-ms one-pole release). Thin numpy code: pedalboard
  does this in C++ but is GPL-3, our package is MIT. Peaks are then held by the renderers' one
  gain per track (drums and mix at most 0.9 full scale, never clipped).
- **Noise** (on the mix only, added by :func:`adt.data.corpus.render_track`): pink noise at a drawn SNR.

Every function takes and returns float32 audio of shape (channels, samples) in [-1, 1]-ish
floats at ``sample_rate`` Hz; lengths never change.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import fft, signal

#: Speed of sound in m/s (pyroomacoustics' default).
SOUND_SPEED = 343.0
#: Image-source reflection order cap (keeps a room at ~0.3 s of compute).
MAX_ORDER = 30


@dataclasses.dataclass(frozen=True)
class Effects:
    """One track's effect settings (see the module docstring for each stage).

    Attributes:
        room: (length, width, height) in metres, or None for no room.
        rt60_s: reverberation time of the room, seconds.
        wet: share of the reverberant signal, 0..1.
        eq_db: gains in dB of the low shelf (100 Hz), the peak (``eq_hz``, Q 1) and the high shelf (6 kHz).
        eq_hz: centre of the peaking filter, Hz.
        threshold_db, ratio: the compressor (ratio 1: off).
        gain_db: drum-bus gain in dB.
        snr_db: pink noise on the mix at this SNR (None: none).
    """

    room: tuple[float, float, float] | None = None
    rt60_s: float = 0.4
    wet: float = 0.0
    eq_db: tuple[float, float, float] = (0.0, 0.0, 0.0)
    eq_hz: float = 1000.0
    threshold_db: float = 0.0
    ratio: float = 1.0
    gain_db: float = 0.0
    snr_db: float | None = None


def draw_effects(rng: np.random.Generator) -> Effects:
    """Seeded effect settings of one track: a room for 80% of tracks (RT60 0.15-0.9 s, wet
    10-50%), EQ gains within +-6 dB, compression for 60% (threshold -30..-10 dB, ratio 2-6),
    gain -6..0 dB, noise at 25-50 dB SNR for half of the tracks."""
    room = (float(rng.uniform(3, 12)), float(rng.uniform(3, 10)), float(rng.uniform(2.4, 4.0)))
    return Effects(
        room=room if rng.random() < 0.8 else None,
        rt60_s=float(rng.uniform(0.15, 0.9)),
        wet=float(rng.uniform(0.1, 0.5)),
        eq_db=tuple(float(g) for g in rng.uniform(-6, 6, 3)),
        eq_hz=float(np.exp(rng.uniform(np.log(300), np.log(5000)))),
        threshold_db=float(rng.uniform(-30, -10)),
        ratio=float(rng.uniform(2, 6)) if rng.random() < 0.6 else 1.0,
        gain_db=float(rng.uniform(-6, 0)),
        snr_db=float(rng.uniform(25, 50)) if rng.random() < 0.5 else None,
    )


def rms(audio: np.ndarray) -> float:
    """Root mean square of ``audio`` (all channels)."""
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def room_impulse_responses(room: tuple[float, float, float], rt60_s: float, sample_rate: int,
                           rng: np.random.Generator) -> np.ndarray:
    """A stereo room impulse response (2, taps), starting at its direct-path peak, unit peak.

    Source and microphone pair are placed at random at least 0.5 m from the walls and 1 m apart. An
    ``rt60_s`` shorter than the room can have (Sabine, every wall fully absorbing) is raised to it.
    """
    import pyroomacoustics as pra  # lazy: pyroomacoustics 33 ms at adt transcribe --listen-kit h2:...

    dims = np.asarray(room, dtype=float)
    # Sabine: even walls absorbing everything give RT60 = 24 ln(10) V / (c S); a shorter one is raised to it
    volume, surface = float(np.prod(dims)), 2.0 * float(dims[0] * dims[1] + dims[0] * dims[2] + dims[1] * dims[2])
    rt60_s = max(float(rt60_s), 1.05 * 24 * np.log(10) * volume / (SOUND_SPEED * surface))
    absorption, order = pra.inverse_sabine(rt60_s, dims, c=SOUND_SPEED)
    pra_room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption),
                           max_order=int(min(order, MAX_ORDER)), air_absorption=True)
    while True:
        source = rng.uniform(0.5, dims - 0.5)
        centre = rng.uniform(0.6, dims - 0.6)
        if np.linalg.norm(source - centre) >= 1.0:
            break
    pra_room.add_source(source)
    mics = np.stack([centre - [0.1, 0, 0], centre + [0.1, 0, 0]], axis=1)
    pra_room.add_microphone_array(mics)
    pra_room.compute_rir()
    taps = min(len(r) for r in (pra_room.rir[0][0], pra_room.rir[1][0]))
    rir = np.stack([np.asarray(pra_room.rir[m][0][:taps]) for m in (0, 1)])
    start = int(np.argmax(np.abs(rir).max(axis=0)))  # the direct path
    rir = rir[:, start:]
    return (rir / np.abs(rir).max()).astype(np.float32)


def add_room(audio: np.ndarray, rir: np.ndarray, wet: float) -> np.ndarray:
    """``audio`` (2, n) through ``rir`` (2, taps), ``wet`` x reverberant + (1 - wet) x dry, same length.
    The reverberant part is scaled to the dry signal's energy."""
    reverb = np.stack([signal.fftconvolve(audio[c], rir[c])[:audio.shape[1]] for c in range(audio.shape[0])])
    dry_rms, wet_rms = rms(audio), rms(reverb)
    if wet_rms > 0:
        reverb *= dry_rms / wet_rms
    return ((1 - wet) * audio + wet * reverb).astype(np.float32)


def _biquad(kind: str, freq: float, gain_db: float, sample_rate: int, q: float = 0.707) -> np.ndarray:
    """One second-order section of the Audio EQ Cookbook (kind: lowshelf, peaking, highshelf)."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * min(freq, 0.45 * sample_rate) / sample_rate
    alpha, cos = np.sin(w0) / (2 * q), np.cos(w0)
    if kind == "peaking":
        b = [1 + alpha * a, -2 * cos, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos, 1 - alpha / a]
    else:
        sq = 2 * np.sqrt(a) * alpha
        sign = 1 if kind == "lowshelf" else -1
        b = [a * ((a + 1) - sign * (a - 1) * cos + sq), sign * 2 * a * ((a - 1) - sign * (a + 1) * cos),
             a * ((a + 1) - sign * (a - 1) * cos - sq)]
        den = [(a + 1) + sign * (a - 1) * cos + sq, -sign * 2 * ((a - 1) + sign * (a + 1) * cos),
               (a + 1) + sign * (a - 1) * cos - sq]
    return np.concatenate([np.asarray(b) / den[0], np.asarray(den) / den[0]])


def equalize(audio: np.ndarray, gains_db: tuple[float, float, float], peak_hz: float, sample_rate: int) -> np.ndarray:
    """Low shelf at 100 Hz, peaking filter at ``peak_hz`` (Q 1) and high shelf at 6 kHz, gains in dB."""
    sos = np.stack([_biquad("lowshelf", 100.0, gains_db[0], sample_rate),
                    _biquad("peaking", peak_hz, gains_db[1], sample_rate, q=1.0),
                    _biquad("highshelf", 6000.0, gains_db[2], sample_rate)])
    return signal.sosfilt(sos, audio, axis=-1).astype(np.float32)


def compress(audio: np.ndarray, threshold_db: float, ratio: float, sample_rate: int,
             release_s: float = 0.05) -> np.ndarray:
    """Feed-forward compression of ``audio`` (channels linked), make-up gain to the input's RMS."""
    if ratio <= 1:
        return audio
    power = np.mean(audio.astype(np.float64) ** 2, axis=0)
    pole = np.exp(-1 / (0.005 * sample_rate))
    level_db = 10 * np.log10(signal.lfilter([1 - pole], [1, -pole], power) + 1e-12)
    reduction_db = np.minimum(0.0, (threshold_db - level_db) * (1 - 1 / ratio))
    release = np.exp(-1 / (release_s * sample_rate))
    smoothed = signal.lfilter([1 - release], [1, -release], reduction_db)
    out = audio * (10 ** (np.minimum(smoothed, reduction_db) / 20))[None].astype(np.float32)
    rms_in, rms_out = rms(audio), rms(out)
    return (out * (rms_in / rms_out if rms_out > 0 else 1.0)).astype(np.float32)


def pink_noise(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise of ``shape`` (channels, samples), unit RMS."""
    n = fft.next_fast_len(shape[-1], real=True)  # an FFT-friendly length, cropped after
    spectrum = fft.rfft(rng.standard_normal((shape[0], n)), axis=-1)
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.shape[-1]), 1))[None]
    noise = fft.irfft(spectrum, n=n, axis=-1)[:, :shape[-1]]
    return (noise / max(rms(noise), 1e-12)).astype(np.float32)


def apply_drum_effects(drums: np.ndarray, effects: Effects, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """The drum bus of one track: room, EQ, compression, gain (stereo (2, n) in and out)."""
    out = np.asarray(drums, dtype=np.float32)
    if effects.room is not None and effects.wet > 0:
        out = add_room(out, room_impulse_responses(effects.room, effects.rt60_s, sample_rate, rng), effects.wet)
    out = equalize(out, effects.eq_db, effects.eq_hz, sample_rate)
    out = compress(out, effects.threshold_db, effects.ratio, sample_rate)
    return (out * 10 ** (effects.gain_db / 20)).astype(np.float32)
