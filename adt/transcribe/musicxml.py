"""Tatum-level drum scores as MusicXML percussion staves: partitura writes, xml.etree adds instruments.

A score Y (5, M) (:mod:`adt.lm.scores`, tatum paper Sec. III-A: Y[k, m] = 1 when drum k
has an onset at tatum m) becomes one partitura :class:`~partitura.score.Part`: a
percussion clef, 4/4, the tempo of the beat grid, one tatum = one 16th note (4 tatums
per beat, as the paper's 16th-note grid). Each onset is a 16th
:class:`~partitura.score.UnpitchedNote` (MusicXML ``<unpitched>``) on the staff
position of the usual drum-set key (N. Weinberg, *Guide to Standardized Drumset
Notation*, Percussive Arts Society, 1998), in two voices as drummers read them: the
hands up, the feet down; strokes of one voice at one tatum form a ``<chord/>``:

| class | staff position | notehead | voice     | stem | GM note (instrument) |
| ----- | -------------- | -------- | --------- | ---- | -------------------- |
| CY    | A5             | x        | 1 (hands) | up   | 49 Crash Cymbal 1    |
| HH    | G5             | x        | 1 (hands) | up   | 42 Closed Hi Hat     |
| TT    | D5 (mid tom)   | normal   | 1 (hands) | up   | 47 Low-Mid Tom       |
| SD    | C5             | normal   | 1 (hands) | up   | 38 Acoustic Snare    |
| BD    | F4             | normal   | 2 (feet)  | down | 36 Bass Drum 1       |

Both voices are filled with rests to the end of each measure (whole-measure rests in
empty measures), so the measures re-load at the right positions.

Who does what: ``partitura.save_musicxml`` writes the measures, notes, chords and rests;
partitura cannot express instruments, so :func:`add_instruments` (standard-library
``xml.etree``) adds one ``<score-instrument>``/``<midi-instrument>`` per drum to the part
list (MIDI channel 10, ``<midi-unpitched>`` = GM note + 1, MusicXML's 1-based numbering),
points each note's ``<instrument id>`` at its drum, and puts every note's children in the
order of the MusicXML schema (partitura 1.9 writes ``<notehead>`` and ``<stem>`` out of
it). ``partitura.load_musicxml`` reads the file back (:func:`read_drum_musicxml`); it
reads ``<unpitched>`` notes as :class:`~partitura.score.UnpitchedNote`, which
``Part.notes`` and ``note_array()`` leave out (they list pitched ``Note`` only): count
them with ``part.iter_all(partitura.score.UnpitchedNote)``. partitura 1.9's reader fails
on a ``<chord/>`` of unpitched notes; :func:`allow_unpitched_chords` mends that.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from adt.atomic import atomic_path
from adt.vocab import CLASSES_5, EXPORT_NOTE

HANDS_VOICE, FEET_VOICE = 1, 2
#: class -> (display step, display octave, notehead or None, voice, stem direction)
NOTATION: dict[str, tuple[str, int, str | None, int, str]] = {
    "CY": ("A", 5, "x", HANDS_VOICE, "up"),
    "HH": ("G", 5, "x", HANDS_VOICE, "up"),
    "TT": ("D", 5, None, HANDS_VOICE, "up"),
    "SD": ("C", 5, None, HANDS_VOICE, "up"),
    "BD": ("F", 4, None, FEET_VOICE, "down"),
}
#: class -> GM name of its note (:data:`adt.vocab.EXPORT_NOTE`), the ``<instrument-name>``
INSTRUMENT_NAME: dict[str, str] = {"BD": "Bass Drum 1", "SD": "Acoustic Snare", "TT": "Low-Mid Tom",
                                   "HH": "Closed Hi Hat", "CY": "Crash Cymbal 1"}
MIDI_CHANNEL = 10  # GM percussion (MusicXML channels are 1-based too)
TATUMS_PER_BEAT = 4  # one tatum = a 16th note; partitura "divisions" per quarter
BEATS_PER_BAR = 4  # 4/4
TATUMS_PER_BAR = TATUMS_PER_BEAT * BEATS_PER_BAR
PART_ID = "P1"
_DOCTYPE = ('<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 3.1 Partwise//EN" '
            '"http://www.musicxml.org/dtds/partwise.dtd">')
#: children of <note> in the order of the MusicXML 3.1 schema
_NOTE_CHILDREN = ("grace", "chord", "cue", "pitch", "unpitched", "rest", "duration", "tie", "instrument",
                  "footnote", "level", "voice", "type", "dot", "accidental", "time-modification", "stem",
                  "notehead", "notehead-text", "staff", "beam", "notations", "lyric", "play", "listen")


def instrument_id(drum: str, part_id: str = PART_ID) -> str:
    """The ``<score-instrument>``/``<midi-instrument>`` id of class ``drum``, e.g. ``"P1-BD"``."""
    return f"{part_id}-{drum}"


def allow_unpitched_chords() -> None:
    """Let ``partitura.load_musicxml`` (1.9) read a ``<chord/>`` of unpitched notes.

    Its reader reads ``prev_note.is_grace_chord`` of the note before a ``<chord/>``
    note, an attribute only pitched ``Note`` has, so any drum chord raised
    ``AttributeError`` (CPJKU/partitura PR #514 widens that guard upstream). This gives
    :class:`~partitura.score.UnpitchedNote` the attribute's default (False), so the chord
    note takes the previous note's onset and duration as for pitched chords. Process
    wide, idempotent, a no-op on a partitura that has the attribute; called by
    :func:`write_musicxml` and :func:`read_drum_musicxml`.
    """
    from partitura import score as ps  # lazy: partitura 1.4 s at adt --help

    if not hasattr(ps.UnpitchedNote, "is_grace_chord"):
        ps.UnpitchedNote.is_grace_chord = False


def drum_part(y: np.ndarray, tempo_bpm: float, offset_tatums: int = 0, title: str = "Drums"):
    """A partitura Part holding the score ``y`` in 4/4, one tatum per 16th note.

    Args:
        y: (K, M) score, K = 5 rows in ``adt.vocab.CLASSES_5`` order (BD, SD, TT, HH,
            CY); nonzero = onset. Column m is the 16th at ``offset_tatums + m`` from the
            start of bar 1.
        tempo_bpm: quarter notes per minute (written as ``<sound tempo>``).
        offset_tatums: rests before column 0 (0..15), e.g. to start bar 1 on a beat.
        title: the part name.

    Returns:
        :class:`partitura.score.Part` (id :data:`PART_ID`) with measures, a percussion
        clef, time signature, tempo, the notes (voices and stems of :data:`NOTATION`) and
        the rests filling both voices. No instruments: :func:`write_musicxml` adds them.

    Raises:
        ValueError: ``y`` not (5, M), ``tempo_bpm`` not positive, offset outside 0..15.
    """
    from partitura import score as ps  # lazy: partitura 1.4 s at adt --help

    y = np.asarray(y)
    if y.ndim != 2 or y.shape[0] != len(CLASSES_5):
        raise ValueError(f"score must have shape (5, M) (rows {CLASSES_5}), got {y.shape}")
    if not np.isfinite(tempo_bpm) or tempo_bpm <= 0:
        raise ValueError(f"tempo_bpm must be positive, got {tempo_bpm}")
    if not 0 <= offset_tatums < TATUMS_PER_BAR:
        raise ValueError(f"offset_tatums must lie in 0..{TATUMS_PER_BAR - 1}, got {offset_tatums}")
    total = offset_tatums + y.shape[1]
    n_bars = max(1, -(-total // TATUMS_PER_BAR))
    end = n_bars * TATUMS_PER_BAR

    part = ps.Part(PART_ID, part_name=title, quarter_duration=TATUMS_PER_BEAT)
    part.add(ps.TimeSignature(BEATS_PER_BAR, 4), 0)
    part.add(ps.Clef(staff=1, sign="percussion", line=2, octave_change=0), 0)
    part.add(ps.Tempo(float(tempo_bpm), unit="q"), 0)
    occupied: dict[int, set[int]] = {HANDS_VOICE: set(), FEET_VOICE: set()}
    for k, drum in enumerate(CLASSES_5):
        step, octave, head, voice, stem = NOTATION[drum]
        starts = offset_tatums + np.flatnonzero(y[k])
        for i, t in enumerate(starts):
            note = ps.UnpitchedNote(step=step, octave=octave, notehead=head, voice=voice, staff=1,
                                    stem_direction=stem, id=f"{drum}{i}")
            part.add(note, int(t), int(t) + 1)  # same onset and duration in a voice: partitura writes a chord
        occupied[voice].update(int(t) for t in starts)
    for voice, tatums in occupied.items():
        _add_rests(part, tatums, end, voice)
    ps.add_measures(part)
    return part


def _add_rests(part, occupied: set[int], end: int, voice: int) -> None:
    """Rests in every free 16th of ``voice``: a whole rest for an empty bar, else one
    rest per free run inside each beat (16th, 8th, dotted 8th or quarter)."""
    from partitura import score as ps  # lazy: partitura 1.4 s at adt --help

    for bar in range(0, end, TATUMS_PER_BAR):
        if not occupied.intersection(range(bar, bar + TATUMS_PER_BAR)):
            part.add(ps.Rest(voice=voice, staff=1), bar, bar + TATUMS_PER_BAR)
            continue
        for beat in range(bar, bar + TATUMS_PER_BAR, TATUMS_PER_BEAT):
            start = None
            for t in range(beat, beat + TATUMS_PER_BEAT + 1):
                free = t < beat + TATUMS_PER_BEAT and t not in occupied
                if free and start is None:
                    start = t
                elif not free and start is not None:
                    part.add(ps.Rest(voice=voice, staff=1), start, t)
                    start = None


def add_instruments(root: ET.Element) -> None:
    """Give the drum part of a partitura-written ``<score-partwise>`` its instruments, in place.

    Per class of :data:`NOTATION`: a ``<score-instrument>`` (GM name) and a
    ``<midi-instrument>`` (channel :data:`MIDI_CHANNEL`, ``<midi-unpitched>`` = GM note of
    :data:`adt.vocab.EXPORT_NOTE` + 1) in the ``<score-part>``; each ``<unpitched>`` note
    gets ``<instrument id>`` of the class on its staff position. Every note's children are
    put in schema order.

    Raises:
        ValueError: no ``<score-part>`` with id :data:`PART_ID`, or an unpitched note on a
            staff position no class uses.
    """
    score_part = root.find(f"part-list/score-part[@id='{PART_ID}']")
    if score_part is None:
        raise ValueError(f"no <score-part id={PART_ID!r}> in the MusicXML")
    for drum in CLASSES_5:  # schema: score-instrument*, then midi-instrument*
        inst = ET.SubElement(score_part, "score-instrument", id=instrument_id(drum))
        ET.SubElement(inst, "instrument-name").text = INSTRUMENT_NAME[drum]
    for drum in CLASSES_5:
        midi = ET.SubElement(score_part, "midi-instrument", id=instrument_id(drum))
        ET.SubElement(midi, "midi-channel").text = str(MIDI_CHANNEL)
        ET.SubElement(midi, "midi-unpitched").text = str(EXPORT_NOTE[drum] + 1)
    by_position = {(step, octave): drum for drum, (step, octave, *_rest) in NOTATION.items()}
    rank = {tag: i for i, tag in enumerate(_NOTE_CHILDREN)}
    for note in root.iter("note"):
        unpitched = note.find("unpitched")
        if unpitched is not None:
            position = (unpitched.findtext("display-step"), int(unpitched.findtext("display-octave")))
            if position not in by_position:
                raise ValueError(f"unpitched note at {position} matches no drum of {CLASSES_5}")
            ET.SubElement(note, "instrument", id=instrument_id(by_position[position]))
        children = sorted(note, key=lambda e: rank.get(e.tag, len(rank)))  # stable: chord notes keep order
        for child in list(note):
            note.remove(child)
        note.extend(children)


def write_musicxml(path: str | os.PathLike, y: np.ndarray, tempo_bpm: float, offset_tatums: int = 0,
                   title: str = "Drums") -> Path:
    """Write the score ``y`` as MusicXML (see :func:`drum_part`), atomically.

    partitura writes the part; :func:`add_instruments` (xml.etree) adds the drums' score
    and MIDI instruments before the file appears under ``path``.

    Returns:
        ``path``.

    Raises:
        ValueError: as :func:`drum_part`.
    """
    import partitura  # lazy: partitura 1.4 s at adt --help

    allow_unpitched_chords()
    part = drum_part(y, tempo_bpm, offset_tatums, title)
    root = ET.fromstring(partitura.save_musicxml(part))  # bytes; comments and DOCTYPE dropped
    add_instruments(root)
    ET.indent(root, space="  ")
    with atomic_path(path, suffix=".musicxml") as tmp:
        with open(tmp, "wb") as f:
            f.write(b'<?xml version="1.0" encoding="UTF-8"?>\n' + _DOCTYPE.encode() + b"\n")
            f.write(ET.tostring(root, encoding="utf-8"))
            f.write(b"\n")
    return Path(path)


def read_drum_musicxml(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The drum onsets of a MusicXML file written by :func:`write_musicxml`.

    Reads with ``partitura.load_musicxml`` (after :func:`allow_unpitched_chords`);
    unpitched notes are mapped back to classes by staff position (:data:`NOTATION`);
    other notes are ignored.

    Returns:
        class name -> sorted onset positions in 16th notes (tatums) from the start of bar 1.

    Raises:
        FileNotFoundError: no such file.
        ValueError: partitura cannot parse it (the message names the file).
    """
    # lazy: partitura 1.4 s at adt --help
    import partitura
    from partitura import score as ps

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MusicXML file")
    allow_unpitched_chords()
    try:
        loaded = partitura.load_musicxml(path)
    except Exception as exc:
        raise ValueError(f"{path}: cannot parse MusicXML ({exc})") from exc
    by_position = {(step, octave): drum for drum, (step, octave, *_rest) in NOTATION.items()}
    out: dict[str, list[int]] = {c: [] for c in CLASSES_5}
    for part in loaded.parts:
        for note in part.iter_all(ps.UnpitchedNote):
            drum = by_position.get((note.step, note.octave))
            if drum is not None:  # start.t is in divisions, start.quarter = divisions per quarter
                out[drum].append(int(round(note.start.t * TATUMS_PER_BEAT / note.start.quarter)))
    return {c: np.array(sorted(v), dtype=np.int64) for c, v in out.items()}
