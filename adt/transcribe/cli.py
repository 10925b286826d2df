"""``adt transcribe`` on the command line.

    adt transcribe IN [IN ...] -o OUT [--model URI|FILE.pt|lite] [--threshold T] [--tatum] [--subdivisions N]
                   [--musicxml PATH] [--no-separation] [--device cpu|cuda]

``IN``: audio files or folders (their audio files, not recursive). With one input file, ``OUT`` is the
MIDI file (``.mid``) unless it is a folder; with several, ``OUT`` is a folder (created) that gets
``<name>.mid`` per input and ``--musicxml`` a folder for ``<name>.musicxml``. The model is loaded
once. Default model: the registry's champion when this data folder has one, else the model shipped
with the package (:func:`adt.transcribe.transcriber.load_transcriber`).

Exit status: 0 done, 2 bad input or output (missing/unreadable audio or audio with NaN/inf
samples, an output path in a missing or read-only folder (checked before any work), two inputs with
one output name, a write that fails (disk full), no model, CUDA asked for but unavailable, no beats
found for tatum output, MusicXML with other than 4 tatums per beat). With several inputs, a bad
one is reported and skipped, the others are transcribed, and the status is 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from adt.config import Settings

#: Audio file suffixes taken from an input folder.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")


def add_parser(sub) -> None:
    """The ``transcribe`` subcommand of ``adt`` (:mod:`adt.cli`)."""
    t = sub.add_parser("transcribe", help="audio file -> GM drum MIDI (36 BD, 38 SD, 47 TT, 42 HH, 49 CY)")
    t.add_argument("audio", nargs="+", help="input audio files (WAV, FLAC, ...) or folders of them")
    t.add_argument("-o", "--output", required=True,
                   help="output MIDI file (one input) or folder (several inputs, or an existing folder)")
    t.add_argument("--model", help="MLflow model URI, checkpoint .pt, or lite (the trimmed transcriber: "
                                    "adt-frame-crnn@lite, else the one shipped with adt); default: the registry's champion, "
                                    "else its latest adt-frame-crnn, else the model shipped with adt")
    t.add_argument("--threshold", type=float, default=None,
                   help="peak-picking delta with the tatum paper's windows (default: the model's own peak "
                        "picking, its floors tuned on validation)")
    t.add_argument("--tatum", action="store_true",
                   help="snap onsets to the tatum grid of madmom beats (--subdivisions tatums per beat)")
    t.add_argument("--subdivisions", type=int, default=Settings().tatum_subdivisions,
                   help="tatums per beat of the grid: 4 (16th notes, default), or 3 / 6 for triplet feels")
    t.add_argument("--musicxml", metavar="PATH",
                   help="also write the tatum-quantized score as MusicXML (4/4): a file, or a folder with "
                        "several inputs")
    t.add_argument("--no-separation", action="store_true",
                   help="skip drum separation (only models trained on separated drums use it; the shipped "
                        "model hears the audio as it is)")
    t.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device (default cpu)")
    t.set_defaults(run=run)


def unwritable(path: str | None) -> str | None:
    """Why ``path`` cannot be written (a missing or read-only folder, a folder in its place), or None."""
    if path is None:
        return None
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        return f"{path}: is a folder, not a file"
    if not target.parent.is_dir():
        return f"{path}: no such folder {target.parent}"
    if not os.access(target.parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        return f"{path}: not writable (permissions of {target.parent})"
    return None


def jobs(inputs: list[str], output: str, musicxml: str | None) -> tuple[list[tuple[str, str, str | None]], str | None]:
    """(audio, MIDI path, MusicXML path or None) per input file, or a problem (folders expanded)."""
    files: list[str] = []
    for name in inputs:
        if Path(name).is_dir():
            found = sorted(str(p) for p in Path(name).iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                return [], f"{name}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder"
            files += found
        else:
            files.append(name)
    single = len(files) == 1 and len(inputs) == 1 and not Path(output).is_dir()
    if single:
        return [(files[0], output, musicxml)], None
    out, names = Path(output), {}
    for f in files:
        stem = Path(f).stem
        if stem in names:
            return [], f"{names[stem]} and {f} would both write {out / (stem + '.mid')}"
        names[stem] = f
    return [(f, str(out / f"{Path(f).stem}.mid"),
             str(Path(musicxml) / f"{Path(f).stem}.musicxml") if musicxml else None) for f in files], None


def run(args: argparse.Namespace) -> int:
    """Run ``adt transcribe``; returns the exit status (2: bad input or output, no model)."""
    from adt.audio import AudioReadError

    if args.subdivisions < 1 or (args.musicxml and args.subdivisions != 4):
        print(f"adt: error: --subdivisions {args.subdivisions}: need >= 1, and 4 (16th notes) with --musicxml",
              file=sys.stderr)
        return 2
    todo, problem = jobs(args.audio, args.output, args.musicxml)
    into_folder = bool(todo) and todo[0][1] != args.output
    for folder in ([args.output, args.musicxml] if into_folder and not problem else []):
        if folder and not Path(folder).is_dir():
            if Path(folder).exists() or not Path(folder).resolve().parent.is_dir():
                problem = problem or f"{folder}: not a folder, and one cannot be made there"
            else:
                Path(folder).mkdir()
    for path in (p for _, midi, xml in todo for p in (midi, xml)):
        problem = problem or unwritable(path)
    if problem:  # before any work: the output could not be written after it
        print(f"adt: error: {problem}", file=sys.stderr)
        return 2
    from adt.transcribe.transcriber import (BeatTrackingError, DeviceError, NoModelError, check_device,
                                            find_separator, load_transcriber, transcribe_file)
    from adt.audio import read_audio

    try:
        check_device(args.device)
        if len(todo) == 1:
            read_audio(todo[0][0])  # fail on bad input before loading a model
        model, source = load_transcriber(args.model, device=args.device)
    except (AudioReadError, NoModelError, DeviceError) as exc:
        print(f"adt: error: {exc}", file=sys.stderr)
        return 2
    from adt.frame.recipe import model_input

    print(f"model: {source} (hears {model_input(model)} audio)", file=sys.stderr)
    separator = None
    if model_input(model) == "separated" and not args.no_separation:
        separator, what = find_separator(args.device)
        if separator is None:
            print(f"adt: warning: drum separation unavailable ({what}); transcribing the mix as it is. "
                  "Run `make demo` to train a separation model, or pass --no-separation for drum-only "
                  "input.", file=sys.stderr)
        else:
            print(f"separation: {what}", file=sys.stderr)
    status = 0
    for audio, midi, xml in todo:
        try:
            result = transcribe_file(audio, midi, model=model, threshold=args.threshold, separator=separator,
                                     tatum=args.tatum, musicxml_path=xml, device=args.device,
                                     subdivisions=args.subdivisions)
        except (AudioReadError, BeatTrackingError) as exc:
            print(f"adt: error: {exc}", file=sys.stderr)
            status = 2
            continue
        except OSError as exc:  # disk full, or the folder changed during the run; temp files are gone
            names = " / ".join(p for p in (midi, xml) if p)
            print(f"adt: error: cannot write {names}: {exc.strerror or exc}", file=sys.stderr)
            status = 2
            continue
        counts = ", ".join(f"{c} {len(v)}" for c, v in result.onsets.items())
        grid = f" (tatum grid, {result.tempo_bpm:.1f} BPM)" if args.tatum else ""
        print(f"wrote {midi}{grid}: {counts}")
        if xml:
            print(f"wrote {xml}: {int(result.score.sum())} notes, 4/4 at {result.tempo_bpm:.1f} BPM")
    return status
