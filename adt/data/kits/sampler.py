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
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pretty_midi

from adt.data.kits.hydrogen import HydrogenKit, Piece, choose_layer
from adt.data.kits.mapping import FALLBACK, NOTE_ARTICULATION, PIECES

#: Seconds of ring after the last note.
TAIL_S = 1.0
#: Fade applied where a voice is choked, seconds.
CHOKE_FADE_S = 0.01
HIHATS = ("hh_closed", "hh_pedal", "hh_open")


@functools.lru_cache(maxsize=512)
def _sample(path: Path, sample_rate: int) -> np.ndarray:
    import soundfile as sf

    from adt.audio import resample

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (frames, channels)
    audio = audio.T[:2] if audio.shape[1] >= 2 else np.repeat(audio.T, 2, axis=0)
    return np.ascontiguousarray(resample(audio, sr, sample_rate), dtype=np.float32)


def kit_pieces(kit: HydrogenKit) -> dict[str, list[Piece]]:
    """Articulation -> the kit's pieces mapped to it (reviewed map of :mod:`adt.data.kits.mapping`).

    Raises:
        KeyError: a kit without a reviewed map.
    """
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
               n_samples: int | None = None) -> np.ndarray:
    """The drum notes of ``pm`` (instruments flagged ``is_drum``) played with ``kit``.

    Args:
        pm: the MIDI; notes outside the GM percussion map, or of an articulation the kit
            lacks (and has no fallback for), are silent.
        kit: a kit read with :func:`adt.data.kits.hydrogen.read_kit`.
        sample_rate: output rate in Hz.
        n_samples: output length; default (end of the last note + :data:`TAIL_S`) x sample_rate.

    Returns:
        float32 (2, samples), unclipped.

    Raises:
        KeyError: ``kit`` has no reviewed piece map.
    """
    pieces = kit_pieces(kit)
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
        voices.append((int(round(note.start * sample_rate)), articulation, piece, _sample(layer.path, sample_rate),
                       note.velocity / 127 * layer.gain * piece.gain))
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
