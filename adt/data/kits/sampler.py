"""A sample-based drum renderer: drum MIDI played with a recorded Hydrogen kit.

Each drum note (GM percussion key) becomes an articulation (:data:`adt.data.kits.mapping.NOTE_ARTICULATION`),
played by one of the kit's pieces mapped to it (or a fallback articulation,
:data:`~adt.data.kits.mapping.FALLBACK`: a kit without a pedal hi-hat plays it closed);
the velocity picks the layer as Hydrogen does (:func:`adt.data.kits.hydrogen.choose_layer`,
round robin among equal layers), the level is velocity / 127 x layer gain x piece gain
(Hydrogen's, ``applyVelocity``), and the sample rings out (note-offs are ignored, as for
drums in General MIDI). Chokes: a hi-hat stroke cuts the ring of an earlier open hi-hat
(a closed or pedal hi-hat closes it), and pieces of one Hydrogen ``muteGroup`` cut each
other, each with a 10-ms fade. Samples are read with soundfile and resampled with
:func:`adt.audio.resample`; mono samples go to both channels.

A :class:`Variation` (drawn per track, :meth:`Variation.draw`) changes the kit for one track:
a piece family (kick, snare, toms, hi-hat, cymbals) swapped in from another kit of the same
split (mix-and-match), and per family a gain (+-4 dB), a pitch shift (+-1 semitone, by
resampling the sample: a tuned or detuned drum, decay scaled alike) and a constant-power pan
(+-0.5) and EQ (low and high shelves, +-4 dB); the drum bus of :mod:`adt.data.effects` then colours
the whole kit.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

from adt.audio import resample
from adt.data.effects import equalize
from adt.data.kits.hydrogen import HydrogenKit, Piece, choose_layer
from adt.data.kits.mapping import FALLBACK, NOTE_ARTICULATION, PIECES

#: Seconds of ring after the last note.
TAIL_S = 1.0
#: Fade applied where a voice is choked, seconds.
CHOKE_FADE_S = 0.01
HIHATS = ("hh_closed", "hh_pedal", "hh_open")
#: Piece families a :class:`Variation` changes together.
FAMILIES: dict[str, tuple[str, ...]] = {
    "kick": ("kick",), "snare": ("snare", "side_stick"), "toms": ("tom_low", "tom_mid", "tom_high"),
    "hihat": HIHATS, "cymbals": ("crash", "ride", "ride_bell"),
}
FAMILY_OF = {a: f for f, arts in FAMILIES.items() for a in arts}


@dataclasses.dataclass(frozen=True)
class Variation:
    """Per-track changes to a kit, per piece family (:data:`FAMILIES`).

    Attributes:
        gain_db, semitones, pan: family -> gain in dB, pitch shift in semitones, pan in -1..1.
        tilt_db: family -> (low shelf at 100 Hz, high shelf at 6 kHz) gains in dB (a piece's EQ).
        donors: family -> a kit whose pieces replace the family's pieces (mix-and-match).
    """

    gain_db: Mapping[str, float] = dataclasses.field(default_factory=dict)
    semitones: Mapping[str, float] = dataclasses.field(default_factory=dict)
    tilt_db: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    pan: Mapping[str, float] = dataclasses.field(default_factory=dict)
    donors: Mapping[str, HydrogenKit] = dataclasses.field(default_factory=dict)

    @classmethod
    def draw(cls, rng: np.random.Generator, donors: Sequence[HydrogenKit] = (), swap: float = 0.25) -> Variation:
        """Seeded variation: each family swapped in from a random donor kit with probability
        ``swap`` (only donors that have the family), gain +-4 dB, pitch +-1 semitone, pan +-0.5,
        shelves +-4 dB (in 0.5-dB steps, so the EQ'd samples cache well)."""
        chosen = {}
        for family, arts in FAMILIES.items():
            able = [k for k in donors if any(kit_pieces(k).get(a) for a in arts)]
            if able and rng.random() < swap:
                chosen[family] = able[int(rng.integers(len(able)))]
        return cls(gain_db={f: float(rng.uniform(-4, 4)) for f in FAMILIES},
                   semitones={f: float(rng.uniform(-1, 1)) for f in FAMILIES},
                   tilt_db={f: tuple(float(v) for v in np.round(rng.uniform(-4, 4, 2) * 2) / 2) for f in FAMILIES},
                   pan={f: float(rng.uniform(-0.5, 0.5)) for f in FAMILIES}, donors=chosen)


@functools.lru_cache(maxsize=512)
def _sample(path: Path, sample_rate: int) -> np.ndarray:
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (frames, channels)
    audio = audio.T[:2] if audio.shape[1] >= 2 else np.repeat(audio.T, 2, axis=0)
    return np.ascontiguousarray(resample(audio, sr, sample_rate), dtype=np.float32)


@functools.lru_cache(maxsize=2048)
def _shifted(path: Path, sample_rate: int, cents: int, tilt_db: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The sample played ``cents`` higher (read faster: linear interpolation), through low and high
    shelves of ``tilt_db`` (:func:`adt.data.effects.equalize`)."""
    audio = _sample(path, sample_rate)
    if cents:
        positions = np.arange(0, audio.shape[1] - 1, 2 ** (cents / 1200))
        audio = np.stack([np.interp(positions, np.arange(audio.shape[1]), c) for c in audio]).astype(np.float32)
    if any(tilt_db):
        audio = equalize(audio, (tilt_db[0], 0.0, tilt_db[1]), 1000.0, sample_rate)
    return audio


def kit_pieces(kit: HydrogenKit) -> dict[str, list[Piece]]:
    """Articulation -> the kit's pieces mapped to it (reviewed map of :mod:`adt.data.kits.mapping`;
    a kit drawn from a one-shot pool, :func:`adt.data.kits.oneshots.pool_kit`, names its pieces
    after their articulations).

    Raises:
        KeyError: a kit without a reviewed map.
    """
    if kit.name.startswith("pool:"):
        return {p.name: [p] for p in kit.pieces}
    try:
        mapping = PIECES[kit.folder.name]
    except KeyError:
        raise KeyError(f"{kit.folder.name}: no reviewed piece map in adt.data.kits.mapping.PIECES") from None
    out: dict[str, list[Piece]] = {}
    for piece in kit.pieces:
        if piece.name in mapping:
            out.setdefault(mapping[piece.name], []).append(piece)
    return out


def piece_for(articulation: str, pieces: dict[str, list[Piece]]) -> Piece | None:
    """The first piece for ``articulation``, else for its fallbacks, else None."""
    for a in (articulation, *FALLBACK.get(articulation, ())):
        if pieces.get(a):
            return pieces[a][0]
    return None


def render_kit(pm: pretty_midi.PrettyMIDI, kit: HydrogenKit, sample_rate: int = 44100,
               n_samples: int | None = None, variation: Variation | None = None) -> np.ndarray:
    """The drum notes of ``pm`` (instruments flagged ``is_drum``) played with ``kit``.

    Args:
        pm: the MIDI; notes outside the GM percussion map, or of an articulation the kit
            lacks (and has no fallback for), are silent.
        kit: a kit read with :func:`adt.data.kits.hydrogen.read_kit`.
        sample_rate: output rate in Hz.
        n_samples: output length; default (end of the last note + :data:`TAIL_S`) x sample_rate.
        variation: per-track changes (None: the kit as it is).

    Returns:
        float32 (2, samples), unclipped.

    Raises:
        KeyError: ``kit`` has no reviewed piece map.
    """
    variation = variation or Variation()
    pieces = kit_pieces(kit)
    for family, donor in variation.donors.items():
        donated = kit_pieces(donor)
        for a in FAMILIES[family]:
            pieces[a] = donated.get(a, [])
    notes = sorted((n for inst in pm.instruments if inst.is_drum for n in inst.notes), key=lambda n: n.start)
    if n_samples is None:
        n_samples = int(np.ceil(((notes[-1].start if notes else 0.0) + TAIL_S) * sample_rate))
    voices = []  # (start sample, articulation, piece, samples (2, n), gain)
    counters: dict[str, int] = {}
    for note in notes:
        articulation = NOTE_ARTICULATION.get(note.pitch)
        piece = piece_for(articulation, pieces) if articulation else None
        if piece is None or note.velocity <= 0:
            continue
        layer = choose_layer(piece, note.velocity, counters.get(piece.name, 0))
        counters[piece.name] = counters.get(piece.name, 0) + 1
        family = FAMILY_OF[articulation]
        cents = int(round(100 * variation.semitones.get(family, 0.0)))
        pan = variation.pan.get(family, 0.0)
        gain = note.velocity / 127 * layer.gain * piece.gain * 10 ** (variation.gain_db.get(family, 0.0) / 20)
        sides = np.array([[np.cos((pan + 1) * np.pi / 4)], [np.sin((pan + 1) * np.pi / 4)]], dtype=np.float32)
        voices.append((int(round(note.start * sample_rate)), articulation, piece,
                       _shifted(layer.path, sample_rate, cents, tuple(variation.tilt_db.get(family, (0.0, 0.0)))),
                       gain * sides * np.sqrt(2, dtype=np.float32)))
    out = np.zeros((2, n_samples), dtype=np.float32)
    fade = max(1, int(CHOKE_FADE_S * sample_rate))
    for i, (start, articulation, piece, audio, gain) in enumerate(voices):
        if start >= n_samples:
            continue
        end, choked = start + audio.shape[1], False
        for later, later_art, later_piece, _, _ in voices[i + 1:]:
            if later + fade >= end:
                break
            hihat_choke = articulation == "hh_open" and later_art in HIHATS
            group_choke = piece.mute_group >= 0 and later_piece.mute_group == piece.mute_group
            if later > start and (hihat_choke or group_choke):
                end, choked = later + fade, True
                break
        length = min(end, n_samples) - start
        voice = audio[:, :length] * gain
        if choked:  # fade out over the last CHOKE_FADE_S
            ramp = np.linspace(1.0, 0.0, min(fade, length), dtype=np.float32)
            voice[:, length - len(ramp):] *= ramp
        out[:, start:start + length] += voice
    return out
