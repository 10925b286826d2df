"""Tatum-level drum scores as MusicXML percussion staves, with partitura.

A score Y (5, M) (:mod:`adt.lm.scores`, tatum paper Sec. III-A: Y[k, m] = 1 when drum k
has an onset at tatum m) becomes one partitura :class:`~partitura.score.Part`: a
percussion clef, 4/4, the tempo of the beat grid, one tatum = one 16th note (4 tatums
per beat, as the paper's 16th-note grid). Each onset is a 16th
:class:`~partitura.score.UnpitchedNote` (MusicXML ``<unpitched>``) on the staff
position of the usual drum-set key (N. Weinberg, *Guide to Standardized Drumset
Notation*, Percussive Arts Society, 1998):

| class | staff position | notehead | voice | stem |
| ----- | -------------- | -------- | ----- | ---- |
| CY    | A5             | x        | 1     | up   |
| HH    | G5             | x        | 2     | up   |
| TT    | D5 (mid tom)   | normal   | 3     | up   |
| SD    | C5             | normal   | 4     | up   |
| BD    | F4             | normal   | 5     | down |

Each drum has its own voice, so simultaneous strokes never form a ``<chord/>``:
partitura 1.9's MusicXML reader fails on a ``<chord/>`` note after an unpitched note
(``AttributeError: ... is_grace_chord``; CPJKU/partitura PR #514 widens that guard).
Every voice is filled with rests to the end of each measure (whole-measure rests in
empty measures), so the measures re-load at the right positions. Written with
``partitura.save_musicxml``, read back with ``partitura.load_musicxml``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from adt.atomic import atomic_path
from adt.vocab import CLASSES_5

#: class -> (display step, display octave, notehead or None, voice, stem direction)
NOTATION: dict[str, tuple[str, int, str | None, int, str]] = {
    "CY": ("A", 5, "x", 1, "up"),
    "HH": ("G", 5, "x", 2, "up"),
    "TT": ("D", 5, None, 3, "up"),
    "SD": ("C", 5, None, 4, "up"),
    "BD": ("F", 4, None, 5, "down"),
}
TATUMS_PER_BEAT = 4  # one tatum = a 16th note; partitura "divisions" per quarter
BEATS_PER_BAR = 4  # 4/4
TATUMS_PER_BAR = TATUMS_PER_BEAT * BEATS_PER_BAR


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
        :class:`partitura.score.Part` with measures, a percussion clef, time signature,
        tempo, the notes and the rests filling every voice.

    Raises:
        ValueError: ``y`` not (5, M), ``tempo_bpm`` not positive, offset outside 0..15.
    """
    from partitura import score as ps

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

    part = ps.Part("P1", part_name=title, quarter_duration=TATUMS_PER_BEAT)
    part.add(ps.TimeSignature(BEATS_PER_BAR, 4), 0)
    part.add(ps.Clef(staff=1, sign="percussion", line=2, octave_change=0), 0)
    part.add(ps.Tempo(float(tempo_bpm), unit="q"), 0)
    for k, drum in enumerate(CLASSES_5):
        step, octave, head, voice, stem = NOTATION[drum]
        starts = offset_tatums + np.flatnonzero(y[k])
        for i, t in enumerate(starts):
            note = ps.UnpitchedNote(step=step, octave=octave, notehead=head, voice=voice, staff=1,
                                    stem_direction=stem, id=f"{drum}{i}")
            part.add(note, int(t), int(t) + 1)
        _add_rests(part, set(int(t) for t in starts), end, voice)
    ps.add_measures(part)
    return part


def _add_rests(part, occupied: set[int], end: int, voice: int) -> None:
    """Rests in every free 16th of ``voice``: a whole rest for an empty bar, else one
    rest per free run inside each beat (16th, 8th, dotted 8th or quarter)."""
    from partitura import score as ps

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


def write_musicxml(path: str | os.PathLike, y: np.ndarray, tempo_bpm: float, offset_tatums: int = 0,
                   title: str = "Drums") -> Path:
    """Write the score ``y`` as MusicXML (see :func:`drum_part`), atomically.

    Returns:
        ``path``.

    Raises:
        ValueError: as :func:`drum_part`.
    """
    import partitura

    part = drum_part(y, tempo_bpm, offset_tatums, title)
    with atomic_path(path, suffix=".musicxml") as tmp:
        partitura.save_musicxml(part, tmp)
    return Path(path)


def read_drum_musicxml(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The drum onsets of a MusicXML file written by :func:`write_musicxml`.

    Reads with ``partitura.load_musicxml``; unpitched notes are mapped back to classes
    by staff position (:data:`NOTATION`); other notes are ignored.

    Returns:
        class name -> sorted onset positions in 16th notes from the start of bar 1.

    Raises:
        FileNotFoundError: no such file.
        ValueError: partitura cannot parse it (the message names the file).
    """
    import partitura
    from partitura import score as ps

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MusicXML file")
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
