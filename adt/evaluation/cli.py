"""``adt evaluate``: score a transcription against a reference, onset by onset.

    adt evaluate REF PRED [--classes 3|5] [--window 0.05] [--json OUT]

The scorer of the benchmarks (:mod:`adt.metrics`, mir_eval): onsets of each drum class matched within
+-``--window`` seconds (default 0.05, i.e. +-50 ms) with ``mir_eval.util.match_events``, then P, R, F and
TP/FP/FN per class and the micro F-measure (counts summed over the classes before P, R, F). ``--classes 3``
scores BD, SD, HH (the tatum paper's vocabulary; TT and CY onsets are ignored), ``--classes 5`` (default)
all of :data:`adt.vocab.CLASSES_5`. Prints a table on stdout; ``--json OUT`` also writes the figures
(atomically, :func:`adt.atomic.write_json`).

REF and PRED are read by their suffix (:func:`read_onsets`), each as class -> onset times in seconds:

* ``.mid`` / ``.midi``: GM drum notes mapped to classes by :data:`adt.vocab.GM_TO_CLASS`
  (:func:`adt.midi.onsets_from_midi`; unmapped notes and velocity 0 dropped);
* ``.txt``: a text annotation, lines ``<time s> <label>``: MDB Drums class files (labels KD SD HH TT
  CY OT; :func:`adt.data.datasets.mdb.read_class_annotation`, :data:`~adt.data.datasets.mdb.CLASS_MAP`,
  OT dropped) or ENST-drums annotations (labels bd sd chh rc3 ...;
  :func:`adt.data.datasets.enst.annotation_onsets`). The dialect is the one that knows every label of
  the file (MDB labels are upper case, ENST labels lower case);
* ``.musicxml`` / ``.xml``: a score written by ``adt transcribe --musicxml``
  (:func:`adt.transcribe.musicxml.read_drum_musicxml`: onset positions in 16th notes from the start of
  bar 1). Rule: the file must give one tempo (``<sound tempo>``, quarter notes per minute; all
  ``<sound tempo>`` elements equal); position p becomes ``p * 60 / (4 * tempo)`` seconds, time 0 at the
  start of bar 1. This is score time: the file holds neither the beat grid nor where bar 1 starts in
  the audio (the transcriber's bar 1 starts within a beat of the audio's start), and its tempo is the
  median beat interval written as a whole number of BPM. Two MusicXML files compare note for note;
  against an audio-time reference only a steady tempo starting at 0 scores fairly (MDB
  MusicDelta_80sRock: 111 BPM written, about 109 played, the onsets leave the 50 ms window within a few
  bars). For the same grid in audio time score the ``--tatum`` MIDI file.

Exit status: 0 scored, 2 bad input: a missing file, an unknown suffix, a file that cannot be parsed,
annotation labels of neither dialect, a MusicXML file without one tempo, a file with no onset of any
drum class, a reference with no onset of the scored classes, a window that is not a positive number of
seconds, or a ``--json`` file in a missing folder or that cannot be written; the one-line message
names the file and the problem.
"""

from __future__ import annotations

import argparse
import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from adt.atomic import write_json
from adt.transcribe.musicxml import read_drum_musicxml
from adt.vocab import CLASSES_5, classes as vocabulary

MIDI_SUFFIXES = (".mid", ".midi")
MUSICXML_SUFFIXES = (".musicxml", ".xml")
ANNOTATION_SUFFIXES = (".txt",)
#: A MusicXML 16th note is a quarter note / 4 (:data:`adt.transcribe.musicxml.TATUMS_PER_BEAT`).
SIXTEENTHS_PER_QUARTER = 4


class EvaluateInputError(ValueError):
    """A file ``adt evaluate`` cannot score; the message names the file and the problem."""


def add_parser(sub) -> None:
    """The ``evaluate`` subcommand of ``adt`` (:mod:`adt.cli`)."""
    e = sub.add_parser("evaluate", help="onset P/R/F of a transcription against a reference (mir_eval, +-50 ms)")
    e.add_argument("reference", metavar="REF",
                   help="reference onsets: MIDI (.mid), MDB Drums or ENST-drums annotation (.txt), MusicXML")
    e.add_argument("prediction", metavar="PRED", help="transcription to score, same formats as REF")
    e.add_argument("--classes", type=int, choices=(3, 5), default=5,
                   help="3: BD SD HH (TT and CY ignored); 5: BD SD TT HH CY (default)")
    e.add_argument("--window", type=float, default=None,
                   help="onset matching tolerance in seconds, +- (default 0.05: adt.metrics.WINDOW_S)")
    e.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    e.set_defaults(run=run)


def _mdb_or_enst(path: Path) -> dict[str, np.ndarray]:
    """Onsets of a ``<time s> <label>`` annotation in the MDB Drums or ENST-drums dialect (module docstring)."""
    from adt.data.datasets import enst, mdb  # lazy: pandas 0.3 s at adt --help

    try:
        ann = mdb.read_class_annotation(path)  # the reader both datasets use
    except UnicodeDecodeError:
        raise EvaluateInputError(f"{path}: not a text annotation (expected '<time s> <label>' lines)") from None
    labels, mdb_labels = set(ann["label"]), set(mdb.CLASS_MAP) | {"OT"}
    if labels <= mdb_labels:
        drums = ann["label"].map(mdb.CLASS_MAP)  # OT -> NaN: dropped below
        return {c: ann.loc[drums == c, "time_s"].to_numpy(dtype=float) for c in CLASSES_5}
    enst_labels = {lab for lab in labels if enst.base_label(lab) in enst.LABELS}
    if labels == enst_labels:
        df = enst.annotation_onsets(path, path.name)
        return {c: df.loc[df.drum == c, "time_s"].to_numpy(dtype=float) for c in CLASSES_5}
    unknown = sorted(labels - mdb_labels - enst_labels)
    if unknown:
        raise EvaluateInputError(f"{path}: unknown labels {unknown[:8]}: neither MDB Drums classes "
                                 f"({', '.join(sorted(mdb_labels))}) nor ENST-drums labels (bd, sd, chh, rc3, ...)")
    raise EvaluateInputError(f"{path}: mixes MDB Drums labels {sorted(labels & mdb_labels)} and ENST-drums labels "
                             f"{sorted(enst_labels)}: one dialect per file")


def musicxml_tempo(path: Path) -> float:
    """The one tempo of a MusicXML file: its ``<sound tempo>`` (quarter notes per minute).

    Raises:
        EvaluateInputError: not XML, no ``<sound tempo>``, several different ones, or one that is not a
            positive number (names the file).
    """
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise EvaluateInputError(f"{path}: not XML ({exc})") from None
    values = {s.get("tempo") for s in tree.iter("sound") if s.get("tempo") is not None}
    if not values:
        raise EvaluateInputError(f"{path}: no tempo (<sound tempo>): cannot turn its 16th notes into seconds")
    try:
        tempi = {float(v) for v in values}
    except ValueError:
        raise EvaluateInputError(f"{path}: tempo {sorted(values)} is not a number") from None
    if len(tempi) > 1:
        raise EvaluateInputError(f"{path}: tempo changes ({', '.join(sorted(values))} BPM): only a score with "
                                 "one tempo can be converted to seconds")
    tempo = tempi.pop()
    if not math.isfinite(tempo) or tempo <= 0:
        raise EvaluateInputError(f"{path}: tempo {tempo} BPM is not positive")
    return tempo


def _musicxml(path: Path) -> dict[str, np.ndarray]:
    """Onsets (seconds from the start of bar 1) of a MusicXML drum score at its one tempo."""
    tempo = musicxml_tempo(path)  # first: a parse error names the file without partitura's traceback
    try:
        positions = read_drum_musicxml(path)
    except (FileNotFoundError, ValueError) as exc:
        raise EvaluateInputError(str(exc)) from None
    sixteenth_s = 60.0 / (SIXTEENTHS_PER_QUARTER * tempo)
    return {c: np.asarray(positions.get(c, []), dtype=float) * sixteenth_s for c in CLASSES_5}


def _midi(path: Path) -> dict[str, np.ndarray]:
    from adt.midi import load_midi, onsets_from_midi  # lazy: pretty_midi 29 ms at adt --help

    df = onsets_from_midi(load_midi(path), path.name)  # MidiReadError (a ValueError) names the file
    return {c: df.loc[df.drum == c, "time_s"].to_numpy(dtype=float) for c in CLASSES_5}


def read_onsets(path: str | Path) -> dict[str, np.ndarray]:
    """Drum onsets of a reference or transcription file, by suffix (module docstring).

    Returns:
        class name -> sorted onset times in seconds, every class of :data:`adt.vocab.CLASSES_5` present.

    Raises:
        EvaluateInputError: a missing file, an unknown suffix, a file that cannot be parsed (MIDI, MusicXML,
            malformed annotation lines), labels of neither annotation dialect, a MusicXML file without one
            tempo, no onset of any class; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise EvaluateInputError(f"{path}: " + ("is a folder, not a file" if path.is_dir() else "no such file"))
    suffix = path.suffix.lower()
    readers = {**dict.fromkeys(MIDI_SUFFIXES, _midi), **dict.fromkeys(MUSICXML_SUFFIXES, _musicxml),
               **dict.fromkeys(ANNOTATION_SUFFIXES, _mdb_or_enst)}
    if suffix not in readers:
        raise EvaluateInputError(f"{path}: unknown format {suffix or '(no suffix)'}; expected MIDI "
                                 f"({', '.join(MIDI_SUFFIXES)}), MusicXML ({', '.join(MUSICXML_SUFFIXES)}) or an "
                                 f"MDB Drums / ENST-drums annotation ({', '.join(ANNOTATION_SUFFIXES)})")
    try:
        onsets = readers[suffix](path)
    except EvaluateInputError:
        raise
    except OSError as exc:  # unreadable (permissions)
        raise EvaluateInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:  # MidiReadError, malformed annotation lines: they name the file
        raise EvaluateInputError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from None
    if not any(len(v) for v in onsets.values()):
        raise EvaluateInputError(f"{path}: no onsets of any drum class ({', '.join(CLASSES_5)})")
    return {c: np.sort(v) for c, v in onsets.items()}


def evaluate(reference: dict[str, np.ndarray], estimate: dict[str, np.ndarray], classes: tuple[str, ...],
             window_s: float | None = None) -> dict:
    """Onset figures of one transcription, with the benchmarks' scorer (:mod:`adt.metrics`, mir_eval).

    Args:
        reference, estimate: class name -> onset times (seconds).
        classes: the classes scored.
        window_s: matching tolerance, +- seconds (None: :data:`adt.metrics.WINDOW_S`, 0.05).

    Returns:
        ``{"micro": {f, p, r, tp, fp, fn}, "per_class": {class: {f, p, r, tp, fp, fn}}}``: micro from
        :func:`adt.metrics.micro_f_measure`, per class from :func:`~adt.metrics.match_counts` and
        :func:`~adt.metrics.prf` (0, never NaN, when nothing matches).
    """
    # lazy: mir_eval, scipy.signal 0.7 s at adt --help
    from adt.metrics import WINDOW_S, match_counts, micro_f_measure, prf

    window_s = WINDOW_S if window_s is None else window_s
    empty = np.array([])
    per_class = {c: prf(*match_counts(reference.get(c, empty), estimate.get(c, empty), window_s)) for c in classes}
    micro = micro_f_measure([reference], [estimate], classes=classes, window_s=window_s)
    return {"micro": {k: micro[k] for k in ("f", "p", "r", "tp", "fp", "fn")}, "per_class": per_class}


def table(figures: dict, classes: tuple[str, ...]) -> str:
    """The figures of :func:`evaluate` as a text table: one row per class, then the micro average; P, R, F
    shown as ``-`` for a class with no onset in either file (the JSON figures say 0 there, as
    :func:`adt.metrics.prf`)."""
    lines = [f"{'class':<6}{'P':>7}{'R':>7}{'F':>7}{'TP':>7}{'FP':>7}{'FN':>7}"]
    rows = [(c, figures["per_class"][c]) for c in classes] + [("micro", figures["micro"])]
    for name, m in rows:
        scores = "".join(f"{m[k]:7.3f}" if m["tp"] + m["fp"] + m["fn"] else f"{'-':>7}" for k in ("p", "r", "f"))
        lines.append(f"{name:<6}{scores}{m['tp']:7d}{m['fp']:7d}{m['fn']:7d}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``adt evaluate``; returns the exit status (0 scored, 2 bad input: the message names the file)."""
    from adt.metrics import WINDOW_S  # lazy: mir_eval, scipy.signal 0.7 s at adt --help

    if args.window is None:
        args.window = WINDOW_S
    if not (math.isfinite(args.window) and args.window > 0):
        print(f"adt: error: --window {args.window}: need a positive number of seconds (e.g. 0.05)", file=sys.stderr)
        return 2
    if args.json and (Path(args.json).is_dir() or not Path(args.json).resolve().parent.is_dir()):
        what = "is a folder, not a file" if Path(args.json).is_dir() else "no such folder"
        print(f"adt: error: --json {args.json}: {what}", file=sys.stderr)  # checked before any work
        return 2
    classes = vocabulary(args.classes)
    try:
        reference = read_onsets(args.reference)
        estimate = read_onsets(args.prediction)
    except EvaluateInputError as exc:
        print(f"adt: error: {exc}", file=sys.stderr)
        return 2
    if not any(len(reference[c]) for c in classes):
        print(f"adt: error: {args.reference}: no reference onsets of the scored classes ({', '.join(classes)})",
              file=sys.stderr)
        return 2
    for name in (args.reference, args.prediction):
        if Path(name).suffix.lower() in MUSICXML_SUFFIXES:
            print(f"adt evaluate: note: {name}: MusicXML onsets in score time (16th notes at the file's tempo, "
                  "0 s at the start of bar 1); the --tatum MIDI file holds the same grid in audio time",
                  file=sys.stderr)
    figures = evaluate(reference, estimate, classes, args.window)
    if args.json:
        try:
            write_json(args.json, {"reference": str(args.reference), "prediction": str(args.prediction),
                                   "classes": list(classes), "window_s": args.window, **figures})
        except OSError as exc:
            print(f"adt: error: cannot write {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    print(f"{args.prediction} vs {args.reference}: {len(classes)} classes, +-{args.window * 1000:g} ms (mir_eval)")
    print(table(figures, classes))
    return 0
