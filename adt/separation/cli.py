"""``adt separate`` on the command line, as Open-Unmix's ``umx`` command.

    adt separate IN [IN ...] -o OUT_DIR [--sources drums,bass,other] [--model PATH|umxl] [--device cpu|cuda]

``IN``: audio files or folders (their audio files, not recursive). Each input gets a folder
``OUT_DIR/<name>/`` with one WAV per source (``drums.wav``, ...; 44100 Hz stereo, 16-bit). Default
separator: the graph's chosen one (the separation study's best validation drums SDR,
:func:`adt.separation.separator.find_chosen`), else the one shipped with the package
(``adt/pretrained/separator_standard.pt``: works offline right after installation); ``--model``: see
:func:`adt.separation.separator.from_argument`.

Inputs and the output folder are checked before a separator is looked for (a missing input is named as
such, not reported as "no separator"); nothing is created but the output folders (the data folder is only
read).

Exit status: 0 done, 2 bad input or output (missing/unreadable audio or audio with NaN/inf samples,
an output folder that cannot be made or written, two inputs with one name, a source the separator
does not give, no separator). With several inputs, a bad one is reported and skipped, the others are
separated, and the status is 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from adt.config import data_dir


def add_parser(sub) -> None:
    """The ``separate`` subcommand of ``adt`` (:mod:`adt.cli`)."""
    p = sub.add_parser("separate", help="audio file -> one WAV per source (drums, bass, other)")
    p.add_argument("audio", nargs="+", help="input audio files (WAV, FLAC, ...) or folders of them")
    p.add_argument("-o", "--output", required=True, help="output folder: <name>/<source>.wav per input")
    p.add_argument("--sources", default=None,
                   help="comma-separated sources to write (default: every source the separator gives)")
    p.add_argument("--model", help="separation study folder or manifest, a separator .pt, or umxl/umxhq "
                                    "(default: the graph's chosen separator, else the shipped one)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device (default cpu)")
    p.set_defaults(run=run)


def unreadable(path: Path) -> str | None:
    """Why the input file ``path`` cannot be read (missing, a folder's entry that is not a file, no read
    permission), or None; its content is checked when it is read."""
    if not path.exists():
        return f"{path}: no such audio file"
    if not path.is_file():
        return f"{path}: not a file"
    if not os.access(path, os.R_OK):
        return f"{path}: not readable (permissions)"
    return None


def _inputs(names: list[str]) -> tuple[list[Path], str | None]:
    """The input files (folders expanded), or a problem that stops the command (an empty folder, two inputs
    with one name)."""
    from adt.audio import audio_files  # lazy: soundfile 9 ms at adt --help

    files, problem = audio_files(names)
    if problem:
        return [], problem
    seen: dict[str, Path] = {}
    for f in files:
        if f.stem in seen:
            return [], f"{seen[f.stem]} and {f} would both write the folder {f.stem}/"
        seen[f.stem] = f
    return files, None


def run(args: argparse.Namespace) -> int:
    """Run ``adt separate``; returns the exit status (2: bad input or output, no separator)."""
    # lazy: torch 1.0 s, soundfile 8 ms at adt --help
    from adt.audio import AudioReadError, read_audio, write_audio

    files, problem = _inputs(args.audio)
    out = Path(args.output)
    if not problem and (out.exists() and not out.is_dir() or not out.exists() and not out.resolve().parent.is_dir()):
        problem = f"{args.output}: not a folder, and one cannot be made there"
    if not problem and out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        problem = f"{args.output}: not writable"
    if problem:
        print(f"adt: error: {problem}", file=sys.stderr)
        return 2
    status = 0
    for f in [f for f in files if unreadable(f)]:  # before looking for a separator: a bad input is named
        print(f"adt: error: {unreadable(f)}", file=sys.stderr)
        files.remove(f)
        status = 2
    if not files:
        return 2
    from adt.separation import separator as separators
    from adt.cpu import DeviceError, check_device

    try:
        check_device(args.device)
        if args.model:
            separator, what = separators.from_argument(args.model, device=args.device), None
        else:
            separator, what = separators.find_chosen(data_dir(create=False), device=args.device)
            if separator is None:
                raise FileNotFoundError(what)
    except (OSError, ValueError, DeviceError) as exc:
        print(f"adt: error: no separator: {exc}", file=sys.stderr)
        return 2
    sources = tuple(s.strip() for s in args.sources.split(",")) if args.sources else separator.sources
    unknown = [s for s in sources if s not in separator.sources]
    if unknown:
        print(f"adt: error: --sources {','.join(unknown)}: {separator.name} gives {','.join(separator.sources)}",
              file=sys.stderr)
        return 2
    print(f"separator: {separator.description}", file=sys.stderr)
    out.mkdir(exist_ok=True)
    for f in files:
        try:
            audio, sr = read_audio(f)
            estimates = separator.separate(audio, sr, sources)
        except (AudioReadError, ValueError) as exc:
            print(f"adt: error: {f}: {exc}" if str(f) not in str(exc) else f"adt: error: {exc}", file=sys.stderr)
            status = 2
            continue
        try:
            written = [write_audio(out / f.stem / f"{s}.wav", v, separators.SAMPLE_RATE) for s, v in estimates.items()]
        except OSError as exc:
            print(f"adt: error: cannot write {out / f.stem}: {exc.strerror or exc}", file=sys.stderr)
            status = 2
            continue
        print(f"wrote {', '.join(str(p) for p in written)}")
    return status
