"""The ``adt`` command line.

    adt transcribe IN.wav -o OUT.mid [--model URI] [--threshold 0.2]
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adt", description="Automatic drum transcription")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("transcribe", help="audio file -> GM drum MIDI (36 BD, 38 SD, 47 TT, 42 HH, 49 CY)")
    t.add_argument("audio", help="input audio file (WAV, FLAC, ...)")
    t.add_argument("-o", "--output", required=True, help="output MIDI file")
    t.add_argument("--model", help="MLflow model URI (default: latest registered adt-frame-crnn)")
    t.add_argument("--threshold", type=float, default=0.2, help="peak-picking threshold (default 0.2)")
    args = parser.parse_args(argv)

    from adt.audio import AudioReadError
    from adt.transcribe import NoModelError, load_registered_model, transcribe_file

    try:
        from adt.audio import read_audio

        read_audio(args.audio)  # fail on bad input before loading a model
        model, uri = load_registered_model(args.model)
        print(f"model: {uri}", file=sys.stderr)
        onsets = transcribe_file(args.audio, args.output, model=model, threshold=args.threshold)
    except (AudioReadError, NoModelError) as exc:
        print(f"adt: error: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{c} {len(v)}" for c, v in onsets.items())
    print(f"wrote {args.output}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
