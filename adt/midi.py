"""Drum MIDI in and out, with pretty_midi.

Onsets are read from drum notes (any track flagged ``is_drum``, or any track when
none is) and mapped to the 5-class vocabulary with :data:`adt.vocab.GM_TO_CLASS`;
notes with velocity 0 and unmapped notes are dropped.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
import pretty_midi

from adt.atomic import atomic_path
from adt.vocab import EXPORT_NOTE, GM_TO_CLASS

if TYPE_CHECKING:  # pandas only where tables are built: `adt transcribe` starts faster without it
    import pandas as pd


class MidiReadError(ValueError):
    """A MIDI file is missing or cannot be parsed; the message names the file."""


def load_midi(path: str | os.PathLike) -> pretty_midi.PrettyMIDI:
    """Parse a MIDI file.

    Raises:
        MidiReadError: the file is missing or not a valid MIDI file.
    """
    path = Path(path)
    if not path.is_file():
        raise MidiReadError(f"{path}: no such MIDI file")
    try:
        return pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:
        raise MidiReadError(f"{path}: cannot parse MIDI ({exc})") from exc


def onsets_from_midi(pm: pretty_midi.PrettyMIDI, track_id: str, max_time_s: float | None = None) -> pd.DataFrame:
    """Drum onsets of a MIDI file as rows of the ``onsets`` table.

    Returns:
        DataFrame with columns track_id, time_s (seconds), drum (5-class name),
        label (GM note number as text), velocity (1..127), sorted by time.
    """
    instruments = [i for i in pm.instruments if i.is_drum] or pm.instruments
    rows = []
    for inst in instruments:
        for note in inst.notes:
            drum = GM_TO_CLASS.get(note.pitch)
            if drum is None or note.velocity == 0:
                continue
            if max_time_s is not None and note.start >= max_time_s:
                continue
            rows.append((track_id, float(note.start), drum, str(note.pitch), float(note.velocity)))
    import pandas as pd  # lazy: pandas 0.3 s at adt transcribe

    df = pd.DataFrame(rows, columns=["track_id", "time_s", "drum", "label", "velocity"])
    return df.sort_values(["time_s", "drum"], kind="stable").reset_index(drop=True)


def beats_from_midi(pm: pretty_midi.PrettyMIDI, track_id: str, end_time_s: float | None = None) -> pd.DataFrame:
    """Ground-truth beats from the MIDI tempo map and time signatures.

    Returns:
        DataFrame with columns track_id, time_s (seconds), position (beat in bar,
        1-based, from the time signature; 0 when unknown).
    """
    end = end_time_s if end_time_s is not None else pm.get_end_time()
    beats = pm.get_beats()
    downbeats = set(np.round(pm.get_downbeats(), 6))
    beats = beats[beats < end + 1e-9]
    position, rows = 0, []
    for b in beats:
        position = 1 if round(float(b), 6) in downbeats else (position + 1 if position else 0)
        rows.append((track_id, float(b), int(position)))
    import pandas as pd  # lazy: pandas 0.3 s at adt transcribe

    return pd.DataFrame(rows, columns=["track_id", "time_s", "position"])


def without_class(pm: pretty_midi.PrettyMIDI, drum_class: str) -> pretty_midi.PrettyMIDI:
    """A copy of ``pm`` without the drum notes of one class (GM notes mapping to ``drum_class`` by
    :data:`adt.vocab.GM_TO_CLASS`, in drum tracks, or every track when none is flagged ``is_drum``)."""
    out = copy.deepcopy(pm)
    drums = [i for i in out.instruments if i.is_drum] or out.instruments
    for inst in drums:
        inst.notes = [n for n in inst.notes if GM_TO_CLASS.get(n.pitch) != drum_class]
    return out


def write_drum_midi(path: str | os.PathLike, times_s: dict[str, np.ndarray], velocity: int = 100,
                    duration_s: float = 0.05, tempo_bpm: float = 120.0,
                    velocities: dict[str, np.ndarray] | None = None) -> Path:
    """Write onsets as a GM drum track (channel 10), atomically.

    Args:
        times_s: drum class name -> onset times in seconds; classes map to GM notes
            BD 36, SD 38, TT 47, HH 42, CY 49.
        velocity: MIDI velocity of every note, unless ``velocities`` gives one per onset.
        velocities: drum class name -> MIDI velocities (1-127) of its onsets, same order as ``times_s``.
    """
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo_bpm)
    inst = pretty_midi.Instrument(program=0, is_drum=True, name="Drums")
    for drum, times in times_s.items():
        times = np.asarray(times, dtype=float)
        vels = np.full(len(times), velocity) if velocities is None else np.asarray(velocities[drum])
        for t, v in zip(times, vels):
            inst.notes.append(pretty_midi.Note(velocity=int(np.clip(v, 1, 127)), pitch=EXPORT_NOTE[drum],
                                               start=float(t), end=float(t) + duration_s))
    inst.notes.sort(key=lambda n: (n.start, n.pitch))
    pm.instruments.append(inst)
    with atomic_path(path, suffix=".mid") as tmp:
        pm.write(str(tmp))
    return Path(path)
