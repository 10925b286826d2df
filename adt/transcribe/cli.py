"""``adt transcribe`` on the command line.

    adt transcribe IN -o OUT.mid [--model URI] [--threshold T] [--tatum] [--subdivisions N]
                   [--musicxml OUT.musicxml] [--no-separation] [--device cpu|cuda]

Exit status: 0 done, 2 bad input or output (missing/unreadable audio or audio with NaN/inf
samples, an output path in a missing or read-only folder (checked before any work), a write
that fails (disk full), no registered model, CUDA asked for but unavailable, no beats found
for tatum output, MusicXML with other than 4 tatums per beat).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from adt.config import Settings


def add_parser(sub) -> None:
    """The ``transcribe`` subcommand of ``adt`` (:mod:`adt.cli`)."""
    t = sub.add_parser("transcribe", help="audio file -> GM drum MIDI (36 BD, 38 SD, 47 TT, 42 HH, 49 CY)")
    t.add_argument("audio", help="input audio file (WAV, FLAC, ...)")
    t.add_argument("-o", "--output", required=True, help="output MIDI file")
    t.add_argument("--model", help="MLflow model URI (default: the champion, else the latest registered "
                                    "adt-frame-crnn)")
    t.add_argument("--threshold", type=float, default=None,
                   help="peak-picking threshold (default: the peak picking the model was selected with)")
    t.add_argument("--tatum", action="store_true",
                   help="snap onsets to the tatum grid of madmom beats (--subdivisions tatums per beat)")
    t.add_argument("--subdivisions", type=int, default=Settings().tatum_subdivisions,
                   help="tatums per beat of the grid: 4 (16th notes, default), or 3 / 6 for triplet feels")
    t.add_argument("--musicxml", metavar="PATH", help="also write the tatum-quantized score as MusicXML (4/4)")
    t.add_argument("--no-separation", action="store_true",
                   help="drum-only input: skip the Open-Unmix drum separation run on mixtures")
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


def run(args: argparse.Namespace) -> int:
    """Run ``adt transcribe``; returns the exit status (2: bad input or output, no model)."""
    from adt.audio import AudioReadError, read_audio
    from adt.transcribe.transcriber import (BeatTrackingError, DeviceError, NoModelError, check_device,
                                            find_separator, load_registered_model, transcribe_file)

    if args.subdivisions < 1 or (args.musicxml and args.subdivisions != 4):
        print(f"adt: error: --subdivisions {args.subdivisions}: need >= 1, and 4 (16th notes) with --musicxml",
              file=sys.stderr)
        return 2
    for problem in (unwritable(args.output), unwritable(args.musicxml)):
        if problem:  # before any work: the output could not be written after it
            print(f"adt: error: {problem}", file=sys.stderr)
            return 2
    try:
        check_device(args.device)
        read_audio(args.audio)  # fail on bad input before loading a model
        model, uri = load_registered_model(args.model, device=args.device)
        print(f"model: {uri}", file=sys.stderr)
        separator = None
        if not args.no_separation:
            separator, what = find_separator(args.device)
            if separator is None:
                print(f"adt: warning: drum separation unavailable ({what}); transcribing the mix as it is. "
                      "Run `make demo` to train a separation model, or pass --no-separation for drum-only "
                      "input.", file=sys.stderr)
            else:
                print(f"separation: {what}", file=sys.stderr)
        result = transcribe_file(args.audio, args.output, model=model, threshold=args.threshold,
                                 separator=separator, tatum=args.tatum, musicxml_path=args.musicxml,
                                 device=args.device, subdivisions=args.subdivisions)
    except (AudioReadError, NoModelError, BeatTrackingError, DeviceError) as exc:
        print(f"adt: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, or the folder changed during the run; temp files are gone
        names = " / ".join(p for p in (args.output, args.musicxml) if p)
        print(f"adt: error: cannot write {names}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{c} {len(v)}" for c, v in result.onsets.items())
    grid = f" (tatum grid, {result.tempo_bpm:.1f} BPM)" if args.tatum else ""
    print(f"wrote {args.output}{grid}: {counts}")
    if args.musicxml:
        print(f"wrote {args.musicxml}: {int(result.score.sum())} notes, 4/4 at {result.tempo_bpm:.1f} BPM")
    return 0
